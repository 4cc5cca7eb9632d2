"""Read the Turtle ontology into typed definitions that the rest of the code uses.

Code never hard-codes a property or relationship list: it asks this model. A term that is not in
campus.ttl does not exist (tests/test_ontology_terms.py enforces that on code and saved queries).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from rdflib import RDF, RDFS, Graph, Literal, Namespace, URIRef
from rdflib.namespace import OWL, SKOS, XSD

CKG = Namespace("https://w3id.org/campus-kg/ontology#")
SCHEMA = Namespace("https://schema.org/")
ONTOLOGY_DIR = Path(__file__).resolve().parent
TURTLE_FILES = ("campus.ttl", "codelists.ttl")
SHAPES_FILE = ONTOLOGY_DIR / "shapes.ttl"

# xsd datatype -> the neutral type name the graph schema and lakehouse use.
XSD_TYPES = {
    XSD.string: "string",
    XSD.date: "date",
    XSD.dateTime: "timestamp",
    XSD.integer: "int",
    XSD.decimal: "double",
    XSD.double: "double",
    XSD.boolean: "bool",
}


class OntologyError(ValueError):
    """The ontology itself is inconsistent, or code asked for a term it does not define."""


@dataclass(frozen=True)
class PropertyDef:
    iri: URIRef
    name: str  # graph / code name, e.g. "id_number"
    label_zh: str
    label_en: str
    datatype: str  # neutral type: string, date, timestamp, int, double, bool
    classification: str  # GB/T 43697 level notation: core / important / general
    personal_info: str  # none / general / sensitive
    sensitive: bool
    category: str
    domains: tuple[str, ...]  # class graph names
    code_list: URIRef | None = None


@dataclass(frozen=True)
class ClassDef:
    iri: URIRef
    name: str
    label_zh: str
    label_en: str
    key: str
    master: bool
    properties: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class RelationshipDef:
    iri: URIRef
    name: str  # e.g. MEMBER_OF
    label_zh: str
    label_en: str
    sources: tuple[str, ...]
    targets: tuple[str, ...]
    properties: tuple[str, ...]


@dataclass(frozen=True)
class CodeList:
    iri: URIRef
    label_zh: str
    codes: dict[str, str]  # notation -> Chinese preferred label
    alt_labels: dict[str, str]  # alternative label -> notation


@dataclass(frozen=True)
class Ontology:
    graph: Graph
    classes: dict[str, ClassDef]
    properties: dict[str, PropertyDef]
    relationships: dict[str, RelationshipDef]
    code_lists: dict[URIRef, CodeList]

    def cls(self, name: str) -> ClassDef:
        try:
            return self.classes[name]
        except KeyError:
            raise OntologyError(f"class {name!r} is not defined in the ontology") from None

    def prop(self, name: str) -> PropertyDef:
        try:
            return self.properties[name]
        except KeyError:
            raise OntologyError(f"property {name!r} is not defined in the ontology") from None

    def rel(self, name: str) -> RelationshipDef:
        try:
            return self.relationships[name]
        except KeyError:
            raise OntologyError(f"relationship {name!r} is not defined in the ontology") from None

    def class_properties(self, class_name: str) -> list[PropertyDef]:
        return [self.properties[p] for p in self.cls(class_name).properties]

    def master_classes(self) -> list[ClassDef]:
        return [c for c in self.classes.values() if c.master]

    def code_list_for(self, prop_name: str) -> CodeList | None:
        iri = self.prop(prop_name).code_list
        return self.code_lists.get(iri) if iri is not None else None


def _label(g: Graph, node: URIRef, lang: str) -> str:
    for value in g.objects(node, RDFS.label):
        if isinstance(value, Literal) and value.language == lang:
            return str(value)
    return ""


def _graph_name(g: Graph, node: URIRef) -> str:
    value = g.value(node, CKG.graphName)
    if value is None:
        raise OntologyError(f"{node} has no ckg:graphName")
    return str(value)


def _notation(g: Graph, node: URIRef | None) -> str:
    value = g.value(node, SKOS.notation) if node is not None else None
    return str(value) if value is not None else ""


def _read_code_lists(g: Graph) -> dict[URIRef, CodeList]:
    lists: dict[URIRef, CodeList] = {}
    for scheme in g.subjects(RDF.type, SKOS.ConceptScheme):
        codes: dict[str, str] = {}
        alts: dict[str, str] = {}
        for concept in g.subjects(SKOS.inScheme, scheme):
            notation = _notation(g, concept)
            for label in g.objects(concept, SKOS.prefLabel):
                if label.language == "zh":
                    codes[notation] = str(label)
                    alts[str(label)] = notation
            for label in g.objects(concept, SKOS.altLabel):
                alts[str(label)] = notation
        zh = next((str(v) for v in g.objects(scheme, SKOS.prefLabel) if v.language == "zh"), "")
        lists[scheme] = CodeList(scheme, zh, codes, alts)
    return lists


def build_ontology(g: Graph) -> Ontology:
    class_names = {c: _graph_name(g, c) for c in g.subjects(RDF.type, OWL.Class)}
    props: dict[str, PropertyDef] = {}
    for p in sorted(g.subjects(RDF.type, OWL.DatatypeProperty)):
        rng = g.value(p, RDFS.range)
        if rng not in XSD_TYPES:
            raise OntologyError(f"{p} has range {rng}, which has no graph type")
        name = _graph_name(g, p)
        props[name] = PropertyDef(
            iri=p,
            name=name,
            label_zh=_label(g, p, "zh"),
            label_en=_label(g, p, "en"),
            datatype=XSD_TYPES[rng],
            classification=_notation(g, g.value(p, CKG.classification)),
            personal_info=_notation(g, g.value(p, CKG.personalInfo)),
            sensitive=bool(g.value(p, CKG.sensitive).toPython()),
            category=str(g.value(p, CKG.category)),
            domains=tuple(sorted(class_names[d] for d in g.objects(p, SCHEMA.domainIncludes))),
            code_list=g.value(p, CKG.codeList),
        )
    classes: dict[str, ClassDef] = {}
    for c, name in class_names.items():
        key_iri = g.value(c, CKG.nodeKey)
        key = _graph_name(g, key_iri)
        # Key first, then the rest in ontology order (sorted for a stable DDL).
        own = sorted(n for n, p in props.items() if name in p.domains and n != key)
        master = g.value(c, CKG.masterEntity)
        classes[name] = ClassDef(
            iri=c,
            name=name,
            label_zh=_label(g, c, "zh"),
            label_en=_label(g, c, "en"),
            key=key,
            master=bool(master.toPython()) if master is not None else False,
            properties=(key, *own),
        )
    rels: dict[str, RelationshipDef] = {}
    for r in g.subjects(RDF.type, OWL.ObjectProperty):
        name = _graph_name(g, r)
        rels[name] = RelationshipDef(
            iri=r,
            name=name,
            label_zh=_label(g, r, "zh"),
            label_en=_label(g, r, "en"),
            sources=tuple(sorted(class_names[d] for d in g.objects(r, SCHEMA.domainIncludes))),
            targets=tuple(sorted(class_names[d] for d in g.objects(r, SCHEMA.rangeIncludes))),
            properties=tuple(sorted(_graph_name(g, e) for e in g.objects(r, CKG.edgeProperty))),
        )
    return Ontology(g, classes, props, dict(sorted(rels.items())), _read_code_lists(g))


@lru_cache(maxsize=1)
def load_ontology() -> Ontology:
    """The ontology shipped with the package (cached: it is read-only)."""
    g = Graph()
    for name in TURTLE_FILES:
        g.parse(ONTOLOGY_DIR / name, format="turtle")
    return build_ontology(g)


def load_shapes() -> Graph:
    g = Graph()
    g.parse(SHAPES_FILE, format="turtle")
    return g
