"""Resolve everything in the lakehouse: clusters -> stable master IDs -> links -> survivorship."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from ingest.lakehouse import Lakehouse, dwd_table, fetch_one
from ontology.model import load_ontology
from resolution import master_ids, survivorship
from resolution.exact import Clustering, keyed_clusters, person_clusters
from resolution.organisations import org_members


@dataclass
class ResolveResult:
    run_id: str
    masters: dict[str, int] = field(default_factory=dict)
    records: dict[str, int] = field(default_factory=dict)
    refused_merges: int = 0


def resolve(lake: Lakehouse) -> ResolveResult:
    con = lake.con
    run_id = lake.latest_run()
    if run_id is None:
        raise RuntimeError("nothing to resolve: run `campus-kg ingest` first")
    master_ids.ensure_tables(con)
    survivorship.ensure_tables(con)
    result = ResolveResult(run_id)
    con.execute("BEGIN TRANSACTION")
    try:
        for cls in load_ontology().master_classes():
            if cls.name == "Organisation":
                continue
            n = fetch_one(con, f"SELECT count(*) FROM {dwd_table(cls.name)}")[0]
            if n == 0:
                continue
            clustering = (person_clusters(con) if cls.name == "Person"
                          else keyed_clusters(con, cls.name, dwd_table(cls.name)))
            _link(con, cls.name, clustering, run_id, result)
        orgs = org_members(con)
        _link(con, "Organisation", Clustering(orgs, {m[0]: "exact:name" for m in orgs}, []), run_id, result)
        con.execute("DELETE FROM res_attribute WHERE entity_type = 'Organisation'")
        con.execute("""INSERT INTO res_attribute
            SELECT master_id, 'Organisation', 'name', substr(member_id, 5), NULL, NULL, 1, 'exact:name'
            FROM res_link WHERE entity_type = 'Organisation'""")
        survivorship.survive(con)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return result


def _link(con, entity_type: str, clustering: Clustering, run_id: str, result: ResolveResult) -> None:
    members = master_ids.assign(con, entity_type, clustering.clusters, run_id)
    con.execute("DELETE FROM res_link WHERE entity_type = ?", [entity_type])
    links = pa.table({
        "member_id": list(members),
        "entity_type": [entity_type] * len(members),
        "master_id": list(members.values()),
        "rule": [clustering.rule.get(m, "singleton") for m in members],
    })
    con.register("_links", links)
    con.execute("INSERT INTO res_link SELECT * FROM _links")
    con.unregister("_links")
    result.masters[entity_type] = len(clustering.clusters)
    result.records[entity_type] = len(members)
    result.refused_merges += len(clustering.refused)
