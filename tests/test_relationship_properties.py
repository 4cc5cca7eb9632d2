"""Positions carry role and dates, authorships their rank: the relationship's own properties."""

import csv
import datetime as dt

import pytest
import yaml

from graph_api.served_graph import ServedGraph
from ingest.mapping import MappingError, load_mapping


def test_hr_positions_are_dated_and_authorships_ranked(demo):
    hr = next(demo.generated.mapping_path.parent.rglob("人事_*.csv"))
    rows = list(csv.DictReader(hr.read_text(encoding="gbk").splitlines()))
    graph = ServedGraph(demo.settings, demo.workspace)
    try:
        checked = 0
        for row in rows[:20]:
            found = graph.query("""MATCH (r:SourceRecord)-[:RESOLVED_TO]->(p:Person)-[m:MEMBER_OF]->(o:Organisation)
                WHERE r.id = $record AND m.start_date IS NOT NULL
                RETURN m.role AS role, m.start_date AS start_date""", {"record": f"hr_staff:{row['工号']}"})
            assert found, row["工号"]
            assert (row["职称"], dt.date.fromisoformat(row["参加工作日期"])) in [
                (f["role"], f["start_date"]) for f in found]
            checked += 1
        assert checked == 20
        ranks = graph.query("""MATCH (p:Person)-[a:AUTHOR_OF]->(w:Publication)
            RETURN w.id AS work, min(a.rank) AS first, count(*) AS n""")
        assert ranks and all(r["first"] >= 1 for r in ranks)
        assert sum(r["first"] == 1 for r in ranks) > len(ranks) / 2
        # an academic-affairs membership without dates is not kept beside HR's dated one
        bare = graph.query("""MATCH (p:Person)-[m:MEMBER_OF]->(o:Organisation), (p)-[d:MEMBER_OF]->(o)
            WHERE m.start_date IS NULL AND m.role IS NULL AND d.start_date IS NOT NULL RETURN count(*) AS n""")
        assert bare == [{"n": 0}]
    finally:
        graph.close()


def test_an_edge_property_the_ontology_lacks_is_refused_with_its_line(demo, tmp_path):
    mapping = yaml.safe_load(demo.generated.mapping_path.read_text(encoding="utf-8"))
    hr = next(s for s in mapping["sources"] if s["name"] == "hr_staff")
    hr["relationships"][0]["properties"] = {"salary": "职称"}
    bad = tmp_path / "mapping.yaml"
    bad.write_text(yaml.safe_dump(mapping, allow_unicode=True), encoding="utf-8")
    with pytest.raises(MappingError, match="MEMBER_OF has no edge property 'salary'"):
        load_mapping(bad)
