"""Small changes patch the served graph; large ones rebuild it. Chosen by the size of the change.

Every build leaves a *snapshot* beside it: the few lakehouse facts its graph was made from
(source records, resolution links and surviving attributes, former master IDs, the relationships
between entities, the ingest runs, the systems and authority ranks), as Parquet. The next build
compares the lakehouse and the resolution outputs with that snapshot, so the change comes from the
pipeline's own tables, never from reading the graph back.

The scope of a patch is closed under what a node's deletion takes with it:
- entities: every master whose links, surviving attributes, former IDs or relationships changed,
  or one of whose records changed;
- records: every changed record (loaded again whole), and every record linked before or after to a
  scoped entity (its RESOLVED_TO edge is loaded again);
- statements: every statement made in one of those records.
A patch deletes these nodes (with all their relationships) and loads them again from the same
frames a full build uses, so a patched graph equals a rebuilt one (tested). Statements outside the
scope only need their `last_seen` moved to the newest load of their source.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from graph_api.store import GraphStore
from ingest.lakehouse import LINEAGE_RUNS_SQL, Lakehouse, fetch_one
from queries import load_query

DELETE_BATCH = 10_000

# Source records resolved to a master entity (RESOLVED_TO): resolution's links, and each row of a
# mention source to the entity of the record it names a person on (docs/mapping.md, "Mention
# sources"): the row that stated an authorship stays in the entity's lineage.
RECORD_LINKS_SQL = """SELECT member_id, entity_type, master_id, rule FROM res_link
    UNION ALL
    SELECT DISTINCT r.stated_by, l.entity_type, l.master_id, 'mention' FROM dwd_relation r
    JOIN res_link l ON l.member_id = r.record_id WHERE r.stated_by IS NOT NULL"""

# name -> SQL over the lakehouse. Each snapshot file is compared with its query's rows now.
SNAPSHOT_SQL = {
    # Digests keep the snapshot small and the comparison fast: one hash per record, one per entity.
    "records": """SELECT record_id, hash(entity_type, record_key, row_hash, system, table_name,
                         COALESCE(version_run, run_id)) AS digest FROM dwd_record""",
    "links": RECORD_LINKS_SQL,
    "attributes": """SELECT master_id, entity_type, bit_xor(hash(property, value, source_record_id, rule)) AS digest
                     FROM res_attribute GROUP BY ALL""",
    "former": """SELECT master_id, entity_type, status, merged_into, updated_run FROM res_master_registry
                 WHERE status <> 'active'""",
    "source_runs": """SELECT h.source, max(h.last_seen_run) AS last_run FROM dwd_statement_history h GROUP BY 1""",
    "runs": LINEAGE_RUNS_SQL,
    "systems": "SELECT system, name, department FROM source_system",
    "authority": "SELECT source, property, rank FROM source_authority",
}
SNAPSHOT_VERSION = "2"  # a snapshot of another version is not compared: the next build is a full one
# A change to these reaches nodes outside any entity's scope: it needs a full build.
REBUILD_ON_CHANGE = ("systems", "authority")


def _edges_table(edges: list[tuple[str, str, str, pa.Table]]) -> pa.Table:
    parts = [pa.table({"rel_type": pa.array([t] * e.num_rows, pa.string()),
                       "start_label": pa.array([a] * e.num_rows, pa.string()),
                       "end_label": pa.array([b] * e.num_rows, pa.string()),
                       "from": e["from"].cast(pa.string()), "to": e["to"].cast(pa.string())})
             for t, a, b, e in edges]
    empty = pa.schema([(c, pa.string()) for c in ("rel_type", "start_label", "end_label", "from", "to")])
    return pa.concat_tables(parts) if parts else empty.empty_table()


def write_snapshot(lake: Lakehouse, edges: list, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, sql in SNAPSHOT_SQL.items():
        if name == "attributes" and not lake.has_table("res_attribute"):
            continue
        lake.con.execute(f"COPY ({sql}) TO '{directory / name}.parquet' (FORMAT parquet)")
    pq.write_table(_edges_table(edges), directory / "edges.parquet")
    (directory / "VERSION").write_text(SNAPSHOT_VERSION)


@dataclass
class PatchPlan:
    """What a patch would touch, or why the graph must be rebuilt instead."""

    patch: bool
    reason: str
    masters: int = 0
    records: int = 0
    statements: int = 0
    former_ids: int = 0
    new_runs: int = 0
    refreshed_sources: list[tuple[str, str, object]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.masters or self.records or self.statements or self.former_ids or self.new_runs
                    or self.refreshed_sources)


def _diff(now_sql: str, before: str) -> str:
    """Rows in exactly one of the two (a symmetric difference), as SQL."""
    return f"""((SELECT * FROM ({now_sql})) EXCEPT (SELECT * FROM {before}))
        UNION ALL ((SELECT * FROM {before}) EXCEPT (SELECT * FROM ({now_sql})))"""


def plan_patch(lake: Lakehouse, snapshot: Path | None, edges: list, max_share: float) -> PatchPlan:
    """Compares the lakehouse with the served build's snapshot; leaves the scope in temp tables
    `_scope_masters`, `_scope_records`, `_scope_linked`, `_scope_statements`, `_scope_former` and
    `_scope_runs`."""
    if snapshot is None or not all((snapshot / f"{n}.parquet").exists() for n in (*SNAPSHOT_SQL, "edges")):
        return PatchPlan(False, "the served build has no snapshot to compare with")
    version = snapshot / "VERSION"
    if not version.exists() or version.read_text().strip() != SNAPSHOT_VERSION:
        return PatchPlan(False, "the served build's snapshot is from another campus-kg version")
    con = lake.con
    for name in (*SNAPSHOT_SQL, "edges"):
        con.execute(f"CREATE OR REPLACE TEMP VIEW _before_{name} AS SELECT * FROM read_parquet("
                    f"'{snapshot / name}.parquet')")
    for name in REBUILD_ON_CHANGE:
        if fetch_one(con, f"SELECT count(*) FROM ({_diff(SNAPSHOT_SQL[name], f'_before_{name}')})")[0]:
            return PatchPlan(False, f"{name} changed: every record of the system is touched")
    con.register("_edges_now", _edges_table(edges))
    # Changed records are loaded again whole. Unchanged records of a scoped entity keep their node
    # (deleting one touches the long adjacency lists of its system and run); they only get their
    # RESOLVED_TO edge and their statements again, which the entity's deletion took with it.
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _scope_records AS SELECT DISTINCT record_id AS id
        FROM ({_diff(SNAPSHOT_SQL['records'], '_before_records')})""")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _changed_edges AS
        {_diff('SELECT * FROM _edges_now', '_before_edges')}""")
    links, attributes, former = (_diff(SNAPSHOT_SQL[n], f"_before_{n}")
                                 for n in ("links", "attributes", "former"))
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _scope_former AS SELECT DISTINCT master_id AS id
        FROM ({former})""")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _scope_masters AS
        SELECT DISTINCT id, entity_type FROM (
            SELECT master_id AS id, entity_type FROM ({links})
            UNION ALL SELECT master_id, entity_type FROM ({attributes})
            UNION ALL SELECT merged_into, entity_type FROM ({former}) WHERE merged_into IS NOT NULL
            UNION ALL SELECT l.master_id, l.entity_type FROM ({RECORD_LINKS_SQL}) l
                JOIN _scope_records c ON c.id = l.member_id
            UNION ALL SELECT l.master_id, l.entity_type FROM _before_links l
                JOIN _scope_records c ON c.id = l.member_id
            UNION ALL SELECT "from", start_label FROM _changed_edges
            UNION ALL SELECT "to", end_label FROM _changed_edges)
        WHERE id IS NOT NULL""")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _scope_linked AS SELECT DISTINCT id FROM (
        SELECT id FROM _scope_records
        UNION ALL SELECT l.member_id FROM ({RECORD_LINKS_SQL}) l JOIN _scope_masters m ON m.id = l.master_id
        UNION ALL SELECT l.member_id FROM _before_links l JOIN _scope_masters m ON m.id = l.master_id)""")
    con.execute("""CREATE OR REPLACE TEMP TABLE _scope_statements AS SELECT DISTINCT h.statement_id AS id
        FROM dwd_statement_history h JOIN _scope_linked r ON r.id = h.record_id""")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _scope_runs AS SELECT run_id AS id FROM ({LINEAGE_RUNS_SQL})
        WHERE run_id NOT IN (SELECT run_id FROM _before_runs)""")
    con.unregister("_edges_now")
    refreshed = con.execute("""SELECT DISTINCT d.system, d.table_name, r.started_at
        FROM ((""" + SNAPSHOT_SQL["source_runs"] + """) EXCEPT (SELECT * FROM _before_source_runs)) n
        JOIN ingest_run r ON r.run_id = n.last_run
        JOIN dwd_record d ON d.source = n.source ORDER BY ALL""").fetchall()
    counts = {t: fetch_one(con, f"SELECT count(*) FROM _scope_{t}")[0]
              for t in ("masters", "linked", "statements", "former", "runs")}
    total = max(fetch_one(con, "SELECT count(*) FROM dwd_record")[0], 1)
    share = counts["linked"] / total
    plan = PatchPlan(max_share > 0 and share <= max_share, "", counts["masters"], counts["linked"],
                     counts["statements"], counts["former"], counts["runs"], refreshed)
    plan.reason = (f"{counts['linked']:,} of {total:,} source records touched ({share:.1%}); "
                   f"patch limit {max_share * 100:g}% (graph_patch_max_share)")
    return plan


def delete_scope(store: GraphStore, lake: Lakehouse,
                 node_keys: Callable[[str, pa.Array], pa.Array] | None = None) -> None:
    """Deletes the scoped nodes with all their relationships; the build then loads them again from
    the same frames a full build uses (scoped), and `refresh_last_seen` finishes the patch.

    `node_keys(label, keys)`: the keys as this store has them, when they are not the lakehouse's
    (the analyst graph's HMAC'd statement and record IDs, see graph_api.graph_build.analyst_graph)."""
    con = lake.con
    deletions = [(label, "SELECT id FROM _scope_masters WHERE entity_type = ?", [label]) for (label,) in
                 con.execute("SELECT DISTINCT entity_type FROM _scope_masters ORDER BY 1").fetchall()]
    deletions += [("SourceRecord", "SELECT id FROM _scope_records", []),
                  ("Statement", "SELECT id FROM _scope_statements", []),
                  ("FormerId", "SELECT id FROM _scope_former", [])]
    for label, sql, params in deletions:
        reader = con.sql(sql + " ORDER BY 1", params=params or None).to_arrow_reader(DELETE_BATCH)
        for batch in reader:
            keys = batch.column(0) if node_keys is None else node_keys(label, batch.column(0))
            store.delete_nodes(label, keys.to_pylist())


def refresh_last_seen(store: GraphStore, plan: PatchPlan) -> None:
    """Statements outside the scope that were seen again in their source's newest load."""
    refresh = load_query("write/refresh_last_seen")
    store.write([(refresh, {"system": system, "table_name": table, "seen": seen})
                 for system, table, seen in plan.refreshed_sources])
