"""`campus-kg`: the command-line contract. Scripts depend on these names and options; keep them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from campus_kg import pipeline
from campus_kg.locking import WorkspaceBusy, workspace_lock
from campus_kg.settings import Settings
from campus_kg.state import ROLES, StateStore
from campus_kg.workspace import Workspace

app = typer.Typer(help="campus-kg: 高校数据治理知识图谱 / university knowledge graph and entity resolution",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)
export_app = typer.Typer(help="Export data from a workspace.", no_args_is_help=True)
users_app = typer.Typer(help="API tokens and their roles.", no_args_is_help=True)
app.add_typer(export_app, name="export")
app.add_typer(users_app, name="users")
# soft_wrap: messages are not broken at the terminal's width by Rich (a path in an error stays one
# piece to copy); tables still fit the width.
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)  # beside a document on stdout (--json)

WorkspaceOpt = Annotated[Path, typer.Option("--workspace", help="Workspace directory (lakehouse, graph, state).")]
MappingOpt = Annotated[Path, typer.Option("--mapping", exists=True, dir_okay=False, help="Mapping file (YAML).")]
BackendOpt = Annotated[str | None, typer.Option("--backend", help="ladybug (default) or neo4j.")]
AllowDeletionsOpt = Annotated[bool, typer.Option(
    "--allow-deletions", help="Load sources even when they would delete more than ingest_max_delete_share of "
                              "their records (the deletion guard), or load no row at all.")]
AllowPathsOutsideOpt = Annotated[bool, typer.Option(
    "--allow-paths-outside", help="Let the mapping's sources read files outside the mapping's folder.")]
BuildModeOpt = Annotated[str, typer.Option(
    "--mode", help="auto: patch the served graph when the change is small, else rebuild; full; patch.")]


def _settings(workspace: Path | None = None) -> Settings:
    return Settings(workspace=workspace) if workspace is not None else Settings()


@contextmanager
def _exclusive(workspace: Path, command: str) -> Iterator[Workspace]:
    """Holds the workspace lock for the whole command; another run holding it is a clear exit 1."""
    ws = Workspace.at(workspace)
    try:
        with workspace_lock(ws.root, command, _settings(workspace).workspace_lock_timeout_s):
            yield ws
    except WorkspaceBusy as exc:
        console.print(f"[red]{exc}")
        raise typer.Exit(1) from None


def _ingest(mapping: Path, ws: Workspace, allow_deletions: bool, allow_paths_outside: bool):
    """The ingest step of `ingest` and `run`; a mapping that does not validate is a message, exit 2."""
    from ingest.mapping import MappingError

    try:
        return pipeline.run_ingest(mapping, ws, console, allow_deletions=allow_deletions,
                                   allow_paths_outside=allow_paths_outside)
    except MappingError as exc:
        from rich.markup import escape

        console.print(f"[red]mapping refused 映射文件有误[/]:\n{escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None


def _held_back(ingested) -> bool:
    """A source that could not be loaded (it keeps its previous state) fails the command."""
    held = [s.source for s in ingested.sources if s.problem]
    if held:
        console.print(f"[red]run {ingested.run_id} completed with errors 部分来源未入库: {', '.join(held)} held back")
    return bool(held)


@app.command()
def generate(out: Annotated[Path, typer.Option("--out", help="Directory for the exports.")],
             persons: Annotated[int, typer.Option("--persons", min=10)] = 5000,
             seed: Annotated[int, typer.Option("--seed")] = 42,
             messiness: Annotated[float, typer.Option("--messiness", min=0.0, max=0.5)] = 0.05) -> None:
    """Write a synthetic university's nine systems' exports, its truth files and its mapping."""
    from ingest.synthetic import generate as gen

    with console.status(f"generating {persons} persons…"):
        result = gen(out, persons=persons, seed=seed, messiness=messiness)
    console.print(f"{result.records} records from {len(result.by_source)} exports in {out}; "
                  f"mapping {result.mapping_path.name}, truth {result.truth_path.name}")


@app.command("ingest")
def ingest_cmd(mapping: MappingOpt, workspace: WorkspaceOpt, allow_deletions: AllowDeletionsOpt = False,
               allow_paths_outside: AllowPathsOutsideOpt = False) -> None:
    """Load the exports a mapping declares into the workspace's lakehouse."""
    with _exclusive(workspace, "ingest") as ws:
        ingested = _ingest(mapping, ws, allow_deletions, allow_paths_outside)
    if _held_back(ingested):
        raise typer.Exit(1)


