"""The pipeline spine: each step as a function the CLI (and tests) call, with Rich progress."""

from __future__ import annotations

import functools
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, SpinnerColumn, TextColumn,
                           TimeElapsedColumn)
from rich.text import Text
from rich.table import Table

from campus_kg.csv_safe import SafeWriter
from campus_kg.locking import workspace_lock
from campus_kg.settings import Settings
from campus_kg.workspace import Workspace
from ingest.lakehouse import Lakehouse
from ingest.load import IngestResult, ingest
from ingest.mapping import load_mapping
from campus_kg.state import StateStore
from resolution.person_linkage import Decision, LinkageOptions
from resolution.run import ResolveResult, resolve
from resolution.status import require_complete

if TYPE_CHECKING:
    from graph_api.graph_build.run import BuildResult


@contextmanager
def _progress(console: Console):
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  _RateColumn(), TimeElapsedColumn(), console=console, transient=True) as progress:
        yield progress


class _RateColumn(ProgressColumn):
    """Records per second of a counted task (ingest), so a long run shows where it is slow."""

    def render(self, task) -> Text:
        return Text(f"{task.speed:,.0f} records/s 条/秒" if task.speed else "", style="progress.data.speed")


def exclusive(command: str):
    """The step holds the workspace lock (campus_kg.locking) while it runs; re-entrant, so `run`
    can hold it across its steps. Raises WorkspaceBusy after `workspace_lock_timeout_s`."""
    def wrap(step):
        @functools.wraps(step)
        def locked(*args, **kwargs):
            given = (*args, *kwargs.values())
            workspace = next(a for a in given if isinstance(a, Workspace))
            settings = next((a for a in given if isinstance(a, Settings)), None) or Settings(workspace=workspace.root)
            with workspace_lock(workspace.root, command, settings.workspace_lock_timeout_s):
                return step(*args, **kwargs)
        return locked
    return wrap


@exclusive("ingest")
def run_ingest(mapping_path: Path, workspace: Workspace, console: Console,
               settings: Settings | None = None, *, allow_deletions: bool = False,
               allow_paths_outside: bool = False) -> IngestResult:
    """Raises MappingError for a mapping that does not validate. `allow_deletions` lifts the
    deletion guard (settings.ingest_max_delete_share) for this run; `allow_paths_outside` lets
    sources read files outside the mapping's folder."""
    mapping = load_mapping(mapping_path, allow_paths_outside)
    settings = settings or Settings(workspace=workspace.root)
    thresholds = settings.quality_thresholds()
    with _progress(console) as progress, Lakehouse(workspace.lakehouse,
                                                   memory_limit=settings.duckdb_memory_limit) as lake:
        def on_source(source):
            task = progress.add_task(f"ingest {source.name}", total=None)
            return lambda n: progress.advance(task, n)

        result = ingest(mapping, lake, str(mapping_path), on_source, thresholds,
                        max_delete_share=settings.ingest_max_delete_share, allow_deletions=allow_deletions)
    if result.quality is not None:
        from ingest import quality

        workspace.quality_report.parent.mkdir(parents=True, exist_ok=True)
        quality.write_json(result.quality, workspace.quality_report)
    table = Table(title=f"ingest run {result.run_id}: read = loaded + quarantined")
    table.add_column("source 来源")
    for col in ("read 读取", "loaded 入库", "quarantined 隔离", "new 新增", "changed 变更", "deleted 删除"):
        table.add_column(col, justify="right")
    for s in result.sources:
        mark = "" if s.balanced else " [red]≠"
        table.add_row(s.source, str(s.read), str(s.loaded), str(s.quarantined) + mark, str(s.new), str(s.changed),
                      str(s.deleted))
    console.print(table)
    for s in result.sources:
        if s.problem:
            console.print(f"[red]not loaded[/]: {s.problem}")
        for problem in s.problems:
            console.print(f"[yellow]quarantined[/]: {problem}")
    return result


