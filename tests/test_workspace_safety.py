"""One writer per workspace, runs that die part way, a pointer that travels with the workspace, a
/health that checks the graph, and steward decisions that survive a restart.

Everything that can race or crash runs through the real CLI in subprocesses (so `kill -9` is real)
on a small generated university.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from campus_kg.locking import workspace_lock
from campus_kg.settings import Settings
from campus_kg.workspace import Workspace
from graph_api.app import create_app
from graph_api.served_graph import ServedGraph
from ingest.lakehouse import Lakehouse
from tests.http_server import serve

CAMPUS_KG = str(Path(sys.executable).parent / "campus-kg")
# Rich wraps at 80 columns when not on a terminal; the messages are checked whole.
ENV = {**os.environ, "COLUMNS": "300"}
BUSY = "holds the workspace"


def cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([CAMPUS_KG, *args], capture_output=True, text=True, env=ENV, timeout=timeout)


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([CAMPUS_KG, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV)


@dataclass
class University:
    sources: Path
    mapping: Path
    base: Path  # a workspace after one `campus-kg run`: copy it, never change it


@pytest.fixture(scope="module")
def university(tmp_path_factory) -> University:
    tmp = tmp_path_factory.mktemp("safety")
    assert cli("generate", "--out", str(tmp / "sources"), "--persons", "150").returncode == 0
    mapping = tmp / "sources" / "mapping.yaml"
    done = cli("run", "--mapping", str(mapping), "--workspace", str(tmp / "base"))
    assert done.returncode == 0, done.stdout + done.stderr
    return University(tmp / "sources", mapping, tmp / "base")


def copy_of(university: University, to: Path) -> Workspace:
    shutil.copytree(university.base, to)
    return Workspace.at(to)


def runs(ws: Workspace) -> list[tuple[str, str, str | None]]:
    with Lakehouse(ws.lakehouse, read_only=True) as lake:
        return lake.con.execute("SELECT run_id, status, problem FROM ingest_run ORDER BY started_at").fetchall()


def a_person(ws: Workspace) -> str:
    with Lakehouse(ws.lakehouse, read_only=True) as lake:
        return lake.con.execute("SELECT min(master_id) FROM res_link WHERE entity_type = 'Person'").fetchall()[0][0]


def holder_pid(ws: Workspace) -> int | None:
    try:
        return json.loads(ws.root.joinpath(".lock").read_text(encoding="utf-8") or "{}").get("pid")
    except (OSError, ValueError):
        return None


# ---- the workspace lock ----------------------------------------------------------------------
def test_a_second_run_fails_at_once_naming_the_holder_and_kill_9_frees_the_workspace(university, tmp_path):
    ws = copy_of(university, tmp_path / "ws")
    holder = subprocess.Popen([sys.executable, "-c", f"""
import time
from campus_kg.locking import workspace_lock
with workspace_lock({str(ws.root)!r}, "build-graph"):
    print("held", flush=True)
    time.sleep(600)
