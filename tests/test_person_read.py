"""A person's record is read in one store call (one statement on Neo4j), answers the same on both
backends, and the read path still cannot write."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from graph_api.person_view import find_person, person_record
from graph_api.store import open_store
from tests.backends import neo4j_param, require_neo4j


def _count_calls(store, monkeypatch, names: tuple[str, ...]) -> Counter:
    """Counts calls to the real store's methods (each still runs against the database)."""
    calls: Counter = Counter()
    for name in names:
        real = getattr(store, name)

        def counted(*args, _name=name, _real=real, **kwargs):
            calls[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(store, name, counted)
    return calls


def test_a_person_read_is_one_store_call(api, monkeypatch):
    """From the graph (GET /persons/{id} reads the build's precomputed records, tests/test_person_records.py;
    the export, the form prefill and a build without records read the graph)."""
    graph = api.app.state.graph
    # The first read caches what every record shares (the source systems' names) for the build.
    person_record(graph, api.persons[0], "auditor")
    fresh = api.graph_query("MATCH (p:Person)-[:AUTHOR_OF]->() WHERE p.id <> $seen RETURN p.id AS id "
                            "ORDER BY id LIMIT 1", {"seen": api.persons[0]})[0]["id"]
    with graph._lease() as build:
        store = build.store
    calls = _count_calls(store, monkeypatch, ("query", "person_read", "_run_read"))

    record = person_record(graph, fresh, "auditor", find_person(graph, fresh)).model_dump(mode="json")

    assert record["master_id"] == fresh and record["source_records"]
    assert any(r["relation"] == "AUTHOR_OF" for r in record["related"])
    assert calls["person_read"] == 1 and calls["query"] == 0, calls
    if api.backend == "neo4j":
        assert calls["_run_read"] == 1, calls  # one Bolt statement: one round trip


@pytest.mark.parametrize("api", [neo4j_param()], indirect=True)
def test_person_records_are_the_same_on_both_backends(api, demo):
    """The Neo4j record (one statement) against the Ladybug record (the saved queries) of the same
    lakehouse, for every kind of person the record shows, as a reader of raw and of masked values."""
    neo4j_graph = api.app.state.graph
    ids = list(api.persons)
    for cypher in ("MATCH (p:Person)-[:AUTHOR_OF]->() RETURN p.id AS id ORDER BY id LIMIT 1",
                   "MATCH (p:Person)-[:LEADS]->() RETURN p.id AS id ORDER BY id LIMIT 1",
                   "MATCH (p:Person)-[:CUSTODIAN_OF]->() RETURN p.id AS id ORDER BY id LIMIT 1",
                   "MATCH (p:Person)-[:ADVISES]->() RETURN p.id AS id ORDER BY id LIMIT 1",
                   "MATCH (:Person)-[:ADVISES]->(p:Person) RETURN p.id AS id ORDER BY id LIMIT 1",
                   "MATCH (f:FormerId)-[:MERGED_INTO]->() RETURN f.id AS id ORDER BY id LIMIT 1"):
        ids += [r["id"] for r in neo4j_graph.query(cypher)]
    assert len(ids) >= 7
    ladybug_path = Path(demo.workspace.read_current_graph()["path"])
    with open_store(demo.settings, backend="ladybug", ladybug_path=ladybug_path, read_only=True) as ladybug:
        for person in ids:
            for role in ("auditor", "analyst"):
                assert person_record(ladybug, person, role) == person_record(neo4j_graph, person, role), (person, role)


@pytest.mark.neo4j
def test_neo4j_reads_refuse_writes(demo):
    """Reads are auto-commit transactions now (one round trip): still in read mode, so the server
    refuses a write sent through the read path."""
    require_neo4j()
    with open_store(demo.settings, backend="neo4j") as store:
        with pytest.raises(Exception, match="read access mode"):
            store.query("CREATE (n:Scratch {id: 'written-through-a-read'}) RETURN n.id AS id")
        assert store.query("MATCH (n:Scratch) RETURN count(n) AS n") == [{"n": 0}]