@exclusive("quality")
def run_quality(settings: Settings, workspace: Workspace, console: Console, html: Path | None,
                json_out: Path | None) -> dict:
    from ingest import quality

    with Lakehouse(workspace.lakehouse) as lake:
        report = quality.with_trend(lake, quality.assess_and_store(lake, None, settings.quality_thresholds()))
    table = Table(title=f"data quality 数据质量, run {report['run_id']}")
    for col in ("light 灯", "department 部门", "score 得分", "tables 表"):
        table.add_column(col)
    colours = {"green": "green", "yellow": "yellow", "red": "red"}
    for d in report["departments"]:
        light = d["light"] or "none"
        table.add_row(f"[{colours.get(light, 'white')}]●[/] {light}", d["department"],
                      "—" if d["score"] is None else f"{d['score']:.1%}", ", ".join(d["tables"]))
    console.print(table)
    if html:
        quality.write_html(report, html)
        console.print(f"HTML report: {html}")
    if json_out:
        quality.write_json(report, json_out)
        console.print(f"JSON report: {json_out}")
    return report


def export_rdf(workspace: Workspace, out: Path, fmt: str, include_sensitive: bool = False) -> int:
    from graph_api.graph_build.rdf_export import export_graph

    with Lakehouse(workspace.lakehouse, read_only=True) as lake:
        graph = export_graph(lake, include_sensitive)
    graph.serialize(destination=out, format=fmt)
    return len(graph)


def run_catalogue(workspace: Workspace, out: Path) -> int:
    from ingest.catalogue import catalogue_graph

    with Lakehouse(workspace.lakehouse, read_only=True) as lake:
        graph, datasets = catalogue_graph(lake)
    graph.serialize(destination=out, format="turtle")
    return datasets


def linkage_options(settings: Settings, workspace: Workspace) -> LinkageOptions:
    """Steward decisions from the state database, the model's place and the thresholds."""
    state = StateStore(settings.state_database_url(), settings.token_secret.get_secret_value())
    decisions = [Decision(d["record_a"], d["record_b"], d["judgement"]) for d in state.decisions("Person")]
    return LinkageOptions(model_path=workspace.person_model, match_threshold=settings.match_threshold,
                          review_threshold=settings.review_threshold, decisions=decisions,
                          mention_match_threshold=settings.mention_match_threshold,
                          review_budget=settings.review_budget, engine=settings.resolution_engine,
                          retrain_share=settings.resolution_retrain_share,
                          spark_master=settings.spark_master, memory_limit=settings.resolution_memory_limit)


@exclusive("resolve")
def run_resolve(workspace: Workspace, console: Console, settings: Settings | None = None, *,
                retrain: bool = False) -> ResolveResult:
    """`retrain`: train the Person model anew even where the saved one may be reused."""
    settings = settings or Settings(workspace=workspace.root)
    options = linkage_options(settings, workspace)
    options.retrain = retrain
    corrections = StateStore(settings.state_database_url(), settings.token_secret.get_secret_value()).corrections(
        status="approved")
    with console.status("resolving 解析…") as shown, Lakehouse(workspace.lakehouse) as lake:
        result = resolve(lake, options, corrections, on_stage=lambda stage: shown.update(f"resolving 解析: {stage}…"))
        publish_review_queue(lake, workspace.review_queue)
    for note in result.notes:  # the evidence person linkage had, and any training step it skipped
        console.print(f"[cyan]person linkage 人员匹配[/]: {note}")
    table = Table(title="resolution: master entities")
    table.add_column("entity type 实体类型")
    table.add_column("records 记录", justify="right")
    table.add_column("masters 主数据", justify="right")
    for et, n in result.masters.items():
        table.add_row(et, str(result.records[et]), str(n))
    console.print(table)
    console.print(f"{len(options.decisions)} steward decisions applied; {result.probabilistic_links} probabilistic "
                  f"links at p ≥ {settings.match_threshold}; {result.entity_links} weakly identified records "
                  f"linked to the one entity that fits; {result.review_items} items for review"
                  + (f" and {result.review_deferred} deferred beyond the review budget" if result.review_deferred else "")
                  + " "
                  f"(p ≥ {settings.review_threshold}); model "
                  + ("reused from" if result.model_reused else "saved to")
                  + f" {workspace.person_model}")
    if result.mentions:
        console.print("person mentions by name 按姓名提及: " + ", ".join(f"{k} {v}" for k, v in result.mentions.items()))
    console.print("time by stage 各阶段耗时: " + result.stages.summary())
    if result.refused_merges:
        console.print(f"[yellow]{result.refused_merges} merges refused: they would join two different valid ID "
                      "numbers or a steward's 'not the same'")
    return result


