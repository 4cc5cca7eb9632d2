"""Record validation rules generated from the ontology's SHACL shapes (ontology/shapes.ttl).

Core constraint components on a property shape are compiled into per-value checks that run on
every standardised source record: sh:pattern, sh:minLength, sh:maxLength, sh:in, sh:minInclusive,
sh:maxInclusive, and sh:minCount 1 (a required property). SPARQL-based constraints cannot be
compiled to a per-value check; the only one, the GB 11643 check character, is checked
equivalently by `ingest.idcard` (tests/test_validation.py runs both on the same values). The full
shapes, SPARQL included, run with pySHACL on the RDF export.

A failed check is a soft failure: the record is kept and the field flagged (dimension validity).
The master `id` is minted by resolution, so shapes on a class's key do not apply to source records.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from rdflib import RDF, Literal, URIRef
from rdflib.collection import Collection
from rdflib.namespace import SH

from ontology.model import Ontology, load_ontology, load_shapes


@dataclass(frozen=True)
class ValueRule:
    shape: str  # a readable name of the shape it came from
    property: str
    required: bool = False
    pattern: re.Pattern | None = None
    min_length: int | None = None
    max_length: int | None = None
    allowed: frozenset[str] | None = None
    min_inclusive: float | None = None
    max_inclusive: float | None = None
    message: str | None = None

    def check(self, value: object) -> str | None:
        """None when the value conforms, else the reason."""
        text = value.isoformat() if hasattr(value, "isoformat") else str(value)
        why = None
        if self.pattern is not None and not self.pattern.search(text):
            why = f"does not match {self.pattern.pattern}"
        elif self.min_length is not None and len(text) < self.min_length:
            why = f"shorter than {self.min_length} characters"
        elif self.max_length is not None and len(text) > self.max_length:
            why = f"longer than {self.max_length} characters"
        elif self.allowed is not None and text not in self.allowed:
            why = f"not one of {sorted(self.allowed)}"
        elif self.min_inclusive is not None and _number(text) is not None and _number(text) < self.min_inclusive:
            why = f"below {self.min_inclusive}"
        elif self.max_inclusive is not None and _number(text) is not None and _number(text) > self.max_inclusive:
            why = f"above {self.max_inclusive}"
        if why is None:
            return None
        return f"SHACL {self.shape}: {self.message or why}"


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


@lru_cache(maxsize=1)
def record_rules() -> dict[str, list[ValueRule]]:
    """class name -> rules, compiled once from shapes.ttl."""
    return compile_shapes(load_ontology())


def compile_shapes(ont: Ontology) -> dict[str, list[ValueRule]]:
    g = load_shapes()
    by_iri = {p.iri: p for p in ont.properties.values()}
    class_by_iri = {c.iri: c for c in ont.classes.values()}
    out: dict[str, list[ValueRule]] = {}
    for node_shape in g.subjects(RDF.type, SH.NodeShape):
        target = g.value(node_shape, SH.targetClass)
        cls = class_by_iri.get(target)
        if cls is None:
            continue
        for ps in g.objects(node_shape, SH.property):
            path = g.value(ps, SH.path)
            prop = by_iri.get(path)
            if prop is None or prop.name == cls.key:
                continue
            rule = _compile(g, ps, prop.name, node_shape)
            if rule is not None:
                out.setdefault(cls.name, []).append(rule)
    return out


def _compile(g, ps, prop_name: str, node_shape) -> ValueRule | None:
    def lit(pred):
        v = g.value(ps, pred)
        return v.toPython() if isinstance(v, Literal) else None

    allowed = None
    in_list = g.value(ps, SH["in"])
    if in_list is not None:
        allowed = frozenset(str(v) for v in Collection(g, in_list))
    pattern = lit(SH.pattern)
    min_count = lit(SH.minCount)
    message = None
    for m in g.objects(ps, SH.message):
        message = str(m)
    name = ps.split("#")[-1] if isinstance(ps, URIRef) else f"{node_shape.split('#')[-1]}/{prop_name}"
    rule = ValueRule(
        shape=name, property=prop_name, required=bool(min_count and min_count >= 1),
        pattern=re.compile(pattern) if pattern else None,
        min_length=lit(SH.minLength), max_length=lit(SH.maxLength), allowed=allowed,
        min_inclusive=lit(SH.minInclusive), max_inclusive=lit(SH.maxInclusive), message=message,
    )
    constrained = (rule.required or rule.pattern or rule.min_length or rule.max_length or rule.allowed
                   or rule.min_inclusive is not None or rule.max_inclusive is not None)
    return rule if constrained else None
