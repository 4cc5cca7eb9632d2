"""A master person as the personal data centre shows it: every value with its source, grouped by category.

Shared by GET /persons/{id}, GET /me, the export and the form prefill. Masking and the access log
are applied by the callers' routers (they know who asks and through which endpoint)."""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

from fastapi import HTTPException, status

from graph_api.graph_build.person_records import StoredPerson
from graph_api.models import (AttributeValue, Candidate, Category, Membership, PersonRecord, Related,
                              SourceRecordRef)
from graph_api.lineage import source_systems
from graph_api.served_graph import NoPersonRecords, ServedGraph
from graph_api.store import PersonRead
from ontology.masking import FULLY_MASKED, SEES_SENSITIVE, mask, may_see
from ontology.model import load_ontology
from queries import load_query

CATEGORIES = {  # order of the personal data centre's sections
    "basic": ("基本信息", "Basic"), "contact": ("联系方式", "Contact"), "education": ("学籍与学历", "Education"),
    "employment": ("任职", "Employment"), "teaching": ("教学", "Teaching"), "research": ("科研", "Research"),
    "assets": ("资产", "Assets"), "library": ("图书馆", "Library"), "campus_card": ("一卡通", "Campus card"),
    "finance": ("财务", "Finance"), "student_affairs": ("学生事务", "Student affairs"),
}
# Relationship -> (Chinese label, English label, the other end's title property, its detail properties).
# The store reads only these properties (graph_api.store.dialects.PERSON_PARTS): add one there too.
RELATED = {
    "AUTHOR_OF": ("科研成果", "Research outputs", "title", ("rank", "publication_year")),
    "LEADS": ("主持项目", "Projects led", "title", ("project_start", "funding")),
    "CUSTODIAN_OF": ("名下资产", "Assets in custody", "name", ("asset_no", "original_value", "start_date",
                                                             "end_date")),
    "ADVISES": ("指导关系", "Advising", "name", ("role", "start_date", "end_date")),
}


class Found(NamedTuple):
    """A requested ID resolved to its master person."""
    master_id: str
    status: str  # `active`, or `merged` for a former ID
    node: dict  # the master node
    read: PersonRead | None = None  # the whole record, when this resolution just read it


def find_person(graph: ServedGraph, requested: str) -> Found:
    """The master person an ID names: a former ID answers with the entity it was merged into. The
    person's whole record comes with it when it was read now (one store call); the per-build cache
    keeps the resolution only (records have a cache of their own)."""
    fresh: list[Found] = []

    def compute() -> Found:
        fresh.append(_find_person(graph, requested))
        return fresh[0]._replace(read=None)

    cached = _per_build(graph, ("resolve", requested), compute)
    return fresh[0] if fresh else cached


def resolve_person(graph: ServedGraph, requested: str) -> tuple[str, str, dict]:
    """(master ID, status, master node): a former ID answers with the entity it was merged into."""
    found = find_person(graph, requested)
    return found.master_id, found.status, found.node


def _per_build(graph, key, compute):
    """Answers from the served build's record cache (exact: a build never changes); uncached for a
    plain store."""
    memo = getattr(graph, "memo", None)
    if memo is None:
        return compute()
    return memo(key, compute, cache="person_records", limit=graph.settings.person_cache_size)


def _find_person(graph: ServedGraph, requested: str) -> Found:
    read = graph.person_read(requested)
    if read.person is not None:
        return Found(requested, "active", read.person, read)
    former = graph.query(load_query("former_id"), {"id": requested})
    if former and former[0]["merged_into"]:
        merged = graph.person_read(former[0]["merged_into"])
        if merged.person is not None:
            return Found(former[0]["merged_into"], "merged", merged.person, merged)
    if former:
        raise HTTPException(status.HTTP_410_GONE, f"{requested} was retired on {former[0]['changed_at']}")
    raise HTTPException(status.HTTP_404_NOT_FOUND, f"no person {requested}")


def find_stored(graph: ServedGraph, requested: str) -> StoredPerson:
    """find_person, answered from the served build's precomputed person records (one indexed lookup;
    a former ID, two): the same master, status and errors. NoPersonRecords when the build has none."""
    row = graph.stored_person(requested)
    if row is not None:
        return StoredPerson(requested, "active", *row)
    former = graph.stored_former_id(requested)
    if former is not None and former.merged_into:
        merged = graph.stored_person(former.merged_into)
        if merged is not None:
            return StoredPerson(former.merged_into, "merged", *merged)
    if former is not None:
        raise HTTPException(status.HTTP_410_GONE, f"{requested} was retired on {former.changed_at}")
    raise HTTPException(status.HTTP_404_NOT_FOUND, f"no person {requested}")


def find_master(graph: ServedGraph, requested: str):
    """find_stored where the build has precomputed person records (one indexed lookup, no graph
    read: the pages and endpoints that need only who a person is), else find_person."""
    try:
        return find_stored(graph, requested)
    except NoPersonRecords:
        return find_person(graph, requested)


def resolve_person_id(graph: ServedGraph, requested: str) -> tuple[str, str]:
    found = find_master(graph, requested)
    return found.master_id, found.status


# The one answer a `self` caller gets for any ID but their own, whether it exists or not: a 404 for
# unknown IDs beside a 403 for other people's would tell them which IDs exist.
NOT_YOURS = "a person may read only their own record"


