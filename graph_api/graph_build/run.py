"""Build the graph from the lakehouse and resolution outputs.

Ladybug: every build writes a new database file (a fresh one, or a copy of the served one that a
patch changes) and, only when it is complete, switches the workspace's CURRENT pointer atomically;
the server keeps answering from the previous file until then. Neo4j: a build loads the standby
server (or database) in full while the other one serves, then switches the pointer to it (see
graph_api.graph_build.targets).

Beside the full graph, every build writes its analyst projection (`<build>.analyst.lbdb`, an embedded
Ladybug file, see graph_api.graph_build.analyst_graph) from the same frames: each frame is computed once and
loaded into both.
"""

from __future__ import annotations

import datetime as dt
import shutil
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from campus_kg.settings import Settings
from campus_kg.workspace import Workspace
from graph_api.graph_build.analyst_graph import AnalystProjection
from graph_api.graph_build.patch import (RECORD_LINKS_SQL, PatchPlan, delete_scope, plan_patch, refresh_last_seen,
                                         write_snapshot)
from graph_api.graph_build.person_records import (prune_person_records, records_path, scope_patched_persons,
                                                  write_person_records_apart)
from graph_api.graph_build.targets import build_target
from graph_api.store import GraphStore
from ingest.lakehouse import DUCK_TYPES, LINEAGE_RUNS_SQL, Lakehouse
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
    analyst_path: str | None = None  # the analyst projection (None: the backend writes none)
    person_records_path: str | None = None  # the person records served by GET /persons/{id}
    person_records: int = 0  # person records the build wrote (a patch: those it touched)
    plan: PatchPlan | None = None
    patched: dict[str, int] | None = None  # nodes and relationships a patch loaded again
    unchanged: bool = False  # nothing changed since the served build: no new build was made


class PatchRefused(RuntimeError):
    """`--mode patch` was asked for but the change is too large or cannot be patched."""


BUILD_MODES = ("auto", "full", "patch")


def _arrow(lake: Lakehouse, sql: str, params: list | None = None) -> pa.Table:
    return lake.con.sql(sql, params=params or None).to_arrow_table()


def master_nodes_sql(entity_type: str, only: str = "") -> str:
    """One row per master entity, its surviving attributes pivoted into the ontology's columns.
    `only`: an extra condition on `master_id` (a patch loads only the entities it touches)."""
    ont = load_ontology()
    props = [p for p in ont.class_properties(entity_type) if p.name != ont.cls(entity_type).key]
    cols = "".join(
        f",\n  TRY_CAST(max(a.value) FILTER (WHERE a.property = '{p.name}') AS {DUCK_TYPES[p.datatype]}) AS {p.name}"
        for p in props
    )
    return f"""SELECT m.master_id AS id{cols}
        FROM (SELECT DISTINCT master_id FROM res_link WHERE entity_type = '{entity_type}' {only}) m
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
WHERE true
ORDER BY h.statement_id, chosen DESC
"""


def _edge_columns(rel_type: str) -> str:
    """The relationship's own properties (role, from, to, rank) out of `dwd_relation r`'s JSON."""
    ont = load_ontology()
    return "".join(f""", TRY_CAST(json_extract_string(r.properties, '$.{p}') AS {DUCK_TYPES[ont.prop(p).datatype]})
                   AS {p}""" for p in ont.rel(rel_type).properties)


