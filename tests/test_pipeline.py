"""The walking skeleton end to end on a real DuckDB lakehouse and a real Ladybug graph."""

import csv

import pytest
from rich.console import Console

from campus_kg import pipeline
from ingest.idcard import parse_id_number
from ingest.lakehouse import Lakehouse, fetch_one
from ingest.mapping import MappingError, load_mapping
from resolution.evaluate import pairwise
from tests.conftest import run_pipeline


def test_every_record_read_is_accounted_for(demo):
    for s in demo.ingest.sources:
        assert s.read == s.loaded + s.quarantined, s.source
    assert demo.ingest.read == demo.generated.records


def test_export_links_has_one_row_per_record_read(demo, tmp_path):
    out = tmp_path / "links.csv"
    n = pipeline.export_links(demo.workspace, out)
    with open(out, encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert n == len(rows) == demo.ingest.read
    assert list(rows[0]) == ["system", "table", "record_key", "entity_type", "master_id"]
    assert all(r["master_id"] for r in rows)


def test_exact_resolution_never_merges_two_people(demo):
    with Lakehouse(demo.workspace.lakehouse, read_only=True) as lake:
        score = pairwise(lake, demo.generated.truth_path)
        assert score.precision >= 0.999
        assert score.recall > 0.9
        # No master holds two different valid ID numbers.
        rows = lake.con.execute("""SELECT l.master_id, list(DISTINCT p.id_number)
            FROM dwd_person_record p JOIN res_link l ON l.member_id = p.record_id AND l.entity_type = 'Person'
            WHERE p.id_number IS NOT NULL GROUP BY 1 HAVING count(DISTINCT p.id_number) > 1""").fetchall()
    assert rows == []


def test_the_graph_holds_masters_sources_and_memberships(demo):
    from graph_api.served_graph import ServedGraph

    graph = ServedGraph(demo.settings, demo.workspace)
    try:
        n_person = graph.query("MATCH (p:Person) RETURN count(p) AS n")[0]["n"]
        assert n_person == demo.resolve.masters["Person"]
        n_records = graph.query("MATCH (r:SourceRecord)-[:RESOLVED_TO]->() RETURN count(r) AS n")[0]["n"]
        assert n_records == demo.ingest.read
        assert graph.query("MATCH (:Person)-[m:MEMBER_OF]->(:Organisation) RETURN count(m) AS n")[0]["n"] > 0
        assert graph.query("MATCH (:Person)-[a:ADVISES]->(:Person) RETURN count(a) AS n")[0]["n"] > 0
    finally:
        graph.close()


def test_survivorship_prefers_the_authoritative_source(demo):
    with Lakehouse(demo.workspace.lakehouse, read_only=True) as lake:
        # For staff, HR (rank 1) wins the name over every other system.
        wrong = fetch_one(lake.con, """SELECT count(*) FROM res_attribute a
            JOIN dwd_record d ON d.record_id = a.source_record_id
            WHERE a.entity_type = 'Person' AND a.property = 'name' AND d.source <> 'hr_staff'
              AND a.master_id IN (SELECT l.master_id FROM res_link l JOIN dwd_record r ON r.record_id = l.member_id
                                  WHERE r.source = 'hr_staff')""")[0]
    assert wrong == 0


def test_master_ids_are_stable_across_a_rerun(tmp_path):
    first = run_pipeline(tmp_path, persons=300, seed=5)
    before = _links(first)
    console = Console(quiet=True)
    pipeline.run_ingest(first.generated.mapping_path, first.workspace, console)
    pipeline.run_resolve(first.workspace, console)
    after = _links(first)
    assert before == after


def _links(demo):
    with Lakehouse(demo.workspace.lakehouse, read_only=True) as lake:
        return dict(lake.con.execute("SELECT member_id, master_id FROM res_link").fetchall())


def test_a_mapping_that_names_an_unknown_property_is_refused(tmp_path, demo):
    text = demo.generated.mapping_path.read_text(encoding="utf-8").replace("property: job_title",
                                                                          "property: shoe_size", 1)
    bad = tmp_path / "mapping.yaml"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(MappingError, match="shoe_size"):
        load_mapping(bad)


def test_id_numbers_in_the_lakehouse_are_all_valid(demo):
    with Lakehouse(demo.workspace.lakehouse, read_only=True) as lake:
        ids = [r[0] for r in lake.con.execute(
            "SELECT id_number FROM dwd_person_record WHERE id_number IS NOT NULL").fetchall()]
        flagged = fetch_one(lake.con, "SELECT count(*) FROM dwd_statement WHERE flag LIKE 'invalid ID number%'")[0]
    assert ids and all(parse_id_number(i).valid for i in ids)
    assert flagged > 0  # the generator's typos were caught and flagged, not loaded as identifiers