def ensure_self(graph: ServedGraph, principal, requested: str) -> tuple[str, str, dict]:
    """The person asked for (resolved); a `self` caller only reaches their own (by a current or
    former ID), and any other ID, existing or not, is the same 403."""
    return tuple(find_permitted(graph, principal, requested)[:3])  # type: ignore[return-value]


def ensure_self_id(graph: ServedGraph, principal, requested: str) -> str:
    """ensure_self's master ID, without reading the person from the graph where the build has
    precomputed records."""
    return find_permitted(graph, principal, requested, find=find_master).master_id


def find_permitted(graph: ServedGraph, principal, requested: str, find=find_person):
    """ensure_self, with the person's record when it was read now. `find` (find_person, or
    find_stored for the precomputed records) resolves an ID; the rule is the same either way."""
    if principal.role != "self":
        return find(graph, requested)
    own = principal.person_id
    if own and requested == own:
        return find(graph, requested)  # their own ID: a 404 or 410 tells them nothing new
    if not own:
        raise HTTPException(status.HTTP_403_FORBIDDEN, NOT_YOURS)
    try:
        resolved = find(graph, requested)
    except HTTPException:
        raise HTTPException(status.HTTP_403_FORBIDDEN, NOT_YOURS) from None
    if find(graph, own).master_id != resolved.master_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, NOT_YOURS)
    return resolved


def owns(graph: ServedGraph, principal, requested: str) -> bool:
    """Whether `requested` names the `self` caller's own person (an unknown ID does not)."""
    try:
        ensure_self_id(graph, principal, requested)
    except HTTPException as refused:
        if refused.status_code == status.HTTP_403_FORBIDDEN:
            return False
        raise
    return True


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else value


def person_record(graph: ServedGraph, requested: str, role: str,
                  resolved: Found | tuple[str, str, dict] | None = None) -> PersonRecord:
    """The record as `role` may see it. Cached per served build and per kind of viewer (sensitive
    values shown or masked); the access log is written by the caller for every read all the same.
    `resolved` (find_permitted's answer) saves reading the person again."""
    sees = role in SEES_SENSITIVE

    def compute() -> PersonRecord:
        found = resolved if isinstance(resolved, Found) else find_person(graph, requested)
        read = found.read if found.read is not None else graph.person_read(found.master_id)
        return assemble_person_record(source_systems(graph), requested, role, found.master_id, found.status, read)

    return _per_build(graph, ("record", requested, sees), compute)


def assemble_person_record(systems: dict[str, dict], requested: str, role: str, master_id: str, state: str,
                           read: PersonRead) -> PersonRecord:
    """The record from a store read (or the same parts computed by a build: graph_api.graph_build.person_records);
    `systems`: system code -> its name and department (lineage.source_systems)."""
    node = read.person
    ont = load_ontology()
    by_property: dict[str, list[dict]] = {}
    for s in sorted(read.statements,
                    key=lambda s: (not s["chosen"], s["authority"] if s["authority"] is not None else 99,
                                   s["record_id"])):
        s["system_name"] = systems.get(s["system"], {}).get("name")
        by_property.setdefault(s["property"], []).append(s)
    groups: dict[str, list[AttributeValue]] = {}
    for prop in ont.class_properties("Person"):
        value = node.get(prop.name)
        if prop.name == "id" or value is None:
            continue
        visible = may_see(role, prop)
        if not visible and mask(prop.name, value) == FULLY_MASKED:
            # A value masked whole says only that it exists, and for some properties that is the secret
            # (which students have an economic-hardship grade): such attributes are left out.
            continue
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
               for r in sorted(read.sources,
                               key=lambda r: (r["system"], r["table_name"] or "", r["record_key"]))]
    memberships, related = [], []
    for row in read.relationships:
        rel, other = row["rel"], row["other"]
        kind = rel["_LABEL"]
        if kind == "MEMBER_OF":
            memberships.append(Membership(org_id=other["id"], org_name=other.get("name"), role=rel.get("role"),
                                          start_date=rel.get("start_date"), end_date=rel.get("end_date")))
            continue
        zh, en, title, details = RELATED[kind]
        merged = {**other, **{k: v for k, v in rel.items() if v is not None}}
        related.append(Related(relation=kind, direction="out", label_zh=zh, label_en=en, id=other["id"],
                               title=other.get(title), properties={k: _plain(merged[k]) for k in details
                                                                   if merged.get(k) is not None}))
    zh, en, _, _ = RELATED["ADVISES"]
    for r in read.advisors:
        related.append(Related(relation="ADVISES", direction="in", label_zh=zh, label_en=en, id=r["id"],
                               title=r["title"], properties={k: _plain(r[k]) for k in ("role", "start_date",
                                                                                       "end_date") if r[k]}))
    memberships.sort(key=lambda m: (m.org_name or "", m.start_date or dt.date.min))
    related.sort(key=lambda r: (r.relation, r.direction, r.id))
    return PersonRecord(master_id=master_id, requested_id=requested, status=state, categories=categories,
                        memberships=memberships, related=related, source_records=sources)


def fields_returned(record: PersonRecord) -> list[str]:
    """What the access log says was read."""
    fields = [a.property for c in record.categories for a in c.attributes]
    if record.memberships:
        fields.append("memberships")
    fields += sorted({r.relation for r in record.related})
    return fields + ["source_records"]
