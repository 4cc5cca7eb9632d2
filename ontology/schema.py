"""Turn the ontology into a backend-neutral graph schema.

Each backend's dialect (graph_api/store/dialects.py) renders this schema as its own DDL: node and
relationship tables for Ladybug, uniqueness constraints and indexes for Neo4j.
"""

from __future__ import annotations

from dataclasses import dataclass

from ontology.model import Ontology, load_ontology


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # neutral type name (see ontology.model.XSD_TYPES)


@dataclass(frozen=True)
class NodeTable:
    label: str
    key: str
    columns: tuple[Column, ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


@dataclass(frozen=True)
class RelTable:
    type: str
    pairs: tuple[tuple[str, str], ...]  # (from label, to label)
    columns: tuple[Column, ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


@dataclass(frozen=True)
class GraphSchema:
    nodes: dict[str, NodeTable]
    rels: dict[str, RelTable]

    def node(self, label: str) -> NodeTable:
        return self.nodes[label]

    def rel(self, rel_type: str) -> RelTable:
        return self.rels[rel_type]


def graph_schema(ontology: Ontology | None = None) -> GraphSchema:
    ont = ontology or load_ontology()
    nodes = {
        c.name: NodeTable(
            label=c.name,
            key=c.key,
            columns=tuple(Column(p, ont.prop(p).datatype) for p in c.properties),
        )
        for c in ont.classes.values()
    }
    rels = {
        r.name: RelTable(
            type=r.name,
            pairs=tuple((s, t) for s in r.sources for t in r.targets),
            columns=tuple(Column(p, ont.prop(p).datatype) for p in r.properties),
        )
        for r in ont.relationships.values()
    }
    return GraphSchema(nodes, rels)
