"""Analysts' Cypher: the database refuses every write; the row cap, timeout and masking hold."""

import hashlib
import json

import httpx
import pytest

from tests.graph_dump import dump

WRITES = [
    "CREATE (p:Person {id: 'P99999999', name: '入侵者'})",
    "MERGE (p:Person {id: 'P99999999'})",
    "MATCH (p:Person) WHERE p.id = 'P00000001' DELETE p",
    "MATCH (p:Person) WHERE p.id = 'P00000001' DETACH DELETE p",
    "MATCH (p:Person) SET p.name = 'x'",
    "MATCH (p:Person) REMOVE p.name",
    "MATCH (p:Person) SET p.name = NULL",
    "cReAtE (o:Organisation {id: 'O99999999', name: 'x'})",
    "MATCH (p:Person) WHERE p.id = 'P00000001' /* read? */ SET p.name = 'x' RETURN p",
    "// just a comment\nCREATE (o:Organisation {id: 'O99999998'})",
    "MATCH (p:Person) WHERE p.name = 'a;b' SET p.name = 'c'",
    "MATCH (o:Organisation) RETURN o.name AS n; CREATE (o:Organisation {id: 'O99999997'})",
    "MATCH (o:Organisation) RETURN o.name AS n UNION ALL MATCH (x:Organisation) SET x.name = 'y' RETURN x.name AS n",
    "UNWIND [1, 2] AS i CREATE (:Organisation {id: 'O9999' + CAST(i AS STRING)})",
    "MATCH (a:Person), (b:Organisation) WITH a, b LIMIT 1 CREATE (a)-[:MEMBER_OF]->(b)",
    "MATCH ()-[r:MEMBER_OF]->() DELETE r",
    "CALL drop_fts_index('Person', 'names')",
    "CALL create_fts_index('Person', 'names', ['name'])",
    "COPY Organisation FROM 'nowhere.csv'",
    "DROP TABLE Statement",
    "ALTER TABLE Person ADD shoe_size INT64",
    "CREATE NODE TABLE Pet(id STRING, PRIMARY KEY (id))",
    "BEGIN TRANSACTION; CREATE (:Organisation {id: 'O99999996'}); COMMIT",
    "CHECKPOINT",
    "LOAD EXTENSION 'x'",
    "MATCH (p:Person) WITH p LIMIT 1 CALL { WITH p SET p.name = 'z' } RETURN 1",
    "EXPORT DATABASE '/tmp/campus-kg-stolen'",
    "IMPORT DATABASE '/tmp/campus-kg-stolen'",
    "ATTACH '/tmp/other.lbdb' AS other (dbtype lbug)",
    "CALL timeout=1",
    "CALL threads=64",
    "MATCH (o:Organisation) CALL create_fts_index('Organisation', 'n', ['name']) RETURN o",
    "INSTALL json",
]


def _fingerprint(api) -> str:
    """A hash of everything in the served graph and in the analyst projection the Cypher workers read."""
    from pathlib import Path

    from graph_api.store import open_store
    pointer = api.workspace.read_current_graph()
    digest = hashlib.sha256()
    with open_store(api.settings, backend=pointer["backend"], read_only=True,
                    ladybug_path=Path(pointer["path"]) if pointer.get("path") else None,
                    neo4j_slot=pointer.get("neo4j_slot", "primary")) as store:
        digest.update(json.dumps(dump(store), ensure_ascii=False, default=str).encode())
    with open_store(api.settings, backend="ladybug", ladybug_path=Path(pointer["analyst_path"]), read_only=True) as store:
        digest.update(json.dumps(dump(store), ensure_ascii=False, default=str).encode())
    return digest.hexdigest()


def test_every_write_is_refused_and_the_graph_is_unchanged(api):
    headers = api.headers("analyst")
    before = _fingerprint(api)
    for query in WRITES:
        r = httpx.post(f"{api.url}/cypher", json={"query": query}, headers=headers, timeout=60)
        assert r.status_code == 400, (query, r.status_code, r.text)
    assert _fingerprint(api) == before


def test_the_database_itself_refuses_writes_without_the_guard(api):
    """The served store is read-only: even with the API's checks skipped, every write fails."""
    from graph_api.served_graph import ServedGraph
    graph = ServedGraph(api.settings, api.workspace)
    before = _fingerprint(api)
    try:
        for query in WRITES:
            if query.strip().upper() in ("CHECKPOINT",) or query.startswith(("EXPORT", "IMPORT", "ATTACH", "CALL",
                                                                            "INSTALL")):
                continue  # not writes to the graph: the guard alone stops these (see graph_api.cypher_guard)
            with pytest.raises(Exception):
                graph.query(query)
    finally:
        graph.close()
    assert _fingerprint(api) == before


