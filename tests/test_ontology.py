import datetime as dt

import pytest
from pyshacl import validate
from rdflib import RDF, Graph, Literal, Namespace
from rdflib.namespace import XSD

from graph_api.store.dialects import LadybugDialect, Neo4jDialect
from ontology.model import CKG, OntologyError, load_ontology, load_shapes
from ontology.schema import graph_schema

P = Namespace("https://w3id.org/campus-kg/id/")


def test_core_classes_and_relationships_exist():
    ont = load_ontology()
    for cls in ("Person", "Organisation", "Discipline", "Asset", "SourceSystem", "SourceRecord", "IngestRun"):
        assert ont.cls(cls).key == "id"
    for rel in ("MEMBER_OF", "SUB_ORGANISATION_OF", "IN_DISCIPLINE", "CUSTODIAN_OF", "ADVISES", "AUTHOR_OF",
                "RESOLVED_TO", "FROM_SYSTEM"):
        assert ont.rel(rel)
    with pytest.raises(OntologyError):
        ont.prop("no_such_property")


def test_every_property_is_classified_and_mapped_or_explained():
    ont = load_ontology()
    for prop in ont.properties.values():
        assert prop.classification in {"core", "important", "general"}, prop.name
        assert prop.personal_info in {"none", "general", "sensitive"}, prop.name
        assert prop.label_zh and prop.label_en, prop.name
    assert ont.prop("id_number").sensitive and ont.prop("id_number").personal_info == "sensitive"
    assert not ont.prop("name").sensitive


def test_code_lists():
    ont = load_ontology()
    sex = ont.code_list_for("sex")
    assert set(sex.codes) == {"0", "1", "2", "9"} and sex.alt_labels["男"] == "1"
    disciplines = ont.code_list_for("discipline_code")
    first_level = [c for c in disciplines.codes if len(c) == 4]
    assert len(first_level) == 117 and len([c for c in disciplines.codes if len(c) == 2]) == 14
    assert disciplines.codes["0812"] == "计算机科学与技术"
    assert set(ont.code_list_for("asset_class").codes) == {f"A0{i}" for i in range(1, 7)}


def test_ladybug_ddl_and_neo4j_constraints_come_from_the_ontology():
    schema = graph_schema()
    ddl = LadybugDialect().schema_statements(schema)
    assert any(s.startswith("CREATE NODE TABLE IF NOT EXISTS Person(") and "id_number STRING" in s for s in ddl)
    assert any("CREATE REL TABLE IF NOT EXISTS MEMBER_OF(FROM Person TO Organisation" in s for s in ddl)
    neo = Neo4jDialect().schema_statements(schema)
    assert "CREATE CONSTRAINT person_id_unique IF NOT EXISTS FOR (n:Person) REQUIRE n.id IS UNIQUE" in neo
    assert len([s for s in neo if "CONSTRAINT" in s]) == len(schema.nodes)


def _person(g: Graph, pid: str, id_number: str) -> None:
    node = P[pid]
    g.add((node, RDF.type, CKG.Person))
    g.add((node, CKG.id, Literal(pid)))
    g.add((node, CKG.name, Literal("张伟")))
    g.add((node, CKG.idNumber, Literal(id_number)))
    g.add((node, CKG.birthDate, Literal(dt.date(1949, 12, 31), datatype=XSD.date)))


def test_shacl_accepts_a_valid_person_and_rejects_a_bad_check_character():
    good = Graph()
    _person(good, "P00000001", "11010519491231002X")
    conforms, _, text = validate(good, shacl_graph=load_shapes(), advanced=True)
    assert conforms, text
    bad = Graph()
    _person(bad, "P00000002", "110105194912310021")
    conforms, _, text = validate(bad, shacl_graph=load_shapes(), advanced=True)
    assert not conforms and "check character" in text


def test_shacl_requires_a_name():
    g = Graph()
    g.add((P.P00000003, RDF.type, CKG.Person))
    g.add((P.P00000003, CKG.id, Literal("P00000003")))
    conforms, _, _ = validate(g, shacl_graph=load_shapes())
    assert not conforms
