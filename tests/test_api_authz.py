"""The authorization matrix: every endpoint × every role, deny by default.

The expected table is written here, independently of graph_api/authz.py; an endpoint missing from
it fails the test, so a new endpoint cannot ship without its row."""

import httpx
import pytest

from campus_kg.state import ROLES

ALL = set(ROLES)
OWN = "own"  # `self` allowed on their own person only (the request names another person: 403)

# (method, path template) -> roles allowed ("self" entries may be OWN)
MATRIX = {
    ("GET", "/persons/{master_id}"): {"steward", "analyst", "auditor", OWN},
    ("GET", "/me"): {"self"},
    ("GET", "/me/export"): {"self"},
    ("GET", "/me/corrections"): {"self"},
    ("POST", "/me/corrections"): {"self"},
    ("GET", "/forms"): {"self", "steward"},
    ("POST", "/forms/{template}/prefill"): {"steward", OWN},
    ("GET", "/review/queue"): {"steward"},
    ("GET", "/review/items/{item_id}"): {"steward"},
    ("POST", "/review/items/{item_id}/decision"): {"steward"},
    ("POST", "/entities/merge"): {"steward"},
    ("POST", "/entities/{master_id}/split"): {"steward"},
    ("POST", "/entities/{master_id}/unmerge"): {"steward"},
    ("GET", "/corrections"): {"steward"},
    ("POST", "/corrections/{request_id}/decision"): {"steward"},
    ("GET", "/jobs/apply"): {"steward", "admin"},
    ("POST", "/cypher"): {"analyst", "auditor"},
    ("GET", "/queries"): {"analyst", "auditor"},
    ("POST", "/queries/{name}"): {"analyst", "auditor"},
    ("GET", "/lineage/{entity_id}/{attribute}"): {"steward", "auditor", OWN},
    ("GET", "/entities/{entity_id}/history"): {"steward", "auditor"},
    ("GET", "/access-log"): {"auditor", "self"},
    ("GET", "/audit-trail"): {"auditor", "admin"},
    ("GET", "/portraits/teachers/{person_id}"): {"analyst", OWN},
    ("GET", "/portraits/students/{person_id}"): {"analyst", OWN},
    ("GET", "/portraits/research"): {"analyst"},
    ("GET", "/quality"): {"steward", "analyst", "auditor", "admin"},
}
PUBLIC = {("GET", "/health")}


def _request(method: str, path: str, person: str) -> tuple[str, dict]:
    """A concrete request: the person's ID where a path names one, harmless bodies otherwise (a
    steward's allowed write is refused on its content, 404/409/422, so the matrix changes nothing)."""
    concrete = path.format(master_id=person, person_id=person, entity_id=person, attribute="name",
                           template="title_promotion", item_id="no-such-item", request_id="no-such-request",
                           name="org_tree")
    bodies = {
        "/me/corrections": {"property": "no_such_property", "proposed_value": "x", "reason": "matrix"},
        "/forms/title_promotion/prefill": {"person_id": person},
        "/review/items/no-such-item/decision": {"judgement": "unsure", "reason": "matrix"},
        "/entities/merge": {"ids": ["P99999998", "P99999999"], "reason": "matrix"},
        f"/entities/{person}/split": {"groups": [["no:1"], ["no:2"]], "reason": "matrix"},
        f"/entities/{person}/unmerge": {"reason": "matrix"},
        "/corrections/no-such-request/decision": {"status": "refused", "note": "matrix"},
        "/cypher": {"query": "MATCH (o:Organisation) RETURN o.name AS name LIMIT 1"},
        "/queries/org_tree": {"parameters": {}},
    }
    return concrete, bodies.get(concrete, {})


def test_every_endpoint_has_a_row(api):
    spec = api.app.openapi()["paths"]
    routes = {(m.upper(), p) for p, ops in spec.items() for m in ops}
    assert routes - PUBLIC == set(MATRIX), "endpoints without a row in the matrix (or rows without an endpoint)"


@pytest.mark.parametrize("route", sorted(MATRIX))
def test_the_matrix(api, route):
    method, path = route
    own, other = api.persons
    allowed = MATRIX[route]
    concrete, body = _request(method, path, own)
    def call(headers, url=concrete, json=body):
        return httpx.request(method, f"{api.url}{url}", headers=headers, json=json if method == "POST" else None,
                             timeout=60)

    assert call({}).status_code == 401, "no token"
    assert call({"Authorization": "Bearer not-a-token"}).status_code == 401, "unknown token"
    for role in sorted(ALL):
        headers = api.headers(role, own if role == "self" else None)
        status = call(headers).status_code
        may = role in allowed or (role == "self" and OWN in allowed)
        if may:
            assert status not in (401, 403), (role, concrete, status)
            assert status < 500, (role, concrete, status)
        else:
            assert status == 403, (role, concrete, status)
    if OWN in allowed:  # a person reaching someone else, named in the path or the body
        other_url, other_body = _request(method, path, other)
        assert call(api.headers("self", own), other_url, other_body).status_code == 403


def test_users_command_adds_lists_and_revokes_tokens(api):
    from typer.testing import CliRunner

    from campus_kg.cli import app
    runner = CliRunner()
    ws = str(api.workspace.root)
    out = runner.invoke(app, ["users", "add", "--name", "zhang-wei", "--role", "self", "--person", api.persons[0],
                              "--workspace", ws])
    assert out.exit_code == 0, out.output
    token = out.output.strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{api.url}/me", headers=headers).json()["master_id"] == api.persons[0]
    token_id = out.output.split("token ")[1].split()[0]
    assert token_id in runner.invoke(app, ["users", "list", "--workspace", ws]).output
    assert runner.invoke(app, ["users", "revoke", token_id, "--workspace", ws]).exit_code == 0
    assert httpx.get(f"{api.url}/me", headers=headers).status_code == 401
    unknown = runner.invoke(app, ["users", "add", "--name", "x", "--role", "self", "--person", "P99999999",
                                  "--workspace", ws])
    assert unknown.exit_code != 0 and "no master person P99999999" in unknown.output
    no_person = runner.invoke(app, ["users", "add", "--name", "x", "--role", "self", "--workspace", ws])
    assert no_person.exit_code != 0