@app.command("quality")
def quality_cmd(workspace: WorkspaceOpt,
                html: Annotated[Path | None, typer.Option("--html", help="HTML report to write.")] = None,
                json_out: Annotated[Path | None, typer.Option("--json", help="JSON report to write.")] = None) -> None:
    """Data quality of the latest ingest run: six dimensions, a traffic light per department and table."""
    try:
        with _exclusive(workspace, "quality") as ws:
            pipeline.run_quality(_settings(workspace), ws, console, html, json_out)
    except LookupError as exc:
        console.print(f"[red]{exc}")
        raise typer.Exit(1) from None


@app.command("catalogue")
def catalogue_cmd(workspace: WorkspaceOpt,
                  out: Annotated[Path, typer.Option("--out", help="Turtle file to write.")]) -> None:
    """The data resource directory (公共数据资源目录) of every source table and field, as DCAT."""
    n = pipeline.run_catalogue(Workspace.at(workspace), out)
    console.print(f"wrote {out}: {n} datasets")


@app.command("resolve")
def resolve_cmd(workspace: WorkspaceOpt,
                engine: Annotated[str | None, typer.Option(
                    "--engine", help="Where the Person model runs: duckdb or spark (default: the setting "
                                     "resolution_engine, duckdb).")] = None,
                spark_master: Annotated[str | None, typer.Option(
                    "--spark-master", help="Spark master for --engine spark: local[2] (default), "
                                           "spark://host:7077, yarn, sc://host:15002.")] = None,
                retrain: Annotated[bool, typer.Option(
                    "--retrain", help="Train the Person model anew, even while the saved one may be reused "
                                      "(setting resolution_retrain_share).")] = False) -> None:
    """Resolve source records into master entities."""
    from resolution.engines import ENGINES, EngineUnavailable

    if engine is not None and engine not in ENGINES:
        raise typer.BadParameter(f"{engine!r}: one of {', '.join(ENGINES)}", param_hint="--engine")
    chosen = {k: v for k, v in (("resolution_engine", engine), ("spark_master", spark_master)) if v is not None}
    settings = _settings(workspace).model_copy(update=chosen)
    with _exclusive(workspace, "resolve") as ws:
        try:
            pipeline.run_resolve(ws, console, settings, retrain=retrain)
        except EngineUnavailable as exc:
            console.print(f"[red]resolve failed 解析失败: {exc}")
            raise typer.Exit(1) from None


@app.command("evaluate")
def evaluate_cmd(workspace: WorkspaceOpt,
                 truth: Annotated[Path, typer.Option("--truth", exists=True, dir_okay=False,
                                                     help="CSV: source,record_key,entity_type,entity_id.")],
                 mentions: Annotated[Path | None, typer.Option(
                     "--mentions", exists=True, dir_okay=False,
                     help="CSV: source,record_key,position,mention,entity_id (EXTERNAL for outsiders).")] = None,
                 as_json: Annotated[bool, typer.Option(
                     "--json", help="Print one JSON document with every figure (and nothing else) instead of "
                                    "tables.")] = False,
                 ) -> None:
    """Pairwise and B-cubed P / R / F1 per entity type against a truth file, mentions (also counted as
    records) and the calibration of match probabilities."""
    import json

    from ingest.lakehouse import Lakehouse
    from resolution.evaluate import BadTruthFile, NothingToEvaluate, evaluation
    from resolution.status import ResolutionIncomplete, require_complete

    ws = Workspace.at(workspace)
    try:
        with Lakehouse(ws.lakehouse, read_only=True) as lake:
            require_complete(lake, str(ws.root))  # no score over a resolution that did not finish
            if as_json:  # a long query's progress bar would land on stdout, inside the document
                lake.con.execute("SET enable_progress_bar = false")
            report = evaluation(lake, truth, mentions)
    except (ResolutionIncomplete, NothingToEvaluate, BadTruthFile) as exc:
        (err_console if as_json else console).print(f"[red]cannot evaluate 无法评估[/]: {exc}")
        raise typer.Exit(1) from None
    if as_json:  # stdout holds the document only: scripts parse it
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        _print_evaluation(report)