"""], stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert holder.stdout.readline().strip() == "held"
        archive = tmp_path / "backup.tar.gz"
        archive.write_bytes(b"never read: the lock is refused first")
        commands = (["ingest", "--mapping", str(university.mapping)], ["resolve"], ["build-graph"],
                    ["run", "--mapping", str(university.mapping)], ["restore", "--from", str(archive)])
        started = time.monotonic()
        refused = [start(*command, "--workspace", str(ws.root)) for command in commands]
        for command, proc in zip(commands, refused, strict=True):
            out = proc.communicate(timeout=120)[0]
            assert proc.returncode == 1, (command, out)
            assert BUSY in out and f"pid {holder.pid}" in out and "`build-graph`" in out, out
            assert "Traceback" not in out
        assert time.monotonic() - started < 60  # each failed at once rather than waiting
    finally:
        holder.kill()  # SIGKILL: no finally, no unlock; the kernel drops the flock with the process
        holder.wait()
    assert holder.returncode == -signal.SIGKILL
    built = cli("build-graph", "--workspace", str(ws.root), "--mode", "full")
    assert built.returncode == 0, built.stdout + built.stderr
    assert Path(ws.read_current_graph()["path"]).exists()


def test_the_lock_waits_up_to_the_setting_and_is_reentrant_in_one_thread(tmp_path):
    from campus_kg.locking import WorkspaceBusy

    with workspace_lock(tmp_path, "outer"):
        with workspace_lock(tmp_path, "inner"):  # `run` holds it and its steps take it again
            pass
        failed: list[BaseException] = []

        def other_thread():
            try:
                with workspace_lock(tmp_path, "other", timeout_s=0.3):
                    pass
            except WorkspaceBusy as exc:
                failed.append(exc)

        started = time.monotonic()
        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
        assert failed and "`outer`" in str(failed[0]) and f"pid {os.getpid()}" in str(failed[0])
        assert 0.3 <= time.monotonic() - started < 5
    with workspace_lock(tmp_path, "after", timeout_s=0):  # released on exit
        pass


def test_two_builds_started_together_one_refused_and_the_served_graph_answers_throughout(university, tmp_path):
    ws = copy_of(university, tmp_path / "ws")
    settings = Settings(workspace=ws.root)
    app = create_app(settings)
    person = a_person(ws)
    answers: list[int] = []
    with serve(app) as url:
        _, token = app.state.state_store.add_user("auditor", "auditor")
        headers = {"Authorization": f"Bearer {token}"}
        builds = [start("build-graph", "--workspace", str(ws.root), "--mode", "full") for _ in range(2)]
        while any(b.poll() is None for b in builds):
            answers.append(httpx.get(f"{url}/persons/{person}", headers=headers, timeout=30).status_code)
            answers.append(httpx.get(f"{url}/health", timeout=30).status_code)
            time.sleep(0.05)
        outputs = [b.communicate()[0] for b in builds]
        codes = sorted(b.returncode for b in builds)
        assert codes == [0, 1], outputs
        refused = outputs[[b.returncode for b in builds].index(1)]
        assert BUSY in refused and "`build-graph`" in refused
        pointer = ws.read_current_graph()
        assert Path(pointer["path"]).exists() and pointer["build_id"] != university_build(university)
        assert httpx.get(f"{url}/health").json() == {"status": "ok", "graph_build": pointer["build_id"]}
        assert httpx.get(f"{url}/persons/{person}", headers=headers).status_code == 200
    assert answers and set(answers) == {200}, answers


def university_build(university: University) -> str:
    return Workspace.at(university.base).read_current_graph()["build_id"]


# ---- runs that stop part way -----------------------------------------------------------------
def _ingest_until_the_lakehouse_grows(ws: Workspace, mapping: Path, grow: int, sig: int) -> int:
    """Starts `campus-kg ingest`, waits until it holds the lock and its write-ahead log has grown by
    `grow` bytes (sources are being committed), then sends `sig`. Returns the exit code."""
    wal = ws.lakehouse.with_suffix(".duckdb.wal")

    def size() -> int:
        return wal.stat().st_size if wal.exists() else 0

    proc = subprocess.Popen([CAMPUS_KG, "ingest", "--mapping", str(mapping), "--workspace", str(ws.root)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    deadline = time.monotonic() + 120
    while holder_pid(ws) != proc.pid and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.002)
    before = size()
    while size() < before + grow and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.002)
    if proc.poll() is None:
        proc.send_signal(sig)
    return proc.wait(timeout=120)


@pytest.mark.slow  # three ingests stopped part way, then a whole run: ~40 s on two busy cores
def test_ingests_killed_part_way_are_marked_failed_and_the_next_run_builds(university, tmp_path):
    ws = Workspace.at(tmp_path / "ws")  # empty: every record a killed run commits is new in that run
    stopped = []
    for grow, sig in ((150_000, signal.SIGKILL), (400_000, signal.SIGINT), (800_000, signal.SIGKILL)):
        code = _ingest_until_the_lakehouse_grows(ws, university.mapping, grow, sig)
        stopped.append(code)
        if code == -signal.SIGKILL:
            continue
        # Ctrl-C: the run records its own failure on the way out (or had finished), nothing stays running
        last = runs(ws)[-1]
        assert last[1] != "running", last
        if last[1] == "failed":
            assert "Interrupt" in last[2], last
    assert -signal.SIGKILL in stopped, stopped

    done = cli("run", "--mapping", str(university.mapping), "--workspace", str(ws.root))
    assert done.returncode == 0, done.stdout + done.stderr
    history = runs(ws)
    assert not [r for r in history if r[1] == "running"], history
    assert history[-1][1] == "completed"
    interrupted = [r for r in history if r[2] and r[2].startswith("interrupted")]
    assert interrupted and all(r[1] == "failed" for r in interrupted)
    with Lakehouse(ws.lakehouse, read_only=True) as lake:
        assert lake.latest_run() == history[-1][0]  # a failed run is never "the latest run"
        finished = dict(lake.con.execute("SELECT run_id, finished_at IS NOT NULL FROM ingest_run").fetchall())
        records, by_failed_runs = lake.con.execute("""SELECT count(*), count(*) FILTER (WHERE r.status = 'failed')
            FROM dwd_record d JOIN ingest_run r ON r.run_id = d.version_run""").fetchall()[0]
    assert all(finished.values())
    # The case that broke every later build: records whose current version a killed run committed.
    assert by_failed_runs > 0
    graph = ServedGraph(Settings(workspace=ws.root), ws)
    try:
        loaded = graph.query("MATCH (r:SourceRecord)-[:LOADED_IN]->(:IngestRun) RETURN count(r) AS n")[0]["n"]
    finally:
        graph.close()
    assert loaded == records


def test_a_source_that_cannot_be_read_is_held_back_and_the_command_fails(university, tmp_path):
    ws = copy_of(university, tmp_path / "ws")
    sources = tmp_path / "sources"
    shutil.copytree(university.sources, sources)
    mapping = sources / "mapping.yaml"
    # An I/O error reading the export (a failing disk or network share): /proc/self/mem refuses reads.
    text = mapping.read_text(encoding="utf-8").replace("version: 1\n", "version: 1\nallow_paths_outside: true\n", 1)
    mapping.write_text(text, encoding="utf-8")
    export = next((sources / "hr").glob("*.csv"))
    export.unlink()
    export.symlink_to("/proc/self/mem")
    with Lakehouse(ws.lakehouse, read_only=True) as lake:
        before = lake.con.execute("SELECT count(*) FROM dwd_record WHERE source = 'hr_staff'").fetchall()[0][0]

    done = cli("run", "--mapping", str(mapping), "--workspace", str(ws.root), "--force")
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "hr_staff held back" in out and "Traceback" not in out
    run_id, status, problem = runs(ws)[-1]
    assert status == "completed_with_errors" and "hr_staff" in problem
    with Lakehouse(ws.lakehouse, read_only=True) as lake:
        assert lake.latest_run() == run_id
        kept = lake.con.execute("SELECT count(*) FROM dwd_record WHERE source = 'hr_staff'").fetchall()[0][0]
        others = lake.con.execute("SELECT count(*) FROM source_stats WHERE run_id = ? AND problem IS NULL",
                                  [run_id]).fetchall()[0][0]
    assert kept == before > 0 and others > 0
    assert ws.read_current_graph()["run_id"] == run_id  # the other sources still went through to the graph


# ---- the pointer travels with the workspace ---------------------------------------------------
def test_a_copied_workspace_serves_its_own_graph_after_the_original_is_gone(university, tmp_path):
    original = copy_of(university, tmp_path / "original")
    stored = json.loads(original.current_graph_pointer.read_text(encoding="utf-8"))
    assert not Path(stored["path"]).is_absolute() and not Path(stored["snapshot"]).is_absolute()
    shutil.copytree(original.root, tmp_path / "copy")
    shutil.rmtree(original.root)
    ws = Workspace.at(tmp_path / "copy")
    pointer = ws.read_current_graph()
    assert Path(pointer["path"]).is_relative_to(ws.root) and Path(pointer["path"]).exists()
    _serves(ws)

    # a pointer written before paths were relative names the original's files: mapped into this copy
    old = dict(stored, path=str(tmp_path / "original" / stored["path"]),
               snapshot=str(tmp_path / "original" / stored["snapshot"]))
    ws.current_graph_pointer.write_text(json.dumps(old), encoding="utf-8")
    assert ws.read_current_graph()["path"] == str(ws.root / stored["path"])
    _serves(ws)
    built = cli("build-graph", "--workspace", str(ws.root))  # and the next build patches this copy's files
    assert built.returncode == 0, built.stdout + built.stderr
    assert Path(ws.read_current_graph()["path"]).is_relative_to(ws.root)
    _serves(ws)


def _serves(ws: Workspace) -> None:
    app = create_app(Settings(workspace=ws.root))
    person = a_person(ws)
    with serve(app) as url:
        _, token = app.state.state_store.add_user("auditor", "auditor")
        assert httpx.get(f"{url}/health").json()["status"] == "ok"
        r = httpx.get(f"{url}/persons/{person}", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text


def test_a_restored_backup_serves_the_graph_it_builds(university, tmp_path):
    ws = copy_of(university, tmp_path / "ws")
    ws.apply_pending.mkdir()  # a steward apply pass the graph still owes travels with the backup
    (ws.apply_pending / "20261201T000000-1-abcdef.json").write_text('{"reason": "review item 1: same"}')
    archive = tmp_path / "backup.tar.gz"
    assert cli("backup", "--workspace", str(ws.root), "--out", str(archive)).returncode == 0
    restored = Workspace.at(tmp_path / "restored")
    done = cli("restore", "--workspace", str(restored.root), "--from", str(archive))
    assert done.returncode == 0, done.stdout + done.stderr
    assert [m.name for m in restored.apply_pending.glob("*.json")] == ["20261201T000000-1-abcdef.json"]
    shutil.rmtree(restored.apply_pending)  # not a real decision: no pass for it when the server starts
    assert cli("build-graph", "--workspace", str(restored.root)).returncode == 0
    assert Path(restored.read_current_graph()["path"]).is_relative_to(restored.root)
    shutil.rmtree(ws.root)
    _serves(restored)


# ---- /health ------------------------------------------------------------------------------------
def test_health_is_503_when_the_served_graph_cannot_be_opened(university, tmp_path):
    ws = copy_of(university, tmp_path / "ws")
    app = create_app(Settings(workspace=ws.root))
    with serve(app) as url:
        ok = httpx.get(f"{url}/health")
        assert ok.status_code == 200 and ok.json()["status"] == "ok"
        pointer = ws.read_current_graph()

        # the pointer names a file that is gone
        ws.publish_graph({**pointer, "build_id": "build-gone", "path": str(ws.graph_dir / "ladybug" / "gone.lbdb")})
        gone = httpx.get(f"{url}/health")
        assert gone.status_code == 503, gone.text
        assert gone.json()["status"] == "unavailable" and "gone.lbdb" in gone.json()["detail"]

        # the pointer names a file that is not a graph
        junk = ws.graph_dir / "ladybug" / "junk.lbdb"
        junk.write_bytes(os.urandom(64 * 1024))
        ws.publish_graph({**pointer, "build_id": "build-junk", "path": str(junk)})
        broken = httpx.get(f"{url}/health")
        assert broken.status_code == 503 and broken.json()["graph_build"] == "build-junk", broken.text

        ws.publish_graph(pointer)  # back to the real build: ok at once (a new build is checked again)
        again = httpx.get(f"{url}/health")
        assert again.status_code == 200 and again.json() == {"status": "ok", "graph_build": pointer["build_id"]}


# ---- the steward apply pass survives a restart -------------------------------------------------
def test_a_pending_apply_pass_runs_when_the_server_starts_again(university, tmp_path):
    ws = copy_of(university, tmp_path / "ws")
    settings = Settings(workspace=ws.root)
    with Lakehouse(ws.lakehouse, read_only=True) as lake:
        record_a, record_b = lake.con.execute("""SELECT q.record_a, q.record_b FROM res_review q
            JOIN res_link la ON la.member_id = q.record_a JOIN res_link lb ON lb.member_id = q.record_b
            WHERE q.entity_type = 'Person' AND la.master_id <> lb.master_id
            ORDER BY q.match_probability DESC LIMIT 1""").fetchall()[0]
    assert _master_of(settings, ws, record_a) != _master_of(settings, ws, record_b)

    first = create_app(settings)
    first.state.state_store.add_decision("Person", record_a, record_b, "same", "steward", "one person")
    # A pipeline run holds the workspace, so the pass waits; then the server stops before it ran.
    with workspace_lock(ws.root, "run"):
        job = first.state.applier.request(f"decision on {record_a} / {record_b}")
        time.sleep(0.5)
        first.state.applier.close()
        status = first.state.applier.wait(job, timeout=30)
        assert status["completed"] >= job and status["last_build"] is None and BUSY in status["last_error"]
    assert _master_of(settings, ws, record_a) != _master_of(settings, ws, record_b)
    assert list((ws.root / "apply-pending").glob("*.json"))

    second = create_app(settings)  # the restart: the new server finds the pass it owes
    status = second.state.applier.wait(1, timeout=180)
    assert status["completed"] >= 1 and status["last_error"] is None and status["last_build"], status
    assert _master_of(settings, ws, record_a) == _master_of(settings, ws, record_b)
    assert not list((ws.root / "apply-pending").glob("*.json"))
    second.state.applier.close()


def _master_of(settings: Settings, ws: Workspace, record: str) -> str:
    graph = ServedGraph(settings, ws)
    try:
        return graph.query("MATCH (r:SourceRecord)-[:RESOLVED_TO]->(p:Person) WHERE r.id = $id RETURN p.id AS id",
                           {"id": record})[0]["id"]
    finally:
        graph.close()
