"""The personal data centre over real HTTP: a uvicorn server, a real Ladybug graph."""

import csv
import io
import zipfile

import httpx
import pytest

from campus_kg.pipeline import export_links


def _attr(body: dict, prop: str) -> dict:
    return next(a for c in body["categories"] for a in c["attributes"] if a["property"] == prop)


def test_health_is_public_and_names_the_build(api):
    r = httpx.get(f"{api.url}/health")
    assert r.status_code == 200 and r.json()["graph_build"] == api.workspace.read_current_graph()["build_id"]


def test_a_person_reads_their_own_record_grouped_with_every_value_sourced(api):
    me = api.persons[0]
    r = httpx.get(f"{api.url}/me", headers=api.headers("self", me))
    assert r.status_code == 200
    body = r.json()
    assert body["master_id"] == me and body["status"] == "active"
    links = api.workspace.root / "links-api.csv"
    export_links(api.workspace, links)
    expected = sum(1 for line in links.read_text(encoding="utf-8").splitlines() if line.endswith(f",{me}"))
    assert len(body["source_records"]) == expected >= 2
    categories = [c["category"] for c in body["categories"]]
    assert categories[0] == "basic" and "employment" in categories and body["categories"][0]["label_zh"] == "基本信息"
    id_number = _attr(body, "id_number")
    assert not id_number["masked"] and len(id_number["value"]) == 18
    name = _attr(body, "name")
    assert name["source_system"] == "HR" and name["authority"] == 1 and name["last_updated"]
    assert name["source_record"] in {s["record_id"] for s in body["source_records"]}
    # an open conflict lists the other values the sources hold, each with its system
    conflicts = [a for c in body["categories"] for a in c["attributes"] if a["conflict"]]
    for a in conflicts:
        assert all(c["value"] != a["value"] and c["system"] for c in a["conflict"])
    assert any(m["start_date"] for m in body["memberships"])


def test_sensitive_values_are_masked_for_analysts(api):
    body = httpx.get(f"{api.url}/persons/{api.persons[0]}", headers=api.headers("analyst")).json()
    id_number = _attr(body, "id_number")
    assert id_number["masked"] and "*" in id_number["value"] and len(id_number["value"]) == 18
    assert id_number["value"][0].isdigit() and id_number["value"][1:17] == "*" * 16  # first and last only
    assert not _attr(body, "name")["masked"]


def test_every_read_is_in_the_access_log(api):
    person = api.persons[1]
    before = len(api.state.access_entries(person_id=person))
    assert httpx.get(f"{api.url}/persons/{person}", headers=api.headers("auditor")).status_code == 200
    entries = api.state.access_entries(person_id=person)
    assert len(entries) == before + 1
    assert entries[-1]["role"] == "auditor" and entries[-1]["endpoint"] == f"GET /persons/{person}"
    assert "id_number" in entries[-1]["fields"]


def test_the_human_record_is_append_only(tmp_path):
    from sqlalchemy import text

    from campus_kg.state import StateStore
    state = StateStore(f"sqlite:///{tmp_path / 'state.sqlite'}", "x" * 40)
    _, token = state.add_user("steward-1", "steward")
    steward = state.authenticate(token)
    state.log_access(steward, "P00000001", "GET /persons/P00000001", ["name"], None)
    state.add_decision("Person", "a:1", "b:2", "same", "steward-1", "one person")
    state.decide_correction(state.request_correction("P00000001", "phone", None, "13800000000", "new phone", None,
                                                     "someone"), "refused", "steward-1", "no evidence")
    state.audit(steward, "test", "P00000001")
    for table in ("access_log", "steward_decision", "correction_event", "audit_trail"):
        for statement in (f"DELETE FROM {table}", f"UPDATE {table} SET id = id + 1000"):
            with pytest.raises(Exception, match="append-only"):
                with state.engine.begin() as conn:
                    conn.execute(text(statement))


def test_unknown_person_is_404(api):
    assert httpx.get(f"{api.url}/persons/P99999999", headers=api.headers("steward")).status_code == 404


def test_export_is_complete_as_json_and_as_a_csv_zip(api):
    me = api.persons[0]
    headers = api.headers("self", me)
    record = httpx.get(f"{api.url}/me", headers=headers).json()
    j = httpx.get(f"{api.url}/me/export", headers=headers)
    assert j.status_code == 200 and j.headers["content-type"].startswith("application/json")
    body = j.json()
    assert body["record"]["master_id"] == me and body["access_log"]
    sourced = {s["record_id"] for s in record["source_records"]}
    assert {row["record_id"] for row in body["lineage"] if row["record_id"]} <= sourced
    assert {row["property"] for row in body["lineage"]} >= {"name", "id_number"}
    z = httpx.get(f"{api.url}/me/export", params={"format": "csv"}, headers=headers)
    assert z.status_code == 200 and z.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(z.content)) as zf:
        assert {"attributes.csv", "lineage.csv", "source_records.csv", "access_log.csv",
                "corrections.csv", "memberships.csv", "related.csv"} <= set(zf.namelist())
        rows = list(csv.DictReader(io.StringIO(zf.read("attributes.csv").decode("utf-8-sig"))))
    assert {r["property"] for r in rows} == {a["property"] for c in record["categories"] for a in c["attributes"]}
    assert any(e["endpoint"].startswith("GET /me/export") for e in api.state.access_entries(person_id=me))


def test_forms_prefill_with_provenance_and_list_what_they_cannot_fill(api):
    staff = api.persons[0]
    headers = api.headers("self", staff)
    forms = httpx.get(f"{api.url}/forms", headers=headers).json()
    assert {f["name"] for f in forms} == {"title_promotion", "scholarship"}
    r = httpx.post(f"{api.url}/forms/title_promotion/prefill", json={}, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    fields = {f["label"]: f for f in body["fields"]}
    assert fields["姓名 Name"]["source_system"] == "HR" and fields["姓名 Name"]["source_record"]
    age = fields["年龄 Age"]
    assert isinstance(age["value"], int) and 18 <= age["value"] <= 80 and age["rule"] == "derived from birth_date"
    assert "任现职以来教学工作量 Teaching load since current title" in body["unfilled"]
    assert len(body["fields"]) + len(body["unfilled"]) == 20
    other = api.persons[1]
    assert httpx.post(f"{api.url}/forms/scholarship/prefill", json={"person_id": other},
                      headers=headers).status_code == 403
    assert httpx.post(f"{api.url}/forms/nope/prefill", json={}, headers=headers).status_code == 404


def test_a_graduate_students_scholarship_form(api):
    student = api.graph_query("MATCH (a:Person)-[:ADVISES]->(s:Person) WHERE s.student_no IS NOT NULL "
                              "RETURN s.id AS id, a.name AS advisor ORDER BY id LIMIT 1")[0]
    r = httpx.post(f"{api.url}/forms/scholarship/prefill", json={}, headers=api.headers("self", student["id"]))
    assert r.status_code == 200, r.text
    fields = {f["label"]: f for f in r.json()["fields"]}
    assert fields["学号 Student number"]["value"] and fields["学号 Student number"]["source_system"]
    assert student["advisor"] in fields["导师 Advisor"]["value"] and fields["导师 Advisor"]["rule"] == "derived ADVISES"
    assert "学习成绩排名 Grade ranking" in r.json()["unfilled"]
    # a steward fills a student's form for them; the analyst may not
    steward = httpx.post(f"{api.url}/forms/scholarship/prefill", json={"person_id": student["id"]},
                         headers=api.headers("steward"))
    assert steward.status_code == 200 and steward.json()["person_id"] == student["id"]