def _print_evaluation(report: dict) -> None:
    """The tables of `campus-kg evaluate`, drawn from the JSON document (the two never disagree)."""
    table = Table(title="evaluation 评估: pairwise and B-cubed")
    for col in ("entity type 实体类型", "records 记录", "pairwise P", "pairwise R", "pairwise F1", "B³ P", "B³ R",
                "B³ F1"):
        table.add_column(col, justify="left" if col.startswith("entity") else "right")
    for et, score in report["entity_types"].items():
        pw, b3 = score["pairwise"], score["bcubed"]
        table.add_row(et, str(score["records"]), *(f"{v:.4f}" for v in (
            pw["precision"], pw["recall"], pw["f1"], b3["precision"], b3["recall"], b3["f1"])))
    console.print(table)
    hard = Table(title="hard cases 难例 (Person)")
    for col in ("pairs 样本对", "of them 其中", "correct 正确", "rate 比率"):
        hard.add_column(col, justify="right" if col != "of them 其中" else "left")
    for label, b in report["hard_cases"].items():
        hard.add_row(str(b["pairs"]), label, str(b["correct"]), f"{b['rate']:.4f}")
    console.print(hard)
    if (m := report["mentions"]) is not None:
        console.print(f"person mentions 人员提及: {m['mentions']} ({m['internal']} internal, {m['external']} external); "
                      f"linked correctly {m['linked_correctly']}, wrongly {m['linked_wrongly']}; precision "
                      f"{m['precision']:.4f}, recall {m['recall']:.4f}; external kept external "
                      f"{m['external_kept_external']}/{m['external']}")
        r = report["mentions_as_records"]
        whole = Table(title="person pairwise, mentions counted as records 人员成对评估（提及计为记录）")
        for col in ("records 记录", "of them mentions 其中提及", "true pairs 真实对", "predicted pairs 预测对",
                    "correct 正确", "pairwise P", "pairwise R", "pairwise F1"):
            whole.add_column(col, justify="right")
        whole.add_row(*(str(r[k]) for k in ("records", "mentions", "true_pairs", "predicted_pairs", "correct_pairs")),
                      *(f"{r[k]:.4f}" for k in ("precision", "recall", "f1")))
        console.print(whole)
    for what, label in (("pairs", "record pairs 记录对"), ("entities", "record/mention → master 记录/提及对主数据")):
        _print_calibration(report["calibration"][what], label)
    review = report["review"]
    console.print(f"review 待审: {review['person_items']} person items for {review['person_records']} person records, "
                  f"{review['per_person_record']:.4f} per record 每条记录")


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def _print_calibration(cal: dict, label: str) -> None:
    if not cal["available"]:
        console.print(f"calibration 校准 ({label}): no table {cal['table']} in this workspace 工作区无此表 "
                      "(resolved by an older version: `campus-kg resolve` writes it)")
        return
    table = Table(title=f"calibration 校准: {label} ({cal['table']})",
                  caption=f"{cal['labelled']} of {cal['scored']} scored rows labelled 有真值; "
                          f"Brier {_fmt(cal['brier'])}, ECE 期望校准误差 {_fmt(cal['ece'])}")
    for col in ("predicted 预测概率", "count 数量", "mean predicted 平均预测", "observed 实际同一", "gap 偏差"):
        table.add_column(col, justify="right")
    for b in cal["bins"]:
        closing = "]" if b["upper"] >= 1 else ")"
        gap = None if b["count"] == 0 else b["mean_predicted"] - b["observed"]
        table.add_row(f"[{b['lower']:.1f}, {b['upper']:.1f}{closing}", str(b["count"]), _fmt(b["mean_predicted"]),
                      _fmt(b["observed"]), "—" if gap is None else f"{gap:+.4f}")
    console.print(table)


