"""The analyst projection of a build holds nothing analysts may not see, whatever the query: sensitive
values are absent or masked, IDs derived from raw values are keyed HMACs; the rest equals the full graph."""

import hashlib
import hmac
import json
import re
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campus_kg.workspace import Workspace
from graph_api.graph_build.analyst_graph import (AnalystKeyError, AnalystProjection, key_path, projection_key,
                                                 sources_keyed_on_sensitive)
from graph_api.graph_build.run import Frame, build_graph
from graph_api.store import open_store
from ingest.lakehouse import Lakehouse, ods_table, quote
from ontology.masking import KEEP, mask, mask_array
from ontology.model import load_ontology
from queries import load_query, names, needs_entity
from tests.graph_dump import dump

RAW_SENSITIVE = ("id_number", "phone", "bank_account")
BYPASSES = (
    "MATCH (p:Person) RETURN collect(string(p)) AS everyone",
    "MATCH (s:Statement) RETURN collect(string(s)) AS everything",
    "MATCH (p:Person) RETURN collect(struct_extract(p, 'id_' + 'number')) AS ids",
    "MATCH (p:Person) RETURN collect(struct_extract(p, 'ph' + 'one')) AS phones",
    "MATCH (s:Statement)-[:STATED_IN]->(r:SourceRecord) RETURN collect(string(s) + string(r)) AS lineage",
)


@dataclass
class Graphs:
    workspace: Workspace
    settings: object
    pointer: dict

    def open(self, which: str):
        return open_store(self.settings, backend="ladybug", ladybug_path=Path(self.pointer[which]), read_only=True)


@pytest.fixture(scope="module")
def graphs(demo) -> Graphs:
    return Graphs(demo.workspace, demo.settings, demo.workspace.read_current_graph())


def _long(values: set[str]) -> set[str]:
    # Shorter strings (a junk phone "123") could occur anywhere by chance; no real identifier is that short.
    return {v for v in values if len(re.sub(r"\D", "", v)) >= 7}


@pytest.fixture(scope="module")
def raw_values(demo) -> tuple[set[str], set[str]]:
    """Every raw ID number, phone and bank account of the test data, as standardised and as read
    (ODS); and the 15-digit, lower- and upper-case-x forms of each ID number."""
    found: set[str] = set()
    with Lakehouse(demo.workspace.lakehouse, read_only=True) as lake:
        for row in lake.con.execute(f"SELECT {', '.join(RAW_SENSITIVE)} FROM dwd_person_record").fetchall():
            found |= {v for v in row if v}
        columns = lake.con.execute("SELECT source, column_name FROM source_field WHERE list_contains(?, property)",
                                   [list(RAW_SENSITIVE)]).fetchall()
        for source, column in columns:
            found |= {v.strip() for (v,) in lake.con.execute(
                f"SELECT DISTINCT {quote(column)} FROM {ods_table(source)} WHERE {quote(column)} IS NOT NULL").fetchall()}
    forms = {form for value in found if re.fullmatch(r"\d{17}[\dXx]", value)
             for form in (value[:6] + value[8:17], value.lower(), value.upper())}
    return _long(found), _long(forms - found)


def _everything(store) -> str:
    """The store's whole content and the bypass queries' answers, as one string."""
    answers = [store.query(q) for q in BYPASSES]
    return json.dumps([dump(store), answers], ensure_ascii=False, default=str)


def _found(values: set[str], text: str) -> set[str]:
    """The values that occur in the text. Each occurrence lies inside a maximal run of the characters
    values are made of, so searching the distinct runs (a small part of the text) finds them all."""
    alphabet = re.escape("".join(sorted(set("".join(values)))))
    runs = "\n".join(set(re.findall(f"[{alphabet}]{{7,}}", text)))
    return {v for v in values if v in runs}


