"""A master person as the personal data centre shows it: every value with its source, grouped by category.

Shared by GET /persons/{id}, GET /me, the export and the form prefill. Masking and the access log
are applied by the callers' routers (they know who asks and through which endpoint)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import HTTPException, status

from graph_api.models import (AttributeValue, Candidate, Category, Membership, PersonRecord, Related,
                              SourceRecordRef)
from graph_api.lineage import source_systems
from graph_api.served_graph import ServedGraph
from ontology.masking import mask, may_see
from ontology.model import load_ontology
from queries import load_query

CATEGORIES = {  # order of the personal data centre's sections
    "basic": ("基本信息", "Basic"), "contact": ("联系方式", "Contact"), "education": ("学籍与学历", "Education"),
    "employment": ("任职", "Employment"), "teaching": ("教学", "Teaching"), "research": ("科研", "Research"),
    "assets": ("资产", "Assets"), "library": ("图书馆", "Library"), "campus_card": ("一卡通", "Campus card"),
    "finance": ("财务", "Finance"), "student_affairs": ("学生事务", "Student affairs"),
}
RELATED = {  # saved query -> (relationship, Chinese label, English label)
    "person_outputs": ("AUTHOR_OF", "科研成果", "Research outputs"),
    "person_projects": ("LEADS", "主持项目", "Projects led"),
    "person_assets": ("CUSTODIAN_OF", "名下资产", "Assets in custody"),
    "person_advising": ("ADVISES", "指导关系", "Advising"),
}


def resolve_person_id(graph: ServedGraph, requested: str) -> tuple[str, str]:
    """(master ID, status): a former ID answers with the entity it was merged into."""
    if graph.query(load_query("person_exists"), {"id": requested}):
        return requested, "active"
    former = graph.query(load_query("former_id"), {"id": requested})
    if former and former[0]["merged_into"]:
        return former[0]["merged_into"], "merged"
    if former:
        raise HTTPException(status.HTTP_410_GONE, f"{requested} was retired on {former[0]['changed_at']}")
    raise HTTPException(status.HTTP_404_NOT_FOUND, f"no person {requested}")


def ensure_self(graph: ServedGraph, principal, requested: str) -> str:
    """The master ID asked for; a `self` caller only reaches their own (by its current or a former ID)."""
    master_id = resolve_person_id(graph, requested)[0]
    if principal.role == "self" and (not principal.person_id
                                     or resolve_person_id(graph, principal.person_id)[0] != master_id):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a person may read only their own record")
    return master_id


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else value


def person_record(graph: ServedGraph, requested: str, role: str) -> PersonRecord:
    master_id, state = resolve_person_id(graph, requested)
    node = graph.query(load_query("person_master"), {"id": master_id})[0]["person"]
    ont = load_ontology()
    systems = source_systems(graph)
    by_property: dict[str, list[dict]] = {}
    for s in graph.query(load_query("person_values"), {"id": master_id}):
        s["system_name"] = systems.get(s["system"], {}).get("name")
        by_property.setdefault(s["property"], []).append(s)
    groups: dict[str, list[AttributeValue]] = {}
    for prop in ont.class_properties("Person"):
        value = node.get(prop.name)
        if prop.name == "id" or value is None:
            continue
        visible = may_see(role, prop)
        statements = by_property.get(prop.name, [])
        chosen = next((s for s in statements if s["chosen"]), None)
        others = {}
        for s in statements:
            if str(s["value"]) != str(_plain(value)):
                others.setdefault(s["value"], s)
        conflict = [Candidate(value=v if visible else mask(prop.name, v), system=s["system"],
                              system_name=s["system_name"], record_id=s["record_id"])
                    for v, s in others.items()] or None
        groups.setdefault(prop.category, []).append(AttributeValue(
            property=prop.name, label_zh=prop.label_zh, label_en=prop.label_en,
            value=_plain(value) if visible else mask(prop.name, value), masked=not visible,
            source_system=chosen["system"] if chosen else None,
            source_system_name=chosen["system_name"] if chosen else None,
            source_record=chosen["record_id"] if chosen else None,
            authority=chosen["authority"] if chosen else None, last_updated=chosen["last_seen"] if chosen else None,
            rule=chosen["rule"] if chosen else "correction (approved request)", conflict=conflict))
    order = list(CATEGORIES) + sorted(set(groups) - set(CATEGORIES))
    categories = [Category(category=c, label_zh=CATEGORIES.get(c, (c, c))[0], label_en=CATEGORIES.get(c, (c, c))[1],
                           attributes=groups[c]) for c in order if c in groups]
    sources = [SourceRecordRef(record_id=r["record_id"], system=r["system"],
                               system_name=systems.get(r["system"], {}).get("name"),
                               department=systems.get(r["system"], {}).get("department"), table=r["table_name"],
                               record_key=r["record_key"], rule=r["rule"])
               for r in graph.query(load_query("person_sources"), {"id": master_id})]
    memberships = [Membership(**r) for r in graph.query(load_query("person_memberships"), {"id": master_id})]
    related = []
    for query, (relation, zh, en) in RELATED.items():
        for r in graph.query(load_query(query), {"id": master_id}):
            props = {k: _plain(v) for k, v in r.items() if k not in ("id", "title", "direction") and v is not None}
            related.append(Related(relation=relation, direction=r.get("direction", "out"), label_zh=zh, label_en=en,
                                   id=r["id"], title=r["title"], properties=props))
    return PersonRecord(master_id=master_id, requested_id=requested, status=state, categories=categories,
                        memberships=memberships, related=related, source_records=sources)


def fields_returned(record: PersonRecord) -> list[str]:
    """What the access log says was read."""
    fields = [a.property for c in record.categories for a in c.attributes]
    if record.memberships:
        fields.append("memberships")
    fields += sorted({r.relation for r in record.related})
    return fields + ["source_records"]