@app.command("model")
def model_cmd(workspace: WorkspaceOpt) -> None:
    """The trained Person linkage model: every comparison level with its m, u and match weight."""
    from resolution.person_model import match_weights

    path = Workspace.at(workspace).person_model
    if not path.exists():
        console.print(f"[red]no model at {path}: run `campus-kg resolve` first")
        raise typer.Exit(1)
    table = Table(title=f"Person linkage model 人员匹配模型 ({path})")
    for col in ("comparison 比较", "level 级别", "m", "u", "match weight 权重"):
        table.add_column(col, justify="right" if col in ("m", "u", "match weight 权重") else "left")
    for w in match_weights(path):
        table.add_row(w["comparison"], w["level"] or "", *(f"{w[k]:.4g}" if w[k] is not None else "—"
                                                           for k in ("m", "u", "match_weight")))
    console.print(table)


@app.command("lineage")
def lineage_cmd(workspace: WorkspaceOpt,
                entity_id: Annotated[str, typer.Argument(help="Master ID, e.g. P00000006.")],
                prop: Annotated[str, typer.Argument(help="Property, e.g. name or birth_date.")],
                as_of: Annotated[str | None, typer.Option("--as-of", help="ISO date or time: the value then.")]
                = None) -> None:
    """Where a value came from: every statement, its source record, system, load and times (auditors).
    The read is written to the access log; sensitive values are shown masked."""
    import datetime as dt
    import getpass

    from campus_kg.state import Principal
    from graph_api.lineage import attribute_lineage, entity_history
    from graph_api.served_graph import ServedGraph
    from ontology.masking import mask_if_sensitive
    from ontology.model import OntologyError, load_ontology

    try:
        load_ontology().prop(prop)
    except OntologyError as exc:
        console.print(f"[red]{exc}")
        raise typer.Exit(2) from None
    when = dt.datetime.fromisoformat(as_of) if as_of else None
    settings, ws = _settings(workspace), Workspace.at(workspace)
    graph = ServedGraph(settings, ws)
    try:
        answer = attribute_lineage(graph, entity_id, prop, as_of=when)
        history = entity_history(graph, entity_id)
    finally:
        graph.close()
    state = StateStore(settings.state_database_url(), settings.token_secret.get_secret_value())
    state.log_access(Principal("", f"cli:{getpass.getuser()}", "auditor", None), entity_id if entity_id.startswith("P")
                     else None, f"cli lineage {prop}", [prop], "cli")

    def shown(value):
        return mask_if_sensitive(prop, value)

    console.print(f"{entity_id} · {prop}: [bold]{shown(answer['value'])}[/] (rule {answer['rule']}); "
                  f"ID status {history['status']}" + (f" → {history['merged_into']}" if history["merged_into"] else ""))
    if when is not None:
        console.print(f"as of {answer['as_of']}: [bold]{shown(answer['value_as_of'])}")
    table = Table(title="statements 陈述 (chosen first)")
    for col in ("chosen 采纳", "value 值", "as written 原值", "authority 权威", "system 系统", "record 记录",
                "first seen 首次", "last seen 最近", "gone since 失效"):
        table.add_column(col)
    for st in answer["statements"]:
        table.add_row("✓" if st["chosen"] else "", str(shown(st["value"])), str(shown(st["written_value"])),
                      str(st["authority"]), f"{st['system_name']} ({st['system']})", str(st["record_id"]),
                      f"{st['first_seen']:%Y-%m-%d %H:%M}", f"{st['last_seen']:%Y-%m-%d %H:%M}",
                      f"{st['retired_at']:%Y-%m-%d %H:%M}" if st["retired_at"] else "")
    console.print(table)


@app.command("build-graph")
def build_graph_cmd(workspace: WorkspaceOpt, backend: BackendOpt = None, mode: BuildModeOpt = "auto") -> None:
    """Build the graph from the lakehouse (or patch it, when little changed) and switch the served graph to it."""
    from graph_api.graph_build.run import BUILD_MODES, PatchRefused

    if mode not in BUILD_MODES:
        console.print(f"[red]--mode must be one of {', '.join(BUILD_MODES)}")
        raise typer.Exit(2)
    try:
        with _exclusive(workspace, "build-graph") as ws:
            pipeline.run_build(_settings(workspace), ws, console, backend, mode)
    except PatchRefused as exc:
        console.print(f"[red]cannot patch[/]: {exc}")
        raise typer.Exit(1) from None


