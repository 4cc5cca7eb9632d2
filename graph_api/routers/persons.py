"""Personal records: GET /persons/{master_id}."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, HTTPException, Request, status

from graph_api.deps import GraphDep, PrincipalDep, StateDep
from ontology.masking import mask, may_see
from graph_api.models import Attribute, Membership, PersonRecord, SourceRecordRef
from ontology.model import load_ontology
from queries import load_query

router = APIRouter(tags=["persons 个人数据"])
READ_ROLES = frozenset({"self", "steward", "analyst", "auditor", "admin"})


@router.get("/persons/{master_id}", response_model=PersonRecord,
            summary="一个人的完整记录 / A person's master record and the source records behind it")
def get_person(master_id: str, request: Request, principal: PrincipalDep, graph: GraphDep,
               state: StateDep) -> PersonRecord:
    if principal.role not in READ_ROLES:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this role may not read person records")
    if principal.role == "self" and principal.person_id != master_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a person may read only their own record")
    rows = graph.query(load_query("person_master"), {"id": master_id})
    if not rows:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no person {master_id}")
    ont = load_ontology()
    node = rows[0]["person"]
    attributes = []
    for prop in ont.class_properties("Person"):
        value = node.get(prop.name)
        if prop.name == "id" or value is None:
            continue
        visible = may_see(principal.role, prop)
        if isinstance(value, (dt.date, dt.datetime)):
            value = value.isoformat()
        attributes.append(Attribute(property=prop.name, label_zh=prop.label_zh, label_en=prop.label_en,
                                    category=prop.category, value=value if visible else mask(prop.name, value),
                                    masked=not visible))
    sources = [SourceRecordRef(record_id=r["record_id"], system=r["system"], system_name=r["system_name"],
                               department=r["department"], table=r["table_name"], record_key=r["record_key"],
                               rule=r["rule"])
               for r in graph.query(load_query("person_sources"), {"id": master_id})]
    memberships = [Membership(**r) for r in graph.query(load_query("person_memberships"), {"id": master_id})]
    state.log_access(principal, master_id, f"GET /persons/{master_id}",
                     [a.property for a in attributes] + ["source_records", "memberships"],
                     request.client.host if request.client else None)
    return PersonRecord(master_id=master_id, attributes=attributes, memberships=memberships, source_records=sources)