def publish_review_queue(lake: Lakehouse, out: Path) -> None:
    """The review queue with each pair's departments and master IDs, replaced atomically; the items
    whose decision teaches the model most first (resolution/review_priority.py)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.parquet")
    lake.con.execute(f"""COPY (
        SELECT q.item_id, q.entity_type, q.record_a, q.record_b, q.match_probability, q.match_weight, q.reason,
               CAST(q.evidence AS VARCHAR) AS evidence, q.run_id, q.priority,
               la.master_id AS master_a, lb.master_id AS master_b,
               sa.department AS department_a, sb.department AS department_b
        FROM res_review q
        LEFT JOIN res_link la ON la.member_id = q.record_a
        LEFT JOIN res_link lb ON lb.member_id = q.record_b
        LEFT JOIN dwd_record ra ON ra.record_id = q.record_a LEFT JOIN source_system sa ON sa.system = ra.system
        LEFT JOIN dwd_record rb ON rb.record_id = q.record_b LEFT JOIN source_system sb ON sb.system = rb.system
        ORDER BY q.priority DESC NULLS LAST, q.item_id) TO '{tmp}' (FORMAT parquet)""")  # most to learn first
    tmp.replace(out)


@exclusive("build-graph")
def run_build(settings: Settings, workspace: Workspace, console: Console, backend: str | None = None,
              mode: str = "auto") -> BuildResult:
    # Imported here: a run that changed nothing, or any command but a build, never loads it.
    from graph_api.graph_build.run import build_graph

    with _progress(console) as progress:
        task = progress.add_task("build graph", total=None)
        result = build_graph(settings, workspace, backend, step=lambda name: progress.update(
            task, advance=1, description=f"build graph: {name}"), mode=mode)
    plan = result.plan
    if result.unchanged:
        console.print(f"graph unchanged 图谱无变化: still serving {result.build_id}")
        return result
    if result.patched is not None:
        console.print(f"patched 增量更新 the served graph: {plan.masters} entities, {plan.records} source records, "
                      f"{plan.statements} statements loaded again ({plan.reason})")
    elif plan is not None:
        console.print(f"full build 全量构建: {plan.reason}")
    console.print(f"graph [bold]{result.build_id}[/] ({result.backend}): "
                  + ", ".join(f"{k} {v}" for k, v in {**result.nodes, **result.rels}.items() if v))
    for what, n in result.unresolved.items():
        console.print(f"[yellow]not linked yet[/]: {n} {what}")
    return result


def export_links(workspace: Workspace, out: Path) -> int:
    """One row per source record read: loaded records with their master, quarantined rows without."""
    with Lakehouse(workspace.lakehouse, read_only=True) as lake:
        require_complete(lake, str(workspace.root))  # else every master_id would be empty
        run_id = lake.latest_run()
        rows = lake.con.execute("""
            SELECT d.system, d.table_name, d.record_key, d.entity_type, l.master_id
            FROM dwd_record d LEFT JOIN res_link l ON l.member_id = d.record_id AND l.entity_type = d.entity_type
            UNION ALL
            SELECT s.system, s.table_name, 'row:' || q.row_no, s.entity_type, NULL
            FROM quarantine q JOIN source_stats s ON s.run_id = q.run_id AND s.source = q.source
            WHERE q.run_id = ?
            ORDER BY 1, 2, 3""", [run_id]).fetchall()
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8", newline="") as fh:
        w = SafeWriter(fh)  # a record key such as `=cmd|...` must not run when the file is opened in Excel
        w.writerow(["system", "table", "record_key", "entity_type", "master_id"])
        w.writerows(rows)
    return len(rows)