@app.command("run")
def run_cmd(mapping: MappingOpt, workspace: WorkspaceOpt, backend: BackendOpt = None,
            force: Annotated[bool, typer.Option("--force", help="Resolve and build even when nothing changed.")]
            = False, allow_deletions: AllowDeletionsOpt = False,
            allow_paths_outside: AllowPathsOutsideOpt = False) -> None:
    """ingest + resolve + build-graph (the last two only when the ingest changed something)."""
    from resolution.stages import StageClock

    steps = StageClock()  # a long run says which step to look at
    with _exclusive(workspace, "run") as ws:
        with steps.stage("ingest 摄取"):
            ingested = _ingest(mapping, ws, allow_deletions, allow_paths_outside)
        if not ingested.changed and ws.current_graph_pointer.exists() and not force:
            console.print("nothing changed since the last run: the served graph is current (use --force to rebuild)")
        else:  # a source held back keeps its previous state: the others still go through
            with steps.stage("resolve 解析"):
                pipeline.run_resolve(ws, console, _settings(workspace))
            with steps.stage("graph build 图构建"):
                pipeline.run_build(_settings(workspace), ws, console, backend)
    console.print("time by step 各步骤耗时: " + steps.summary())
    if _held_back(ingested):
        raise typer.Exit(1)


@export_app.command("links")
def export_links_cmd(workspace: WorkspaceOpt,
                     out: Annotated[Path, typer.Option("--out", help="CSV file to write.")]) -> None:
    """One row per source record read: system,table,record_key,entity_type,master_id."""
    from resolution.status import ResolutionIncomplete

    try:
        n = pipeline.export_links(Workspace.at(workspace), out)
    except ResolutionIncomplete as exc:
        console.print(f"[red]cannot export links 无法导出[/]: {exc}")
        raise typer.Exit(1) from None
    console.print(f"{n} rows written to {out}")


@app.command("backup")
def backup_cmd(workspace: WorkspaceOpt,
               out: Annotated[Path, typer.Option("--out", help="Archive to write (.tar.gz).")],
               verify: Annotated[bool, typer.Option("--verify", help="Restore into a scratch workspace, rebuild "
                                                    "the graph and compare it with this one.")] = False) -> None:
    """Back up everything the graph is rebuilt from: lakehouse, human decisions, model, mappings."""
    from campus_kg.backup import backup, verify as verify_backup

    with _exclusive(workspace, "backup") as ws:
        manifest = backup(_settings(workspace), ws, out)
    console.print(f"backup {out}: {len(manifest['files'])} files; entities "
                  + ", ".join(f"{k} {v}" for k, v in manifest["entities"].items()))
    if verify:
        result = verify_backup(_settings(workspace), ws, out)
        console.print(f"verify 校验: entities live {result.entities_live} / restored {result.entities_restored}; "
                      f"graph checksum live {result.checksum_live[:16]} / restored {result.checksum_restored[:16]}")
        if not result.ok:
            console.print("[red]the restored workspace does not rebuild the same graph")
            raise typer.Exit(1)
        console.print("[green]verified: the backup restores and rebuilds the same graph")


@app.command("restore")
def restore_cmd(workspace: WorkspaceOpt,
                archive: Annotated[Path, typer.Option("--from", exists=True, dir_okay=False, help="Backup archive.")],
                force: Annotated[bool, typer.Option("--force", help="Overwrite a workspace that has data.")] = False,
                ) -> None:
    """Restore a backup into a workspace (then `campus-kg build-graph` to serve it)."""
    from campus_kg.backup import RestoreError, restore

    try:
        with _exclusive(workspace, "restore") as ws:
            manifest = restore(archive, ws, force)
    except RestoreError as exc:
        console.print(f"[red]{exc}")
        raise typer.Exit(1) from None
    console.print(f"restored {len(manifest['files'])} files from {archive} (made {manifest['created_at']}); "
                  f"run `campus-kg build-graph --workspace {workspace}` to serve it")