def test_no_query_finds_a_raw_identifier_in_the_analyst_graph(graphs, raw_values):
    read, forms = raw_values
    with graphs.open("path") as full:
        full_text = _everything(full)
    with graphs.open("analyst_path") as analyst:
        analyst_text = _everything(analyst)
    # the full graph holds them (so this test can fail), legacy 15-digit and lower-case-x IDs too ...
    assert len(read) > 1000 and _found(read, full_text) == read
    assert any(re.fullmatch(r"\d{15}", v) for v in read) and any(v.endswith("x") for v in read)
    # ... the analyst graph none of them, in any form, whatever the query
    assert _found(read | forms, analyst_text) == set()
    assert projection_key(graphs.workspace).hex() not in analyst_text + full_text


def test_sensitive_properties_are_absent_from_masters_and_masked_in_statements(graphs):
    ont = load_ontology()
    with graphs.open("analyst_path") as analyst:
        for cls in ont.master_classes():
            for prop in ont.class_properties(cls.name):
                if prop.sensitive:
                    n = analyst.query(f"MATCH (m:{cls.name}) WHERE m.{prop.name} IS NOT NULL RETURN count(*) AS n")
                    assert n[0]["n"] == 0, (cls.name, prop.name)
        rows = analyst.query("""MATCH (s:Statement) WHERE s.stated_property IN ['id_number', 'phone', 'bank_account']
            AND s.value IS NOT NULL RETURN s.stated_property AS p, s.value AS v""")
    shapes = {"id_number": r"\d\*{17}", "phone": r"\*+\d\d", "bank_account": r"\*+\d{4}"}
    assert {r["p"] for r in rows} == set(shapes)
    for row in rows:
        assert re.fullmatch(shapes[row["p"]], row["v"]), row


def _hmac(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:32]


def test_statement_ids_and_row_hashes_are_keyed_hmacs(graphs):
    key = projection_key(graphs.workspace)
    with Lakehouse(graphs.workspace.lakehouse, read_only=True) as lake:
        history = lake.con.execute("SELECT DISTINCT statement_id, property FROM dwd_statement_history").fetchall()
        # Statements masked whole (economic hardship, ethnic group...) are left out of the projection.
        statements = {s for s, prop in history if not _masked_whole(prop)}
        assert len(statements) < len(history)
        hashes = {h for (h,) in lake.con.execute("SELECT row_hash FROM dwd_record").fetchall()}
    with graphs.open("analyst_path") as analyst:
        ids = {r["id"] for r in analyst.query("MATCH (s:Statement) RETURN s.id AS id")}
        stated_in = {r["id"] for r in analyst.query("MATCH (s:Statement)-[:STATED_IN]->() RETURN DISTINCT s.id AS id")}
        described = {r["id"] for r in analyst.query("MATCH (s:Statement)-[:DESCRIBES]->() RETURN DISTINCT s.id AS id")}
        row_hashes = {r["h"] for r in analyst.query("MATCH (r:SourceRecord) RETURN r.row_hash AS h")}
    assert not ids & statements and not row_hashes & hashes
    # the standard HMAC (RFC 2104) of the real ID under the workspace's key, in the relationships too
    assert ids == {_hmac(key, s) for s in statements}
    assert stated_in <= ids and described <= ids and len(described) > 0.9 * len(ids)
    assert row_hashes == {_hmac(key, h) for h in hashes}


def test_the_key_is_the_workspaces_own_secret_and_is_reused(graphs, tmp_path):
    path = key_path(graphs.workspace)
    assert path.is_relative_to(graphs.workspace.root) and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert projection_key(graphs.workspace) == projection_key(graphs.workspace)
    other = Workspace.at(tmp_path / "other")
    assert projection_key(other) != projection_key(graphs.workspace)  # made on first use, per workspace
    key_path(other).write_text("not a key\n")
    with pytest.raises(AnalystKeyError, match="analyst_projection.key"):
        projection_key(other)


