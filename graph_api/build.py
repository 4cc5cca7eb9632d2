"""Build the graph from the lakehouse and resolution outputs.

Ladybug: every build writes a new database file and, only when it is complete, switches the
workspace's CURRENT pointer atomically; the server keeps answering from the previous file until
then. Neo4j: the database is cleared and reloaded in batches (blue/green databases come with the
lineage work).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pyarrow as pa

from campus_kg.settings import Settings
from campus_kg.workspace import Workspace
from graph_api.store import GraphStore, open_store
from ingest.lakehouse import DUCK_TYPES, Lakehouse
from ingest.standardise import standardise_org_name
from ontology.model import load_ontology



@dataclass
class BuildResult:
    build_id: str
    backend: str
    nodes: dict[str, int] = field(default_factory=dict)
    rels: dict[str, int] = field(default_factory=dict)
    unresolved: dict[str, int] = field(default_factory=dict)
    path: str | None = None


def _arrow(lake: Lakehouse, sql: str, params: list | None = None) -> pa.Table:
    return lake.con.sql(sql, params=params or None).to_arrow_table()


def master_nodes_sql(entity_type: str) -> str:
    """One row per master entity, its surviving attributes pivoted into the ontology's columns."""
    ont = load_ontology()
    props = [p for p in ont.class_properties(entity_type) if p.name != ont.cls(entity_type).key]
    cols = "".join(
        f",\n  TRY_CAST(max(a.value) FILTER (WHERE a.property = '{p.name}') AS {DUCK_TYPES[p.datatype]}) AS {p.name}"
        for p in props
    )
    return f"""SELECT m.master_id AS id{cols}
        FROM (SELECT DISTINCT master_id FROM res_link WHERE entity_type = '{entity_type}') m
        LEFT JOIN res_attribute a ON a.master_id = m.master_id AND a.entity_type = '{entity_type}'
        GROUP BY m.master_id ORDER BY m.master_id"""


# Every statement ever made, with its times, its authority and whether survivorship chose it now.
STATEMENT_NODES_SQL = """
SELECT DISTINCT ON (h.statement_id)
       h.statement_id AS id, h.property AS stated_property, h.value, h.original AS written_value,
       f.started_at AS first_seen, l.started_at AS last_seen, x.started_at AS retired_at,
       (a.master_id IS NOT NULL) AS chosen, a.rule, COALESCE(sa.rank, 9)::BIGINT AS authority
FROM dwd_statement_history h
JOIN ingest_run f ON f.run_id = h.first_seen_run
JOIN ingest_run l ON l.run_id = h.last_seen_run
LEFT JOIN ingest_run x ON x.run_id = h.retired_run
LEFT JOIN res_link k ON k.member_id = h.record_id
LEFT JOIN res_attribute a ON a.master_id = k.master_id AND a.property = h.property AND a.value = h.value
     AND a.source_record_id = h.record_id AND h.retired_run IS NULL
LEFT JOIN source_authority sa ON sa.source = h.source AND sa.property = h.property
ORDER BY h.statement_id, chosen DESC
"""


def _person_lookup(lake: Lakehouse, match_on: str) -> None:
    """A temp table value -> master for Person targets matched on an identifier (unique only)."""
    lake.con.execute(f"""CREATE OR REPLACE TEMP TABLE _lookup AS
        SELECT p.{match_on} AS value, min(l.master_id) AS master_id
        FROM dwd_person_record p JOIN res_link l ON l.member_id = p.record_id AND l.entity_type = 'Person'
        WHERE p.{match_on} IS NOT NULL
        GROUP BY 1 HAVING count(DISTINCT l.master_id) = 1""")


def _org_lookup(lake: Lakehouse) -> None:
    values = [v for (v,) in lake.con.execute(
        "SELECT DISTINCT target_value FROM dwd_relation WHERE target_type = 'Organisation'").fetchall()]
    lake.con.register("_org_names", pa.table({"value": values,
                                              "member_id": [f"org:{standardise_org_name(v)}" for v in values]}))
    lake.con.execute("""CREATE OR REPLACE TEMP TABLE _lookup AS
        SELECT n.value, l.master_id FROM _org_names n
        JOIN res_link l ON l.member_id = n.member_id AND l.entity_type = 'Organisation'""")
    lake.con.unregister("_org_names")


def _mention_frames(lake: Lakehouse, rel_type: str, direction: str, own_type: str, result: BuildResult):
    """Relationships to persons named in the record (authors...), as resolution linked them."""
    own, other = ("l.master_id", "m.master_id")
    start, end = (own, other) if direction == "out" else (other, own)
    start_label, end_label = (own_type, "Person") if direction == "out" else ("Person", own_type)
    table = _arrow(lake, f"""SELECT DISTINCT {start} AS "from", {end} AS "to"
        FROM res_mention m JOIN dwd_record d USING (record_id)
        JOIN res_link l ON l.member_id = m.record_id AND l.entity_type = d.entity_type
        WHERE m.rel_type = ? AND m.master_id IS NOT NULL AND d.entity_type = ?""", [rel_type, own_type])
    for rule, n in lake.con.execute("""SELECT m.rule, count(*) FROM res_mention m JOIN dwd_record d USING (record_id)
            WHERE m.rel_type = ? AND d.entity_type = ? AND m.master_id IS NULL GROUP BY 1""",
                                    [rel_type, own_type]).fetchall():
        result.unresolved[f"{rel_type} by name ({rule})"] = n
    yield rel_type, start_label, end_label, table


