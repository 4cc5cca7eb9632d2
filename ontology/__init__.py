"""The campus-kg ontology: the single source of schema (see campus.ttl)."""

from ontology.model import (
    ClassDef,
    Ontology,
    PropertyDef,
    RelationshipDef,
    load_ontology,
)

__all__ = ["ClassDef", "Ontology", "PropertyDef", "RelationshipDef", "load_ontology"]