def test_a_second_build_keeps_the_analyst_ids(demo, tmp_path):
    shutil.copytree(demo.workspace.root, tmp_path / "ws")
    ws = Workspace.at(tmp_path / "ws")
    settings = demo.settings.model_copy(update={"workspace": ws.root})
    first = ws.read_current_graph()
    again = build_graph(settings, ws, mode="full")
    pointer = ws.read_current_graph()
    assert pointer["analyst_path"] == again.analyst_path != first["analyst_path"]
    assert Path(pointer["analyst_path"]).name == f"{again.build_id}.analyst.lbdb"
    dumps = []
    for path in (first["analyst_path"], again.analyst_path):
        with open_store(settings, backend="ladybug", ladybug_path=Path(path), read_only=True) as store:
            dumps.append(dump(store))
    assert dumps[0] == dumps[1]
    build_graph(settings, ws, mode="full")  # the first build is neither served nor the previous one: pruned
    assert not Path(first["analyst_path"]).exists() and Path(again.analyst_path).exists()


# ---- saved queries: the same answers, but for the sensitive parts --------------------------------
def _masked_whole(prop: str) -> bool:
    """A sensitive property whose mask keeps nothing: its statements are not in the projection at all."""
    ont = load_ontology()
    return prop not in ont.properties or (ont.prop(prop).sensitive and prop not in KEEP)


def _expected_for_analysts(rows: list[dict], key: bytes, property_: str | None) -> list[dict]:
    """A full-graph answer as the analyst graph must give it, computed independently of the projection:
    sensitive attributes of a returned master node absent, statement IDs HMAC'd, values masked."""
    ont = load_ontology()
    masters = {c.name for c in ont.master_classes()}
    out = []
    for row in rows:
        row = dict(row)
        for column, value in row.items():
            if isinstance(value, dict) and value.get("_LABEL") in masters:
                row[column] = {k: v for k, v in value.items() if not (k in ont.properties and ont.prop(k).sensitive)}
        if "statement_id" in row:
            row["statement_id"] = _hmac(key, row["statement_id"])
        stated = row.get("property", property_)
        if stated is not None and "value" in row and _masked_whole(stated):
            continue  # the statement itself is left out
        for column in ("value", "written_value"):
            if row.get(column) is not None and ont.prop(stated).sensitive:
                row[column] = mask(stated, row[column])
        out.append(row)
    return out


def _canonical(rows: list[dict]) -> list[str]:
    return sorted(json.dumps(r, sort_keys=True, ensure_ascii=False, default=str) for r in rows)


def test_saved_queries_answer_alike_on_both_graphs(graphs):
    with graphs.open("path") as full:  # a person with sensitive values to hide, and advisees
        person = full.query("""MATCH (p:Person)-[:ADVISES]->(:Person) WHERE p.bank_account IS NOT NULL
            AND p.phone IS NOT NULL AND p.id_number IS NOT NULL RETURN min(p.id) AS id""")[0]["id"]
    with Lakehouse(graphs.workspace.lakehouse, read_only=True) as lake:
        record = lake.con.execute("SELECT min(member_id) FROM res_link WHERE master_id = ?", [person]).fetchall()[0][0]
        orgs = [o for (o,) in lake.con.execute(
            "SELECT DISTINCT master_id FROM res_link WHERE entity_type = 'Organisation'").fetchall()]
    key = projection_key(graphs.workspace)
    runs = []
    for name in names():
        text = load_query(name, "Person" if needs_entity(name) else None)
        params = {"id": record if name == "record_values" else person, "entity_id": person, "orgs": orgs}
        for property_ in (("name", *RAW_SENSITIVE) if "$property" in text else (None,)):
            wanted = set(re.findall(r"\$(\w+)", text))
            runs.append((name, text, {k: v for k, v in {**params, "property": property_}.items() if k in wanted},
                         property_))
    with graphs.open("path") as full, graphs.open("analyst_path") as analyst:
        answered = 0
        for name, text, params, property_ in runs:
            full_rows, analyst_rows = full.query(text, params), analyst.query(text, params)
            assert _canonical(analyst_rows) == _canonical(_expected_for_analysts(full_rows, key, property_)), name
            answered += bool(full_rows)
            if name in ("person_master", "person_values"):  # the person's sensitive values were there to hide
                assert _canonical(analyst_rows) != _canonical(full_rows), name
    assert answered >= len(runs) - 3  # former_id / entity_history (no former IDs in the demo); one of advisors/advisees