def relation_frames(lake: Lakehouse, result: BuildResult):
    """(type, from label, to label, table) for every relationship the sources imply."""
    specs = lake.con.execute("""SELECT DISTINCT r.rel_type, r.direction, r.target_type, r.match_on, d.entity_type
        FROM dwd_relation r JOIN dwd_record d USING (record_id) ORDER BY ALL""").fetchall()
    for rel_type, direction, target_type, match_on, own_type in specs:
        if target_type == "Organisation" and match_on == "name":
            _org_lookup(lake)
        elif target_type == "Discipline":
            lake.con.execute("""CREATE OR REPLACE TEMP TABLE _lookup AS SELECT substr(member_id, 12) AS value,
                master_id FROM res_link WHERE entity_type = 'Discipline'""")
        elif target_type == "Person" and match_on in ("staff_no", "student_no", "id_number"):
            _person_lookup(lake, match_on)
        elif target_type == "Person" and match_on in ("name", "author_name"):
            yield from _mention_frames(lake, rel_type, direction, own_type, result)
            continue
        else:
            n = lake.con.execute("SELECT count(*) FROM dwd_relation WHERE rel_type = ? AND match_on = ?",
                                 [rel_type, match_on]).fetchall()[0][0]
            result.unresolved[f"{rel_type} by {match_on}"] = n
            continue
        own, other = ("l.master_id", "k.master_id")
        start, end = (own, other) if direction == "out" else (other, own)
        start_label, end_label = (own_type, target_type) if direction == "out" else (target_type, own_type)
        table = _arrow(lake, f"""SELECT DISTINCT {start} AS "from", {end} AS "to"
            FROM dwd_relation r
            JOIN dwd_record d USING (record_id)
            JOIN res_link l ON l.member_id = r.record_id AND l.entity_type = d.entity_type
            JOIN _lookup k ON k.value = r.target_value
            WHERE r.rel_type = ? AND r.direction = ? AND r.target_type = ? AND r.match_on = ?
              AND d.entity_type = ? AND {start} <> {end}""", [rel_type, direction, target_type, match_on, own_type])
        total, matched = lake.con.execute("""SELECT count(*), count(k.value) FROM dwd_relation r
            JOIN dwd_record d USING (record_id) LEFT JOIN _lookup k ON k.value = r.target_value
            WHERE r.rel_type = ? AND r.direction = ? AND r.target_type = ? AND r.match_on = ? AND d.entity_type = ?""",
                                          [rel_type, direction, target_type, match_on, own_type]).fetchall()[0]
        if total - matched:
            result.unresolved[f"{rel_type} by {match_on}"] = total - matched
        yield rel_type, start_label, end_label, table


@dataclass(frozen=True)
class Frame:
    """One bulk load: the nodes of a label, or the relationships of a type between two labels."""

    kind: str  # node / rel
    name: str  # label or relationship type
    table: pa.Table
    start: str | None = None
    end: str | None = None