def test_reads_work_with_a_row_cap_and_parameters(api):
    headers = api.headers("analyst")
    r = httpx.post(f"{api.url}/cypher", json={"query": "UNWIND range(1, 5000) AS i RETURN i"},
                   headers=headers)
    body = r.json()
    assert r.status_code == 200 and body["row_count"] == api.settings.cypher_max_rows and body["truncated"]
    r = httpx.post(f"{api.url}/cypher", json={"query": "MATCH (p:Person) WHERE p.id = $id RETURN p.name AS name",
                                              "parameters": {"id": api.persons[0]}}, headers=headers)
    assert r.status_code == 200 and r.json()["rows"][0]["name"] and not r.json()["truncated"]
    entries = api.state.access_entries(person_id=None)
    assert any(e["endpoint"] == "POST /cypher" for e in entries)


def test_cypher_reaches_no_raw_sensitive_value_and_auditors_trace_it_through_lineage(api):
    """Every Cypher caller queries the analyst projection: sensitive values are absent from master nodes
    and masked on statements, whatever the query does; an auditor reads the raw value through the
    lineage endpoint, which is logged."""
    analyst, auditor = api.headers("analyst"), api.headers("auditor")
    person = api.persons[0]
    raw = api.graph_query("MATCH (p:Person {id: $id}) RETURN p.id_number AS x", {"id": person})[0]["x"]
    assert raw and len(raw) == 18
    whole = {"query": "MATCH (p:Person) WHERE p.id = $id RETURN p", "parameters": {"id": person}}
    for headers in (analyst, auditor):
        answer = httpx.post(f"{api.url}/cypher", json=whole, headers=headers)
        assert answer.status_code == 200, answer.text
        assert "id_number" not in answer.json()["rows"][0]["p"] and raw not in answer.text
    for query in ("MATCH (p:Person) RETURN p.id_number AS x",
                  "MATCH (p:Person) RETURN p.ID_NUMBER AS x",
                  "MATCH (s:Statement) WHERE s.stated_property = 'bank_account' RETURN s.value AS v",
                  "MATCH (s:Statement) WHERE s.stated_property STARTS WITH 'bank' RETURN s.written_value AS v",
                  "MATCH (p:Person) RETURN p['id_' + 'number'] AS x"):
        r = httpx.post(f"{api.url}/cypher", json={"query": query}, headers=analyst)
        assert r.status_code == 400, query
    statements = httpx.post(f"{api.url}/cypher", json={
        "query": "MATCH (s:Statement) WHERE s.stated_property STARTS WITH 'phon' RETURN s LIMIT 5"},
        headers=auditor).json()
    assert statements["rows"] and all("*" in r["s"]["value"] for r in statements["rows"])
    traced = httpx.get(f"{api.url}/lineage/{person}/id_number", headers=auditor).json()
    assert traced["value"] == raw and not traced["masked"]
    assert any(e["endpoint"] == f"GET /lineage/{person}/id_number" for e in api.state.access_entries(person_id=person))


def test_a_slow_query_is_stopped_by_the_database(api):
    """A real timeout: the served store's connections carry `query_timeout_ms`; Ladybug interrupts."""
    from graph_api.app import create_app
    from tests.http_server import serve

    app = create_app(api.settings.model_copy(update={"query_timeout_ms": 100}))
    with serve(app) as url:
        _, token = app.state.state_store.add_user("impatient", "analyst")
        r = httpx.post(f"{url}/cypher", json={"query": "MATCH (a:Statement), (b:Statement) WHERE a.id < b.id RETURN count(*) AS n"},
                       headers={"Authorization": f"Bearer {token}"}, timeout=60)
        assert r.status_code == 408 and "100 ms" in r.json()["detail"]
        quick = httpx.post(f"{url}/cypher", json={"query": "MATCH (o:Organisation) RETURN count(o) AS n"},
                           headers={"Authorization": f"Bearer {token}"})
        assert quick.status_code == 200


@pytest.mark.parametrize("role", ["analyst", "auditor"])
def test_saved_queries_are_listed_and_run(api, role):
    headers = api.headers(role)
    listed = {q["name"]: q for q in httpx.get(f"{api.url}/queries", headers=headers).json()}
    assert "org_tree" in listed and "refresh_last_seen" not in listed and "write/refresh_last_seen" not in listed
    assert listed["person_outputs"]["parameters"] == ["id"]
    r = httpx.post(f"{api.url}/queries/org_tree", json={"parameters": {}}, headers=headers)
    assert r.status_code == 200 and r.json()["rows"]
    assert httpx.post(f"{api.url}/queries/person_outputs", json={}, headers=headers).status_code == 422
    lineage = {"parameters": {"entity_id": api.persons[0], "property": "name"}}
    assert listed["attribute_lineage"]["needs_entity"]
    assert httpx.post(f"{api.url}/queries/attribute_lineage", json=lineage, headers=headers).status_code == 422
    r = httpx.post(f"{api.url}/queries/attribute_lineage", json={**lineage, "entity": "Person"}, headers=headers)
    # statements' raw values are for roles that may see them
    assert r.status_code == (200 if role == "auditor" else 400), r.text