def _edges_sql(rel_type: str, sql: str) -> str:
    """One edge per distinct set of properties, but no bare edge beside one that says more: HR's
    dated position in a college makes the academic system's undated one in the same college redundant."""
    props = load_ontology().rel(rel_type).properties
    if not props:
        return sql + " ORDER BY ALL"
    said = " OR ".join(f"{p} IS NOT NULL" for p in props)
    return f"""SELECT * FROM ({sql}) e
        QUALIFY ({said}) OR count(*) FILTER (WHERE {said}) OVER (PARTITION BY "from", "to") = 0
        ORDER BY ALL"""


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
    table = _arrow(lake, _edges_sql(rel_type, f"""SELECT DISTINCT {start} AS "from", {end} AS "to"{_edge_columns(rel_type)}
        FROM res_mention m JOIN dwd_record d USING (record_id)
        JOIN res_link l ON l.member_id = m.record_id AND l.entity_type = d.entity_type
        LEFT JOIN dwd_relation r ON r.record_id = m.record_id AND r.rel_type = m.rel_type AND r.position = m.position
        WHERE m.rel_type = ? AND m.master_id IS NOT NULL AND d.entity_type = ?"""), [rel_type, own_type])
    for rule, n in lake.con.execute("""SELECT m.rule, count(*) FROM res_mention m JOIN dwd_record d USING (record_id)
            WHERE m.rel_type = ? AND d.entity_type = ? AND m.master_id IS NULL GROUP BY 1""",
                                    [rel_type, own_type]).fetchall():
        result.unresolved[f"{rel_type} by name ({rule})"] = n
    yield rel_type, start_label, end_label, table


def relation_frames(lake: Lakehouse, result: BuildResult):
    """(type, from label, to label, table) for every relationship the sources imply."""
    specs = lake.con.execute("""SELECT DISTINCT r.rel_type, r.direction, r.target_type, r.match_on, d.entity_type
        FROM dwd_relation r JOIN dwd_record d USING (record_id) ORDER BY ALL""").fetchall()
    by_name: set[tuple] = set()  # mentions by `name` and by `author_name` are one frame (res_mention holds both)
    for rel_type, direction, target_type, match_on, own_type in specs:
        if target_type == "Organisation" and match_on == "name":
            _org_lookup(lake)
        elif target_type == "Discipline":
            lake.con.execute("""CREATE OR REPLACE TEMP TABLE _lookup AS SELECT substr(member_id, 12) AS value,
                master_id FROM res_link WHERE entity_type = 'Discipline'""")
        elif target_type == "Person" and match_on in ("staff_no", "student_no", "id_number"):
            _person_lookup(lake, match_on)
        elif target_type == "Person" and match_on in ("name", "author_name"):
            if (rel_type, direction, own_type) not in by_name:
                by_name.add((rel_type, direction, own_type))
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
        table = _arrow(lake, _edges_sql(rel_type, f"""SELECT DISTINCT {start} AS "from", {end} AS "to"{_edge_columns(rel_type)}
            FROM dwd_relation r
            JOIN dwd_record d USING (record_id)
            JOIN res_link l ON l.member_id = r.record_id AND l.entity_type = d.entity_type
            JOIN _lookup k ON k.value = r.target_value
            WHERE r.rel_type = ? AND r.direction = ? AND r.target_type = ? AND r.match_on = ?
              AND d.entity_type = ? AND {start} <> {end}"""), [rel_type, direction, target_type, match_on, own_type])
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


def edge_frames(lake: Lakehouse, result: BuildResult) -> list[tuple[str, str, str, pa.Table]]:
    """The relationships between master entities: (type, from label, to label, table)."""
    edges = list(relation_frames(lake, result))
    if lake.has_table("res_org_parent"):
        edges.append(("SUB_ORGANISATION_OF", "Organisation", "Organisation", _arrow(
            lake, 'SELECT child_id AS "from", parent_id AS "to" FROM res_org_parent ORDER BY ALL')))
    return edges


def _only(column: str, scope_table: str, scoped: bool) -> str:
    """A patch loads only what it touches: the IDs in the named scope table (see graph_api.graph_build.patch)."""
    return f" AND {column} IN (SELECT id FROM {scope_table})" if scoped else ""


