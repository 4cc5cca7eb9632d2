"""`campus-kg`: the command-line contract. Scripts depend on these names and options; keep them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from campus_kg import pipeline
from campus_kg.settings import Settings
from campus_kg.state import ROLES, StateStore
from campus_kg.workspace import Workspace

app = typer.Typer(help="campus-kg: 高校数据治理知识图谱 / university knowledge graph and entity resolution",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)
export_app = typer.Typer(help="Export data from a workspace.", no_args_is_help=True)
users_app = typer.Typer(help="API tokens and their roles.", no_args_is_help=True)
app.add_typer(export_app, name="export")
app.add_typer(users_app, name="users")
console = Console()

WorkspaceOpt = Annotated[Path, typer.Option("--workspace", help="Workspace directory (lakehouse, graph, state).")]
MappingOpt = Annotated[Path, typer.Option("--mapping", exists=True, dir_okay=False, help="Mapping file (YAML).")]
BackendOpt = Annotated[str | None, typer.Option("--backend", help="ladybug (default) or neo4j.")]
BuildModeOpt = Annotated[str, typer.Option(
    "--mode", help="auto: patch the served graph when the change is small, else rebuild; full; patch.")]


def _settings(workspace: Path | None = None) -> Settings:
    return Settings(workspace=workspace) if workspace is not None else Settings()


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
def ingest_cmd(mapping: MappingOpt, workspace: WorkspaceOpt) -> None:
    """Load the exports a mapping declares into the workspace's lakehouse."""
    pipeline.run_ingest(mapping, Workspace.at(workspace), console)


@app.command("quality")
def quality_cmd(workspace: WorkspaceOpt,
                html: Annotated[Path | None, typer.Option("--html", help="HTML report to write.")] = None,
                json_out: Annotated[Path | None, typer.Option("--json", help="JSON report to write.")] = None) -> None:
    """Data quality of the latest ingest run: six dimensions, a traffic light per department and table."""
    try:
        pipeline.run_quality(_settings(workspace), Workspace.at(workspace), console, html, json_out)
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
def resolve_cmd(workspace: WorkspaceOpt) -> None:
    """Resolve source records into master entities."""
    pipeline.run_resolve(Workspace.at(workspace), console, _settings(workspace))


@app.command("evaluate")
def evaluate_cmd(workspace: WorkspaceOpt,
                 truth: Annotated[Path, typer.Option("--truth", exists=True, dir_okay=False,
                                                     help="CSV: source,record_key,entity_type,entity_id.")],
                 mentions: Annotated[Path | None, typer.Option(
                     "--mentions", exists=True, dir_okay=False,
                     help="CSV: source,record_key,position,mention,entity_id (EXTERNAL for outsiders).")] = None,
                 ) -> None:
    """Pairwise and B-cubed precision / recall / F1 per entity type against a truth file."""
    pipeline.run_evaluate(Workspace.at(workspace), truth, mentions, console)


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
    from graph_api.build import BUILD_MODES, PatchRefused

    if mode not in BUILD_MODES:
        console.print(f"[red]--mode must be one of {', '.join(BUILD_MODES)}")
        raise typer.Exit(2)
    try:
        pipeline.run_build(_settings(workspace), Workspace.at(workspace), console, backend, mode)
    except PatchRefused as exc:
        console.print(f"[red]cannot patch[/]: {exc}")
        raise typer.Exit(1) from None


@app.command("run")
def run_cmd(mapping: MappingOpt, workspace: WorkspaceOpt, backend: BackendOpt = None,
            force: Annotated[bool, typer.Option("--force", help="Resolve and build even when nothing changed.")]
            = False) -> None:
    """ingest + resolve + build-graph (the last two only when the ingest changed something)."""
    ws = Workspace.at(workspace)
    ingested = pipeline.run_ingest(mapping, ws, console)
    if not ingested.changed and ws.current_graph_pointer.exists() and not force:
        console.print("nothing changed since the last run: the served graph is current (use --force to rebuild)")
        return
    pipeline.run_resolve(ws, console, _settings(workspace))
    pipeline.run_build(_settings(workspace), ws, console, backend)


@export_app.command("links")
def export_links_cmd(workspace: WorkspaceOpt,
                     out: Annotated[Path, typer.Option("--out", help="CSV file to write.")]) -> None:
    """One row per source record read: system,table,record_key,entity_type,master_id."""
    n = pipeline.export_links(Workspace.at(workspace), out)
    console.print(f"{n} rows written to {out}")


@app.command("backup")
def backup_cmd(workspace: WorkspaceOpt,
               out: Annotated[Path, typer.Option("--out", help="Archive to write (.tar.gz).")],
               verify: Annotated[bool, typer.Option("--verify", help="Restore into a scratch workspace, rebuild "
                                                    "the graph and compare it with this one.")] = False) -> None:
    """Back up everything the graph is rebuilt from: lakehouse, human decisions, model, mappings."""
    from campus_kg.backup import backup, verify as verify_backup

    ws = Workspace.at(workspace)
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
        manifest = restore(archive, Workspace.at(workspace), force)
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

    settings = _settings(workspace)
    if workers == 1:
        uvicorn.run(create_app(settings), host=host, port=port, log_level="info", access_log=access_log,
                    http=HTTP_PROTOCOL)
        return
    # Worker processes build their own app from the environment: hand them this workspace.
    os.environ["CAMPUS_KG_WORKSPACE"] = str(Workspace.at(workspace).root)
    uvicorn.run("graph_api.app:create_app", factory=True, host=host, port=port, workers=workers,
                log_level="info", access_log=access_log, http=HTTP_PROTOCOL)


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
              ) -> None:
    """Create an API token. The token is printed once, on the last line."""
    s = _settings(workspace)
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
        token_id, token = StateStore(s.state_database_url(), s.token_secret.get_secret_value()).add_user(
            name, role, person)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    console.print(f"token {token_id} for {name} ({role}); store it now, it is not shown again:")
    print(token)


@users_app.command("list")
def users_list(workspace: WorkspaceOpt) -> None:
    """List tokens (never their secrets)."""
    s = _settings(workspace)
    table = Table("token_id", "name", "role", "person", "created", "revoked")
    for u in StateStore(s.state_database_url(), s.token_secret.get_secret_value()).list_users():
        table.add_row(u["token_id"], u["name"], u["role"], u["person_id"] or "", str(u["created_at"]),
                      str(u["revoked_at"] or ""))
    console.print(table)


@users_app.command("revoke")
def users_revoke(token_id: Annotated[str, typer.Argument()], workspace: WorkspaceOpt) -> None:
    """Revoke a token by its ID."""
    s = _settings(workspace)
    if not StateStore(s.state_database_url(), s.token_secret.get_secret_value()).revoke(token_id):
        raise typer.BadParameter(f"no active token {token_id}")
    console.print(f"token {token_id} revoked")