@export_app.command("rdf")
def export_rdf_cmd(workspace: WorkspaceOpt,
                   out: Annotated[Path, typer.Option("--out", help="File to write.")],
                   fmt: Annotated[str, typer.Option("--format", help="turtle or json-ld.")] = "turtle",
                   include_sensitive: Annotated[bool, typer.Option(
                       "--include-sensitive", help="Also export sensitive properties (ID numbers, bank accounts).")]
                   = False) -> None:
    """Master entities with PROV-O provenance (source records, ingest runs, source systems) as RDF."""
    if fmt not in ("turtle", "json-ld"):
        console.print("[red]--format must be turtle or json-ld")
        raise typer.Exit(2)
    n = pipeline.export_rdf(Workspace.at(workspace), out, fmt, include_sensitive)
    console.print(f"{n} triples written to {out}")


@app.command()
def serve(workspace: WorkspaceOpt,
          host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
          port: Annotated[int, typer.Option("--port")] = 8000,
          workers: Annotated[int, typer.Option("--workers", min=1, max=64,
                                               help="Server processes; each opens the graph read-only.")] = 1,
          access_log: Annotated[bool, typer.Option("--access-log/--no-access-log",
                                                   help="uvicorn's per-request log lines (the personal-data "
                                                        "access log is kept either way).")] = True) -> None:
    """Serve the graph API over HTTP."""
    import os

    import uvicorn

    from graph_api.app import create_app
    from graph_api.http_protocol import HTTP_PROTOCOL
    from graph_api.proxies import uvicorn_proxy_options

    settings = _settings(workspace)
    proxies = uvicorn_proxy_options(settings)  # X-Forwarded-For only from trusted_proxies
    if workers == 1:
        uvicorn.run(create_app(settings), host=host, port=port, log_level="info", access_log=access_log,
                    http=HTTP_PROTOCOL, **proxies)
        return
    # Worker processes build their own app from the environment: hand them this workspace.
    os.environ["CAMPUS_KG_WORKSPACE"] = str(Workspace.at(workspace).root)
    uvicorn.run("graph_api.app:create_app", factory=True, host=host, port=port, workers=workers,
                log_level="info", access_log=access_log, http=HTTP_PROTOCOL, **proxies)


@app.command()
def demo(persons: Annotated[int, typer.Option("--persons", min=10)] = 5000,
         workspace: Annotated[Path, typer.Option("--workspace")] = Path("workspace/demo")) -> None:
    """Generate a synthetic university, run the whole pipeline on it and print a summary."""
    from ingest.lakehouse import Lakehouse
    from ingest.synthetic import generate as gen
    from resolution.evaluate import pairwise

    started = time.monotonic()
    ws = Workspace.at(workspace)
    sources = ws.root / "sources"
    with console.status(f"generating a synthetic university of {persons} persons…"):
        generated = gen(sources, persons=persons, seed=42)
    with _exclusive(workspace, "demo"):
        ingested = pipeline.run_ingest(generated.mapping_path, ws, console)
        resolved = pipeline.run_resolve(ws, console, _settings(workspace))
        built = pipeline.run_build(_settings(workspace), ws, console)
    with Lakehouse(ws.lakehouse, read_only=True) as lake:
        score = pairwise(lake, generated.truth_path, "Person")
    links = pipeline.export_links(ws, ws.root / "links.csv")
    report = pipeline.run_quality(_settings(workspace), ws, console, ws.root / "quality.html", ws.root / "quality.json")
    datasets = pipeline.run_catalogue(ws, ws.root / "catalogue.ttl")
    state = StateStore(_settings(workspace).state_database_url(), _settings(workspace).token_secret.get_secret_value())
    person_id = next(iter(_sample_person(ws)), None)
    _, token = state.add_user("demo-steward", "steward")

    summary = Table(title="campus-kg demo 演示结果", show_header=False)
    summary.add_row("records read 读取记录", str(ingested.read))
    summary.add_row("quarantined 隔离记录", str(sum(s.quarantined for s in ingested.sources)))
    summary.add_row("master entities 主数据实体", ", ".join(f"{k} {v}" for k, v in resolved.masters.items()))
    summary.add_row("graph build 图谱版本", built.build_id)
    summary.add_row("person pairwise precision 精确率", f"{score.precision:.4f}")
    summary.add_row("person pairwise recall 召回率", f"{score.recall:.4f}")
    summary.add_row("person pairwise F1", f"{score.f1:.4f}")
    summary.add_row("links 链接文件", f"{ws.root / 'links.csv'} ({links} rows)")
    lights = [d["light"] for d in report["departments"]]
    summary.add_row("quality 数据质量", f"{ws.root / 'quality.html'} (" + ", ".join(
        f"{lights.count(c)} {c}" for c in ("green", "yellow", "red")) + " departments)")
    summary.add_row("catalogue 资源目录", f"{ws.root / 'catalogue.ttl'} ({datasets} datasets, DCAT)")
    summary.add_row("time 用时", f"{time.monotonic() - started:.1f} s")
    console.print(summary)
    console.print("Start the API 启动接口:\n"
                  f"  .venv/bin/campus-kg serve --workspace {workspace}\n"
                  "Then read a person's record 查询个人记录:\n"
                  f"  curl -H 'Authorization: Bearer {token}' http://127.0.0.1:8000/persons/{person_id}")


