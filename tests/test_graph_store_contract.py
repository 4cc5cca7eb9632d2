"""The graph-store port's contract, one body per backend (tests/backends.py)."""

import datetime as dt

import pyarrow as pa
import pytest

from graph_api.store import GraphStoreError
from tests.backends import each_backend


def _load_small_graph(store):
    store.apply_schema()
    store.load_nodes("Person", pa.table({"id": ["P00000001", "P00000002"], "name": ["张伟", "李娜"],
                                         "birth_date": [dt.date(1990, 1, 2), None]}))
    store.load_nodes("Organisation", pa.table({"id": ["O00000001"], "name": ["计算机科学与工程学院"]}))
    store.load_rels("MEMBER_OF", "Person", "Organisation",
                    pa.table({"from": ["P00000001", "P00000002"], "to": ["O00000001", "O00000001"],
                              "role": ["教授", None]}))


@each_backend
def test_bulk_load_and_parameterised_read(backend, graph_store_factory):
    store = graph_store_factory(backend)
    _load_small_graph(store)
    rows = store.query("MATCH (p:Person)-[m:MEMBER_OF]->(o:Organisation) WHERE p.id = $id "
                       "RETURN p.name AS name, p.birth_date AS birth, m.role AS role, o.name AS org", {"id": "P00000001"})
    assert rows == [{"name": "张伟", "birth": dt.date(1990, 1, 2), "role": "教授", "org": "计算机科学与工程学院"}]
    assert store.count("Person") == 2


@each_backend
def test_write_batch_is_one_transaction(backend, graph_store_factory):
    store = graph_store_factory(backend)
    _load_small_graph(store)
    store.write([("MATCH (p:Person) WHERE p.id = $id SET p.name = $name", {"id": "P00000002", "name": "李娜娜"})])
    assert store.query("MATCH (p:Person) WHERE p.id = 'P00000002' RETURN p.name AS n") == [{"n": "李娜娜"}]
    with pytest.raises(Exception):
        store.write([("MATCH (p:Person) WHERE p.id = 'P00000001' SET p.name = 'changed'", {}),
                     ("THIS IS NOT CYPHER", {})])
    assert store.query("MATCH (p:Person) WHERE p.id = 'P00000001' RETURN p.name AS n") == [{"n": "张伟"}]


@each_backend
def test_the_port_refuses_what_the_ontology_does_not_define(backend, graph_store_factory):
    store = graph_store_factory(backend)
    store.apply_schema()
    with pytest.raises(GraphStoreError, match="not in the ontology"):
        store.load_nodes("Person", pa.table({"id": ["P1"], "shoe_size": ["42"]}))
    with pytest.raises(GraphStoreError, match="not in the ontology"):
        store.load_nodes("Pet", pa.table({"id": ["X"]}))
    with pytest.raises(GraphStoreError, match="does not connect"):
        store.load_rels("MEMBER_OF", "Organisation", "Person", pa.table({"from": ["O1"], "to": ["P1"]}))


@each_backend
def test_delete_nodes_takes_their_relationships_and_reloading_adds_them_back(backend, graph_store_factory):
    store = graph_store_factory(backend)
    _load_small_graph(store)
    store.delete_nodes("Person", ["P00000001"])
    assert store.count("Person") == 1 and store.count_rels("MEMBER_OF") == 1
    store.load_nodes("Person", pa.table({"id": ["P00000001"], "name": ["张伟"]}))
    store.load_rels("MEMBER_OF", "Person", "Organisation", pa.table({"from": ["P00000001"], "to": ["O00000001"],
                                                                      "role": ["副教授"]}))
    assert store.query("MATCH (p:Person)-[m:MEMBER_OF]->(o:Organisation) WHERE p.id = 'P00000001' "
                       "RETURN m.role AS role") == [{"role": "副教授"}]
    assert store.count_rels("MEMBER_OF") == 2


@each_backend
def test_nodes_and_relationships_come_back_as_dicts_with_their_label(backend, graph_store_factory):
    store = graph_store_factory(backend)
    _load_small_graph(store)
    rows = store.query("MATCH (p:Person {id: 'P00000001'})-[r:MEMBER_OF|ADVISES]->(o) RETURN r AS rel, o AS other")
    assert len(rows) == 1
    assert rows[0]["rel"]["_LABEL"] == "MEMBER_OF" and rows[0]["rel"]["role"] == "教授"
    assert rows[0]["other"]["_LABEL"] == "Organisation" and rows[0]["other"]["name"] == "计算机科学与工程学院"


@each_backend
def test_a_load_larger_than_one_batch_arrives_whole(backend, graph_store_factory):
    """Neo4j loads batches in parallel write transactions (neo4j_batch_size, neo4j_write_threads):
    every row of every batch must arrive, with its dates and timestamps, exactly once."""
    store = graph_store_factory(backend)
    store.apply_schema()
    n = 12_345
    ids = [f"P{i:08d}" for i in range(n)]
    store.load_nodes("Person", pa.table({"id": ids, "name": [f"人{i}" for i in range(n)],
                                         "birth_date": [dt.date(1950, 1, 1) + dt.timedelta(days=i) for i in range(n)]}))
    store.load_nodes("Organisation", pa.table({"id": ["O00000001"], "name": ["计算机科学与工程学院"]}))
    store.load_rels("MEMBER_OF", "Person", "Organisation",
                    pa.table({"from": ids, "to": ["O00000001"] * n, "start_date": [dt.date(2000, 1, 1)] * n}))
    assert store.count("Person") == n and store.count_rels("MEMBER_OF") == n
    last = store.query("MATCH (p:Person {id: $id})-[m:MEMBER_OF]->() RETURN p.birth_date AS b, m.start_date AS s",
                       {"id": ids[-1]})
    assert last == [{"b": dt.date(1950, 1, 1) + dt.timedelta(days=n - 1), "s": dt.date(2000, 1, 1)}]
