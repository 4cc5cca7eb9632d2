"""Fails when code or a saved query uses a label, relationship or property the ontology lacks."""

import re
from pathlib import Path

from ontology.model import load_ontology
from ontology.schema import graph_schema

ROOT = Path(__file__).resolve().parents[1]
CODE_DIRS = ("campus_kg", "ingest", "resolution", "graph_api", "queries")
LABEL = re.compile(r"\(\s*\w*\s*:\s*([A-Z]\w*)")
REL = re.compile(r"\[\s*\w*\s*:\s*([A-Z_]+)")
PROP = re.compile(r"\b([a-z])\.([a-z_]+)\b")
CYPHER_HINT = re.compile(r"\b(MATCH|MERGE|UNWIND)\b")


def cypher_texts() -> list[tuple[str, str]]:
    texts = [(str(p.relative_to(ROOT)), p.read_text(encoding="utf-8")) for p in (ROOT / "queries").rglob("*.cypher")]
    for d in CODE_DIRS:
        for path in (ROOT / d).rglob("*.py"):
            for literal in re.findall(r'f?"""(.*?)"""|f?"([^"\n]*)"', path.read_text(encoding="utf-8"), re.S):
                text = literal[0] or literal[1]
                if CYPHER_HINT.search(text) and ("(" in text or "[" in text):
                    texts.append((str(path.relative_to(ROOT)), text))
    return texts


def test_saved_queries_and_code_use_only_ontology_terms():
    ont = load_ontology()
    schema = graph_schema(ont)
    labels = set(schema.nodes) | {"Entity"}  # `:Entity`: the master class a caller names (queries.ENTITY)
    rels = set(schema.rels)
    props = set(ont.properties)
    texts = cypher_texts()
    assert any(name.endswith(".cypher") for name, _ in texts)
    problems = []
    for name, text in texts:
        problems += [f"{name}: label {x}" for x in LABEL.findall(text) if x not in labels]
        problems += [f"{name}: relationship {x}" for x in REL.findall(text) if x not in rels]
        if name.endswith(".cypher"):
            problems += [f"{name}: property {p}" for _, p in PROP.findall(text) if p not in props]
    assert not problems, problems


def test_the_check_catches_an_undefined_term(tmp_path):
    bogus = "MATCH (p:Person)-[:LIKES]->(q:Pet) RETURN p.shoe_size"
    assert REL.findall(bogus) == ["LIKES"] and "Pet" in LABEL.findall(bogus)
    assert ("p", "shoe_size") in PROP.findall(bogus)