def graph_frames(lake: Lakehouse, result: BuildResult) -> Iterator[Frame]:
    """Everything the graph holds, as frames in load order (nodes before the relationships that need them)."""
    ont = load_ontology()
    masters = [r[0] for r in lake.con.execute("SELECT DISTINCT entity_type FROM res_link ORDER BY 1").fetchall()]
    for entity_type in masters:
        yield Frame("node", entity_type, _arrow(lake, master_nodes_sql(entity_type)))
    yield Frame("node", "SourceSystem", _arrow(lake, "SELECT system AS id, name, department FROM source_system ORDER BY 1"))
    yield Frame("node", "IngestRun", _arrow(
        lake, "SELECT run_id AS id, started_at FROM ingest_run WHERE status = 'completed' ORDER BY 1"))
    yield Frame("node", "SourceRecord", _arrow(lake, """
        SELECT record_id AS id, entity_type, record_key, row_hash, system, table_name FROM dwd_record ORDER BY 1"""))
    yield Frame("rel", "FROM_SYSTEM", _arrow(lake, 'SELECT record_id AS "from", system AS "to" FROM dwd_record'),
                "SourceRecord", "SourceSystem")
    yield Frame("rel", "LOADED_IN", _arrow(lake, 'SELECT record_id AS "from", run_id AS "to" FROM dwd_record'),
                "SourceRecord", "IngestRun")
    for entity_type in masters:
        if entity_type in ont.rel("RESOLVED_TO").targets:
            yield Frame("rel", "RESOLVED_TO", _arrow(lake, """
                SELECT l.member_id AS "from", l.master_id AS "to", l.rule,
                       CASE WHEN l.rule LIKE 'probabilistic:%' THEN TRY_CAST(split_part(l.rule, ':', 2) AS DOUBLE)
                            WHEN l.rule LIKE 'exact:%' OR l.rule LIKE 'steward:%' THEN 1.0 END AS probability,
                       CASE WHEN l.rule LIKE 'steward:%' THEN split_part(l.rule, ':', 2) END AS decision
                FROM res_link l JOIN dwd_record d ON d.record_id = l.member_id
                WHERE l.entity_type = ?""", [entity_type]), "SourceRecord", entity_type)
    yield Frame("node", "Statement", _arrow(lake, STATEMENT_NODES_SQL))
    yield Frame("rel", "STATED_IN", _arrow(lake, """
        SELECT h.statement_id AS "from", h.record_id AS "to" FROM dwd_statement_history h
        WHERE h.record_id IN (SELECT record_id FROM dwd_record)"""), "Statement", "SourceRecord")
    for entity_type in masters:
        if entity_type in ont.rel("DESCRIBES").targets:
            yield Frame("rel", "DESCRIBES", _arrow(lake, """
                SELECT h.statement_id AS "from", l.master_id AS "to" FROM dwd_statement_history h
                JOIN res_link l ON l.member_id = h.record_id AND l.entity_type = ?""", [entity_type]),
                        "Statement", entity_type)
    yield Frame("node", "FormerId", _arrow(lake, """
        SELECT r.master_id AS id, r.entity_type, r.status, u.started_at AS changed_at
        FROM res_master_registry r LEFT JOIN ingest_run u ON u.run_id = r.updated_run
        WHERE r.status <> 'active' ORDER BY 1"""))
    for entity_type in masters:
        if entity_type in ont.rel("MERGED_INTO").targets:
            yield Frame("rel", "MERGED_INTO", _arrow(lake, """
                SELECT r.master_id AS "from", r.merged_into AS "to" FROM res_master_registry r
                WHERE r.status = 'merged' AND r.entity_type = ?
                  AND r.merged_into IN (SELECT master_id FROM res_link)""", [entity_type]), "FormerId", entity_type)
    for rel_type, start, end, table in relation_frames(lake, result):
        yield Frame("rel", rel_type, table, start, end)
    if lake.has_table("res_org_parent"):
        yield Frame("rel", "SUB_ORGANISATION_OF", _arrow(
            lake, 'SELECT child_id AS "from", parent_id AS "to" FROM res_org_parent'), "Organisation", "Organisation")


def load_graph(store: GraphStore, lake: Lakehouse, result: BuildResult, step: Callable[[str], None],
               frames: list[Frame] | None = None) -> None:
    store.apply_schema()
    for frame in frames if frames is not None else graph_frames(lake, result):
        if frame.kind == "node":
            result.nodes[frame.name] = result.nodes.get(frame.name, 0) + store.load_nodes(frame.name, frame.table)
        else:
            result.rels[frame.name] = result.rels.get(frame.name, 0) + store.load_rels(
                frame.name, frame.start, frame.end, frame.table)
        step(frame.name)


def build_graph(settings: Settings, workspace: Workspace, backend: str | None = None,
                step: Callable[[str], None] = lambda _: None) -> BuildResult:
    backend = backend or settings.graph_backend
    now = dt.datetime.now(dt.UTC)
    build_id = f"build-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    result = BuildResult(build_id, backend)
    with Lakehouse(workspace.lakehouse, read_only=True) as lake:
        run_id = lake.latest_run()
        if backend == "ladybug":
            path = workspace.graph_dir / "ladybug" / f"{build_id}.lbdb"
            with open_store(settings, backend="ladybug", ladybug_path=path) as store:
                load_graph(store, lake, result, step)
            result.path = str(path)
        else:
            with open_store(settings, backend="neo4j") as store:
                store.clear()  # type: ignore[attr-defined]
                load_graph(store, lake, result, step)
    previous = workspace.read_current_graph() or {}
    workspace.publish_graph({"backend": backend, "build_id": build_id, "path": result.path, "run_id": run_id,
                             "built_at": now.isoformat(), "nodes": result.nodes, "rels": result.rels})
    if backend == "ladybug":
        _prune_old_builds(workspace, keep={result.path, previous.get("path")})
    return result


def _prune_old_builds(workspace: Workspace, keep: set[str | None]) -> None:
    """Deletes every build file but the one just published and the one before it (a server may
    still be answering from it). Builds that were killed half-way are never published: they go."""
    for build in (workspace.graph_dir / "ladybug").glob("build-*.lbdb"):
        if str(build) not in keep:
            for f in (build, build.with_suffix(".lbdb.wal")):
                f.unlink(missing_ok=True)