def _sample_person(ws: Workspace) -> list[str]:
    from ingest.lakehouse import Lakehouse

    with Lakehouse(ws.lakehouse, read_only=True) as lake:
        rows = lake.con.execute("""SELECT master_id FROM res_link WHERE entity_type = 'Person'
            GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1""").fetchall()
    return [r[0] for r in rows]


@users_app.command("add")
def users_add(name: Annotated[str, typer.Option("--name")],
              role: Annotated[str, typer.Option("--role", help=f"One of: {', '.join(ROLES)}.")],
              workspace: WorkspaceOpt,
              person: Annotated[str | None, typer.Option("--person", help="Master person ID (role self).")] = None,
              expires_days: Annotated[int | None, typer.Option(
                  "--expires-days", min=0, max=36_500,
                  help="Days until the token expires (default: setting token_ttl_days); 0 = never, dev only.")]
              = None,
              ) -> None:
    """Create an API token. The token is printed once, on the last line."""
    s = _settings(workspace)
    if expires_days == 0 and s.mode == "prod":
        raise typer.BadParameter("--expires-days 0 (a token that never expires) is refused in prod")
    ws = Workspace.at(workspace)
    if person is not None and ws.lakehouse.exists():
        from ingest.lakehouse import Lakehouse

        with Lakehouse(ws.lakehouse, read_only=True) as lake:
            known = lake.has_table("res_master_registry") and lake.con.execute(
                "SELECT count(*) FROM res_master_registry WHERE master_id = ? AND entity_type = 'Person'",
                [person]).fetchall()[0][0]
        if not known:
            raise typer.BadParameter(f"no master person {person} in {ws.root} (run `campus-kg resolve` first?)")
    try:
        state = StateStore(s.state_database_url(), s.token_secret.get_secret_value(), s.token_ttl_days)
        token_id, token = state.add_user(name, role, person, expires_days)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    expires = next(u["expires_at"] for u in state.list_users() if u["token_id"] == token_id)
    until = f"{expires:%Y-%m-%d %H:%M} UTC" if expires else "never 永不过期"
    console.print(f"token {token_id} for {name} ({role}), expires {until}; store it now, it is not shown again:")
    print(token)


@users_app.command("list")
def users_list(workspace: WorkspaceOpt) -> None:
    """List tokens (never their secrets), with when they expire (UTC)."""
    import datetime as dt

    s = _settings(workspace)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    table = Table("token_id", "name", "role", "person", "created", "expires 到期", "revoked")
    for u in StateStore(s.state_database_url(), s.token_secret.get_secret_value(), s.token_ttl_days).list_users():
        expires = u["expires_at"]
        shown = "never 永不" if expires is None else f"{expires:%Y-%m-%d %H:%M}" + (
            " (expired 已过期)" if expires <= now else "")
        table.add_row(u["token_id"], u["name"], u["role"], u["person_id"] or "", f"{u['created_at']:%Y-%m-%d %H:%M}",
                      shown, str(u["revoked_at"] or ""))
    console.print(table)


@users_app.command("revoke")
def users_revoke(token_id: Annotated[str, typer.Argument()], workspace: WorkspaceOpt) -> None:
    """Revoke a token by its ID."""
    s = _settings(workspace)
    if not StateStore(s.state_database_url(), s.token_secret.get_secret_value()).revoke(token_id):
        raise typer.BadParameter(f"no active token {token_id}")
    console.print(f"token {token_id} revoked")