# ---- a source keyed on a sensitive column --------------------------------------------------------
def test_a_source_keyed_on_an_id_number_gets_hmacd_record_ids_and_keys():
    key = b"k" * 32
    keyed, plain = "payroll:45010219900101123X", "hr:100001"
    with AnalystProjection(key, ["payroll"]) as projection:
        records = projection.frame(Frame("node", "SourceRecord", pa.table({
            "id": [keyed, plain], "entity_type": ["Person"] * 2, "record_key": ["45010219900101123X", "100001"],
            "row_hash": ["a" * 64, "b" * 64], "system": ["CW", "RS"], "table_name": ["t", "u"]}))).table
        stated = projection.frame(Frame("rel", "STATED_IN", pa.table({"from": ["s1", "s2"], "to": [keyed, plain]}),
                                        "Statement", "SourceRecord")).table
        resolved = projection.frame(Frame("rel", "RESOLVED_TO", pa.table(
            {"from": [keyed, plain], "to": ["P1", "P1"], "rule": ["exact:id_number", "exact:staff_no"]}),
                                          "SourceRecord", "Person")).table
        deleted = projection.node_keys("SourceRecord", pa.array([keyed, plain]))
    assert records["id"].to_pylist() == [f"payroll:{_hmac(key, keyed)}", plain]
    assert records["record_key"].to_pylist() == [_hmac(key, "45010219900101123X"), "100001"]
    assert stated["to"].to_pylist() == resolved["from"].to_pylist() == deleted.to_pylist() == records["id"].to_pylist()
    assert stated["from"].to_pylist() == [_hmac(key, "s1"), _hmac(key, "s2")]
    assert resolved["to"].to_pylist() == ["P1", "P1"] and resolved["rule"] == pa.chunked_array([["exact:id_number",
                                                                                                  "exact:staff_no"]])


def test_sources_keyed_on_a_sensitive_column_are_found_in_the_data(demo, tmp_path):
    shutil.copy(demo.workspace.lakehouse, tmp_path / "lake.duckdb")
    with Lakehouse(tmp_path / "lake.duckdb") as lake:
        assert sources_keyed_on_sensitive(lake) == []  # the demo's sources are keyed on staff, student, card numbers
        lake.con.execute("""UPDATE dwd_record r SET record_key = s.original FROM dwd_statement s
            WHERE s.record_id = r.record_id AND s.property = 'id_number' AND r.source = 'campus_card'""")
        assert sources_keyed_on_sensitive(lake) == ["campus_card"]


# ---- the masks -----------------------------------------------------------------------------------
@given(st.lists(st.one_of(st.none(), st.text(max_size=25), st.from_regex(r"\d{17}[\dXx]", fullmatch=True)),
                max_size=20),
       st.sampled_from(["id_number", "phone", "bank_account", "ethnic_group", "economic_hardship"]))
@settings(max_examples=200, deadline=None)
def test_the_column_mask_is_the_value_mask_and_keeps_little(values, prop):
    masked = mask_array(prop, pa.array(values, pa.string())).to_pylist()
    assert masked == [None if v is None else mask(prop, v) for v in values]
    for value, shown in zip(values, masked, strict=True):
        if value is not None:
            assert mask(prop, shown) == shown  # idempotent: a masked graph value may be masked again
            assert sum(c != "*" for c in shown) <= {"id_number": 2, "phone": 2, "bank_account": 4}.get(prop, 3)
