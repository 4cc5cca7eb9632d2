"""Who may do what: one table, deny by default. Routers name a permission; nothing else decides.

`self` tokens are bound to one master person: where `self` is allowed on a person's data, the
router also checks that the person is the caller (graph_api.person_view.ensure_self)."""

from __future__ import annotations

from fastapi import HTTPException, status

from campus_kg.state import Principal

PERMISSIONS: dict[str, frozenset[str]] = {
    "person.read": frozenset({"self", "steward", "analyst", "auditor"}),
    "me": frozenset({"self"}),
    "forms.prefill": frozenset({"self", "steward"}),
    "review": frozenset({"steward"}),
    "entities.edit": frozenset({"steward"}),
    "corrections.review": frozenset({"steward"}),
    "jobs.read": frozenset({"steward", "admin"}),
    "cypher": frozenset({"analyst", "auditor"}),
    "lineage": frozenset({"self", "steward", "auditor"}),
    "history": frozenset({"steward", "auditor"}),
    "access_log": frozenset({"self", "auditor"}),
    "audit_trail": frozenset({"auditor", "admin"}),
    "portraits.person": frozenset({"self", "analyst"}),
    "portraits.research": frozenset({"analyst"}),
    "quality": frozenset({"steward", "analyst", "auditor", "admin"}),
}


def check(principal: Principal, permission: str) -> Principal:
    if principal.role not in PERMISSIONS[permission]:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {principal.role!r} may not use this endpoint")
    return principal