def graph_frames(lake: Lakehouse, result: BuildResult, edges: list[tuple[str, str, str, pa.Table]],
                 scoped: bool = False) -> Iterator[Frame]:
    """Everything the graph holds, as frames in load order (nodes before the relationships that need them).

    `scoped`: only the entities, records, statements and former IDs in the patch's scope tables,
    the ingest runs the graph lacks, and the relationships that touch a scoped entity."""
    ont = load_ontology()
    masters = [r[0] for r in lake.con.execute("SELECT DISTINCT entity_type FROM res_link ORDER BY 1").fetchall()]
    for entity_type in masters:
        yield Frame("node", entity_type, _arrow(lake, master_nodes_sql(
            entity_type, _only("master_id", "_scope_masters", scoped))))
    if not scoped:
        yield Frame("node", "SourceSystem", _arrow(
            lake, "SELECT system AS id, name, department FROM source_system ORDER BY 1"))
    yield Frame("node", "IngestRun", _arrow(lake, f"""SELECT run_id AS id, started_at FROM ingest_run
        WHERE run_id IN ({LINEAGE_RUNS_SQL}) {_only("run_id", "_scope_runs", scoped)} ORDER BY 1"""))
    records = _only("record_id", "_scope_records", scoped)
    yield Frame("node", "SourceRecord", _arrow(lake, f"""SELECT record_id AS id, entity_type, record_key, row_hash,
        system, table_name FROM dwd_record WHERE true {records} ORDER BY 1"""))
    yield Frame("rel", "FROM_SYSTEM", _arrow(
        lake, f'SELECT record_id AS "from", system AS "to" FROM dwd_record WHERE true {records}'),
                "SourceRecord", "SourceSystem")
    # The load that brought this version of the record (not merely the latest load that saw it).
    yield Frame("rel", "LOADED_IN", _arrow(
        lake, f'SELECT record_id AS "from", version_run AS "to" FROM dwd_record WHERE true {records}'),
                "SourceRecord", "IngestRun")
    for entity_type in masters:
        if entity_type in ont.rel("RESOLVED_TO").targets:
            yield Frame("rel", "RESOLVED_TO", _arrow(lake, f"""
                SELECT l.member_id AS "from", l.master_id AS "to", l.rule,
                       CASE WHEN l.rule LIKE 'probabilistic:%' THEN TRY_CAST(split_part(l.rule, ':', 2) AS DOUBLE)
                            WHEN l.rule LIKE 'exact:%' OR l.rule LIKE 'steward:%' THEN 1.0 END AS probability,
                       CASE WHEN l.rule LIKE 'steward:%' THEN split_part(l.rule, ':', 2) END AS decision
                FROM ({RECORD_LINKS_SQL}) l JOIN dwd_record d ON d.record_id = l.member_id
                WHERE l.entity_type = ? {_only("l.member_id", "_scope_linked", scoped)}""", [entity_type]),
                        "SourceRecord", entity_type)
    statements = _only("h.statement_id", "_scope_statements", scoped)
    yield Frame("node", "Statement", _arrow(lake, STATEMENT_NODES_SQL.replace("WHERE true", f"WHERE true {statements}")))
    yield Frame("rel", "STATED_IN", _arrow(lake, f"""
        SELECT h.statement_id AS "from", h.record_id AS "to" FROM dwd_statement_history h
        WHERE h.record_id IN (SELECT record_id FROM dwd_record) {statements}"""), "Statement", "SourceRecord")
    for entity_type in masters:
        if entity_type in ont.rel("DESCRIBES").targets:
            yield Frame("rel", "DESCRIBES", _arrow(lake, f"""
                SELECT h.statement_id AS "from", l.master_id AS "to" FROM dwd_statement_history h
                JOIN res_link l ON l.member_id = h.record_id AND l.entity_type = ? WHERE true {statements}""",
                                                   [entity_type]), "Statement", entity_type)
    former = _only("r.master_id", "_scope_former", scoped)
    yield Frame("node", "FormerId", _arrow(lake, f"""
        SELECT r.master_id AS id, r.entity_type, r.status, u.started_at AS changed_at
        FROM res_master_registry r LEFT JOIN ingest_run u ON u.run_id = r.updated_run
        WHERE r.status <> 'active' {former} ORDER BY 1"""))
    for entity_type in masters:
        if entity_type in ont.rel("MERGED_INTO").targets:
            touching = (" AND (r.master_id IN (SELECT id FROM _scope_former) "
                        "OR r.merged_into IN (SELECT id FROM _scope_masters))") if scoped else ""
            yield Frame("rel", "MERGED_INTO", _arrow(lake, f"""
                SELECT r.master_id AS "from", r.merged_into AS "to" FROM res_master_registry r
                WHERE r.status = 'merged' AND r.entity_type = ?
                  AND r.merged_into IN (SELECT master_id FROM res_link) {touching}""", [entity_type]),
                        "FormerId", entity_type)
    scope = _arrow(lake, "SELECT id FROM _scope_masters").column("id") if scoped else None
    for rel_type, start, end, table in edges:
        if scope is not None:
            table = table.filter(pc.or_(pc.is_in(table["from"], scope), pc.is_in(table["to"], scope)))
        yield Frame("rel", rel_type, table, start, end)


