"""Who may see which values: sensitive properties (ontology `ckg:sensitive`) are masked for roles
that do not need them. The rule lives here and nowhere else: `mask` for one value (the API),
`mask_array` for a column (the analyst projection of a graph build); both read `KEEP`.

The masks reveal little on purpose: a masked value must not narrow a guess down to a few hundred
candidates (the ID number's birth date is visible elsewhere, its area code is guessable).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from ontology.model import PropertyDef

# Roles that see sensitive values unmasked: the person themself (PIPL art. 45), stewards (who must
# compare identifiers to resolve duplicates) and auditors. Analysts and admins see them masked.
SEES_SENSITIVE = frozenset({"self", "steward", "auditor"})

# property -> (characters kept at the start, characters kept at the end, shortest text kept so).
# Shorter texts, and every other sensitive property, become FULLY_MASKED. Every mask is idempotent
# (masking a masked value changes nothing), so a value masked in a graph may be masked again on answer.
KEEP: dict[str, tuple[int, int, int]] = {
    "id_number": (1, 0, 8),     # 4*****************: not the check character, which with a visible
                                #   birth date and sex would narrow the number to a few dozen
    "phone": (0, 2, 7),         # *********78
    "bank_account": (0, 4, 8),  # ***************1234
}
FULLY_MASKED = "***"


def may_see(role: str, prop: PropertyDef) -> bool:
    return not prop.sensitive or role in SEES_SENSITIVE


def mask(prop_name: str, value: object) -> str:
    text = str(value)
    head, tail, shortest = KEEP.get(prop_name, (0, 0, 0))
    if not (head or tail) or len(text) < shortest:
        return FULLY_MASKED
    return text[:head] + "*" * (len(text) - head - tail) + text[len(text) - tail:]


def mask_array(prop_name: str, values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """`mask` for a whole column of strings at once (nulls stay null)."""
    text = pc.cast(values, pa.string())
    head, tail, shortest = KEEP.get(prop_name, (0, 0, 0))
    fully = pa.scalar(FULLY_MASKED)
    if not (head or tail):
        return pc.if_else(pc.is_null(text), pa.scalar(None, pa.string()), fully)
    length = pc.utf8_length(text)
    stars = pc.binary_repeat(pa.scalar("*"), pc.max_element_wise(pc.subtract(length, head + tail), 0))
    kept = pc.binary_join_element_wise(
        pc.utf8_slice_codeunits(text, 0, head),
        stars,
        pc.utf8_slice_codeunits(text, -tail) if tail else pc.utf8_slice_codeunits(text, 0, 0),
        "")
    return pc.if_else(pc.less(length, shortest), fully, kept)


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
