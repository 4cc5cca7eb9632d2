"""Auditors, portraits and quality through the API."""

import datetime as dt

import httpx


def test_lineage_answers_with_sources_and_as_of(api):
    person = api.persons[0]
    auditor = api.headers("auditor")
    r = httpx.get(f"{api.url}/lineage/{person}/name", headers=auditor)
    assert r.status_code == 200, r.text
    body = r.json()
    chosen = [s for s in body["statements"] if s["chosen"]]
    assert len(chosen) == 1 and chosen[0]["value"] == body["value"] and chosen[0]["system"] and chosen[0]["run_id"]
    assert body["rule"] == chosen[0]["rule"]
    past = httpx.get(f"{api.url}/lineage/{person}/name", params={"as_of": "2000-01-01T00:00:00"},
                     headers=auditor).json()
    assert past["value_as_of"] is None  # nothing was loaded then
    now = httpx.get(f"{api.url}/lineage/{person}/name",
                    params={"as_of": dt.datetime.now(dt.UTC).isoformat()}, headers=auditor).json()
    assert now["value_as_of"] == body["value"]
    analyst_view = httpx.get(f"{api.url}/lineage/{person}/id_number", headers=api.headers("analyst"))
    assert analyst_view.status_code == 403
    own = httpx.get(f"{api.url}/lineage/{person}/id_number", headers=api.headers("self", person)).json()
    assert not own["masked"] and len(own["value"]) == 18
    assert httpx.get(f"{api.url}/lineage/{person}/shoe_size", headers=auditor).status_code == 404
    assert any(e["endpoint"] == f"GET /lineage/{person}/name" for e in api.state.access_entries(person_id=person))


def test_access_log_filters_and_a_person_sees_who_read_their_record(api):
    person, other = api.persons
    reader = api.headers("steward")
    httpx.get(f"{api.url}/persons/{person}", headers=reader)
    auditor = api.headers("auditor")
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).isoformat()
    entries = httpx.get(f"{api.url}/access-log", params={"person": person, "actor": "test-steward", "since": since},
                        headers=auditor).json()
    assert entries and all(e["person_id"] == person and e["actor"] == "test-steward" for e in entries)
    assert "name" in entries[-1]["fields"]
    mine = api.headers("self", person)
    own = httpx.get(f"{api.url}/access-log", headers=mine).json()
    assert own and {e["person_id"] for e in own} == {person}
    assert httpx.get(f"{api.url}/access-log", params={"person": other}, headers=mine).status_code == 403


def test_audit_trail_lists_steward_actions(api):
    person = api.persons[0]
    httpx.post(f"{api.url}/me/corrections", json={"property": "phone", "proposed_value": "13800138000",
                                                   "reason": "new number"}, headers=api.headers("self", person))
    trail = httpx.get(f"{api.url}/audit-trail", headers=api.headers("auditor")).json()
    assert trail[-1]["action"] == "correction.request" and trail[-1]["target"] == person


def test_teacher_and_student_portraits(api):
    analyst = api.headers("analyst")
    teacher_id = api.graph_query("MATCH (p:Person)-[:AUTHOR_OF]->(:Publication) RETURN p.id AS id, count(*) AS n "
                                 "ORDER BY n DESC, id LIMIT 1")[0]["id"]
    t = httpx.get(f"{api.url}/portraits/teachers/{teacher_id}", headers=analyst).json()
    years = t["sections"]["research_output_by_year"]["rows"]
    outputs = api.graph_query("MATCH (p:Person)-[:AUTHOR_OF]->(w:Publication) WHERE p.id = $id RETURN count(w) AS n",
                              {"id": teacher_id})[0]["n"]
    assert sum(y["outputs"] for y in years) == outputs > 0
    assert t["sections"]["teaching_load"]["available"] is False
    student_id = api.graph_query("MATCH (r:SourceRecord)-[:RESOLVED_TO]->(p:Person) WHERE r.system = 'XG' "
                                 "RETURN p.id AS id ORDER BY id LIMIT 1")[0]["id"]
    s_analyst = httpx.get(f"{api.url}/portraits/students/{student_id}", headers=analyst).json()
    assert s_analyst["sections"]["economic_hardship"]["available"] is False
    s_self = httpx.get(f"{api.url}/portraits/students/{student_id}",
                       headers=api.headers("self", student_id)).json()
    assert s_self["sections"]["economic_hardship"]["available"] is True


def test_research_portrait_by_organisation_and_year(api):
    analyst = api.headers("analyst")
    whole = httpx.get(f"{api.url}/portraits/research", headers=analyst).json()
    total = api.graph_query("MATCH (w:Publication)<-[:AUTHOR_OF]-(:Person)-[:MEMBER_OF]->(:Organisation) "
                            "RETURN count(DISTINCT w) AS n")[0]["n"]
    assert sum(y["outputs"] for y in whole["by_year"]) == total > 0
    busiest = api.graph_query("MATCH (w:Publication)<-[:AUTHOR_OF]-(:Person)-[:MEMBER_OF]->(o:Organisation) "
                              "RETURN o.id AS id, count(DISTINCT w) AS n ORDER BY n DESC, id LIMIT 1")[0]
    one = httpx.get(f"{api.url}/portraits/research", params={"org": busiest["id"]}, headers=analyst).json()
    assert one["org"] == busiest["id"] and one["org_name"]
    assert busiest["n"] <= one["by_org"][0]["outputs"] <= total  # its sub-organisations count in
    assert sum(y["outputs"] for y in one["by_year"]) == one["by_org"][0]["outputs"]
    assert httpx.get(f"{api.url}/portraits/research", params={"org": "O99999999"}, headers=analyst).status_code == 404


def test_quality_report(api):
    r = httpx.get(f"{api.url}/quality", headers=api.headers("admin"))
    assert r.status_code == 200
    body = r.json()
    assert body["departments"] and {d["light"] for d in body["departments"]} <= {"green", "yellow", "red", None}


def test_every_read_of_a_persons_data_is_logged(api):
    person = api.persons[0]
    own = api.headers("self", person)
    reads = [
        ("GET", f"/persons/{person}", api.headers("steward"), None),
        ("GET", "/me", own, None),
        ("GET", "/me/export", own, None),
        ("POST", "/forms/title_promotion/prefill", own, {}),
        ("GET", f"/lineage/{person}/name", api.headers("auditor"), None),
        ("GET", f"/portraits/teachers/{person}", api.headers("analyst"), None),
        ("GET", f"/portraits/students/{person}", api.headers("analyst"), None),
        ("POST", "/cypher", api.headers("analyst"),
         {"query": "MATCH (p:Person {id: $id}) RETURN p.id AS id, p.name AS name", "parameters": {"id": person}}),
        ("POST", "/queries/person_outputs", api.headers("auditor"), {"parameters": {"id": person}}),
    ]
    for method, path, headers, body in reads:
        before = len(api.state.access_entries(person_id=person))
        # generous: on a loaded 2-core machine the first Cypher request starts its sandboxed worker
        r = httpx.request(method, f"{api.url}{path}", headers=headers, json=body, timeout=60)
        assert r.status_code == 200, (path, r.text)
        entries = api.state.access_entries(person_id=person)
        assert len(entries) == before + 1, path
        assert entries[-1]["endpoint"].split("?")[0].endswith(path.split("/")[-1]) or path in entries[-1]["endpoint"]