@dataclass
class AnalystGraph:
    """The analyst projection being written beside the full graph."""

    store: GraphStore
    path: str
    projection: AnalystProjection


def _load(store: GraphStore, frame: Frame) -> int:
    if frame.kind == "node":
        return store.load_nodes(frame.name, frame.table)
    return store.load_rels(frame.name, frame.start, frame.end, frame.table)


def _load_projected(analyst: AnalystGraph, frame: Frame) -> int:
    return _load(analyst.store, analyst.projection.frame(frame))


def load_graph(store: GraphStore, result: BuildResult, step: Callable[[str], None], frames: Iterable[Frame],
               analyst: AnalystGraph | None = None) -> None:
    """Loads each frame into the store and, projected, into the analyst graph: each frame is
    computed once. The analyst graph loads on a second thread, at most one frame behind, so the two
    bulk loads overlap (each is native code that leaves the GIL) and memory holds two frames at most."""
    store.apply_schema()
    if analyst is not None:
        analyst.store.apply_schema()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="analyst-graph") as worker:
        behind: deque[Future] = deque()
        for frame in frames:
            if analyst is not None:
                behind.append(worker.submit(_load_projected, analyst, frame))
            counts = result.nodes if frame.kind == "node" else result.rels
            counts[frame.name] = counts.get(frame.name, 0) + _load(store, frame)
            while len(behind) > 1:
                behind.popleft().result()
            step(frame.name)
        for loading in behind:
            loading.result()


