"""Who may see which values: sensitive properties (ontology `ckg:sensitive`) are masked for roles
that do not need them. The rule lives here and nowhere else."""

from __future__ import annotations

from ontology.model import PropertyDef

# Roles that see sensitive values unmasked: the person themself (PIPL art. 45), stewards (who must
# compare identifiers to resolve duplicates) and auditors. Analysts and admins see them masked.
SEES_SENSITIVE = frozenset({"self", "steward", "auditor"})


def may_see(role: str, prop: PropertyDef) -> bool:
    return not prop.sensitive or role in SEES_SENSITIVE


def mask(prop_name: str, value: object) -> str:
    text = str(value)
    if prop_name == "id_number" and len(text) >= 8:
        return text[:4] + "*" * (len(text) - 8) + text[-4:]  # 4501**********1234
    if prop_name == "phone" and len(text) >= 7:
        return text[:-8] + "****" + text[-4:] if len(text) > 8 else "****" + text[-4:]
    if prop_name == "bank_account" and len(text) > 4:
        return "*" * (len(text) - 4) + text[-4:]
    return "***"


def mask_if_sensitive(prop_name: str, value: object) -> object:
    """The value as anyone may see it: masked when the property is sensitive (or unknown)."""
    from ontology.model import OntologyError, load_ontology

    if value is None:
        return None
    try:
        sensitive = load_ontology().prop(prop_name).sensitive
    except OntologyError:
        sensitive = True
    return mask(prop_name, value) if sensitive else value
