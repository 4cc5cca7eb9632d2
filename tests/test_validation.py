"""Rules compiled from the SHACL shapes agree with pySHACL running the shapes themselves."""

import pyshacl
from rdflib import RDF, Graph, Literal, Namespace

from ingest.idcard import parse_id_number
from ingest.validation import record_rules
from ontology.model import CKG, load_shapes

EX = Namespace("https://example.org/")


def _shacl_violations(prop_iri, values) -> set[str]:
    data = Graph()
    for i, v in enumerate(values):
        node = EX[f"p{i}"]
        data.add((node, RDF.type, CKG.Person))
        data.add((node, CKG.id, Literal(f"P{i:08d}")))
        data.add((node, CKG.name, Literal("张伟")))
        data.add((node, prop_iri, Literal(v)))
    _, report, _ = pyshacl.validate(data, shacl_graph=load_shapes(), advanced=True, allow_warnings=True)
    sh = Namespace("http://www.w3.org/ns/shacl#")
    return {str(report.value(r, sh.value)) for r in report.subjects(RDF.type, sh.ValidationResult)
            if report.value(r, sh.resultPath) == prop_iri}


def test_compiled_rules_come_from_the_shapes():
    rules = {r.property: r for r in record_rules()["Person"]}
    assert rules["name"].required and rules["name"].min_length == 1
    assert rules["sex"].allowed == frozenset({"0", "1", "2", "9"})
    assert rules["phone"].pattern.pattern.startswith("^\\+")
    assert "id" not in rules  # the master ID is minted by resolution, not read from sources
    assert rules["sex"].check("3") and rules["sex"].check("1") is None


def test_id_number_checks_agree_with_pyshacl_including_the_sparql_check_character():
    values = ["11010519491231002X", "110105194912310021", "110105197503020033", "110105197503020034",
              "11010519801120069X", "990105190013010011"]
    by_shacl = _shacl_violations(CKG.idNumber, values)
    compiled = {r for r in record_rules()["Person"] if r.property == "id_number"}
    by_ingest = {v for v in values
                 if not parse_id_number(v).valid or any(rule.check(v) for rule in compiled)}
    assert by_ingest == by_shacl
    assert by_shacl == {"110105194912310021", "110105197503020034", "990105190013010011"}


def test_phone_and_sex_rules_agree_with_pyshacl():
    rules = {r.property: r for r in record_rules()["Person"]}
    phones = ["+8613800138000", "13800138000", "+86-138"]
    assert {p for p in phones if rules["phone"].check(p)} == _shacl_violations(CKG.phone, phones)
    sexes = ["1", "2", "3", "男"]
    assert {s for s in sexes if rules["sex"].check(s)} == _shacl_violations(CKG.sex, sexes)