def build_graph(settings: Settings, workspace: Workspace, backend: str | None = None,
                step: Callable[[str], None] = lambda _: None, mode: str = "auto") -> BuildResult:
    """Builds the graph and switches the served graph to it.

    mode `auto`: patch a copy of the served build when the change is small (graph_patch_max_share),
    rebuild otherwise; `full`: always rebuild; `patch`: patch or fail."""
    if mode not in BUILD_MODES:
        raise ValueError(f"build mode must be one of {BUILD_MODES}, not {mode!r}")
    backend = backend or settings.graph_backend
    now = dt.datetime.now(dt.UTC)
    build_id = f"build-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    result = BuildResult(build_id, backend)
    target = build_target(settings, workspace, backend)
    previous = workspace.read_current_graph() or {}
    with Lakehouse(workspace.lakehouse, read_only=True, memory_limit=settings.duckdb_build_memory_limit) as lake, \
            ExitStack() as opened:
        run_id = lake.latest_run()
        projection = (opened.enter_context(AnalystProjection.for_build(workspace, lake))
                      if target.writes_analyst else None)
        edges = edge_frames(lake, result)
        plan = PatchPlan(False, "a full build was asked for")
        if mode != "full":
            if previous.get("backend") != backend:
                plan = PatchPlan(False, "no served build of this backend to patch")
            elif projection is not None and not (previous.get("analyst_path") and previous.get(
                    "analyst_projection") == projection.fingerprint):
                plan = PatchPlan(False, "the served build has no analyst graph projected with this workspace's key "
                                        "and sources")
            else:
                snapshot = Path(previous["snapshot"]) if previous.get("snapshot") else None
                plan = plan_patch(lake, snapshot, edges, settings.graph_patch_max_share)
            if plan.patch and not plan.empty and not target.patchable:
                plan = PatchPlan(False, f"{backend} builds load the standby whole")
            if mode == "patch" and not plan.patch:
                raise PatchRefused(plan.reason)
        result.plan = plan
        if plan.patch and plan.empty:  # nothing the graph shows has changed: keep serving it
            result.build_id, result.path, result.unchanged = previous["build_id"], previous.get("path"), True
            result.analyst_path = previous.get("analyst_path")
            result.person_records_path = previous.get("person_records_path")
            result.nodes, result.rels = previous.get("nodes", {}), previous.get("rels", {})
            return result
        # The person records the API serves (graph_api.graph_build.person_records), from the same lakehouse and frames,
        # written while the graph loads (assembling records is Python, a load native code) on a DuckDB
        # connection of their own: by a full build all of them; by a patch, into a copy of the served
        # artefact, those of the persons its scope tables touch (found here, where those tables are).
        result.person_records_path = str(records_path(workspace, build_id))
        scope = scope_patched_persons(lake, edges, plan.refreshed_sources) if plan.patch else None
        records_writer = opened.enter_context(ThreadPoolExecutor(1, thread_name_prefix="person-records"))
        records = records_writer.submit(write_person_records_apart, lake.path, edges, Path(result.person_records_path),
                                        settings.duckdb_build_memory_limit,
                                        previous.get("person_records_path") if plan.patch else None, scope)
        if plan.patch:
            store, result.path = target.copy_of(previous, build_id)
            analyst = _analyst_graph(opened, target.analyst_copy_of(previous, build_id), projection)
            with store:
                delete_scope(store, lake)
                if analyst is not None:
                    delete_scope(analyst.store, lake, analyst.projection.node_keys)
                load_graph(store, result, step, graph_frames(lake, result, edges, scoped=True), analyst)
                refresh_last_seen(store, plan)
                if analyst is not None:
                    refresh_last_seen(analyst.store, plan)
                loaded = {**result.nodes, **result.rels}
                result.nodes = {label: store.count(label) for label in store.schema.nodes}
                result.rels = {rel: store.count_rels(rel) for rel in store.schema.rels}
                result.patched = loaded
        else:
            store, result.path = target.fresh(build_id)
            analyst = _analyst_graph(opened, target.fresh_analyst(build_id), projection)
            with store:
                load_graph(store, result, step, graph_frames(lake, result, edges), analyst)
        result.person_records = records.result()
        step("person records")
        # The analyst store closes with `opened`, before the pointer names it (published files are closed).
        result.analyst_path = analyst.path if analyst is not None else None
        snapshot_dir = workspace.graph_dir / "snapshots" / build_id
        write_snapshot(lake, edges, snapshot_dir)
    workspace.publish_graph({"backend": backend, "build_id": build_id, "path": result.path, **target.pointer_fields(),
                             "analyst_path": result.analyst_path, "person_records_path": result.person_records_path,
                             "analyst_projection": projection.fingerprint if projection is not None else None,
                             "run_id": run_id,
                             "built_at": now.isoformat(), "mode": "patch" if plan.patch else "full",
                             "patched_from": previous.get("build_id") if plan.patch else None,
                             "snapshot": str(snapshot_dir), "nodes": result.nodes, "rels": result.rels})
    # Re-read the pointer before deleting anything: the files it names now are served, whoever published it.
    served = workspace.read_current_graph() or {}
    target.prune(keep={result.path, result.analyst_path, previous.get("path"), previous.get("analyst_path"),
                       served.get("path"), served.get("analyst_path")})
    prune_person_records(workspace, keep={result.person_records_path, previous.get("person_records_path"),
                                          served.get("person_records_path")})
    _prune_snapshots(workspace, keep={build_id, previous.get("build_id")})
    return result


def _analyst_graph(opened: ExitStack, store_and_path: tuple[GraphStore, str] | None,
                   projection: AnalystProjection | None) -> AnalystGraph | None:
    """The analyst graph to write beside the full one (closed with `opened` if the build fails)."""
    if store_and_path is None or projection is None:
        return None
    store, path = store_and_path
    opened.callback(store.close)
    return AnalystGraph(store, path, projection)


def _prune_snapshots(workspace: Workspace, keep: set[str | None]) -> None:
    for snapshot in (workspace.graph_dir / "snapshots").glob("build-*"):
        if snapshot.name not in keep:
            shutil.rmtree(snapshot, ignore_errors=True)
