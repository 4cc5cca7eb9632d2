"""The Spark resolution engine gives the DuckDB engine's answers (issue 15).

A small generated university (generator defaults, 300 persons; 5,000, the generator's default
size, in `make test-all`) is resolved twice through the pipeline, once per engine, and the results
are compared: master entities (pairwise agreement, and identical clusters
for the records linked by identifiers), the pairs the model scored, and the person mentions. Spark
runs for real on `local[2]` (Java 17 and pyspark are part of `make test`).
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import pytest
from rich.console import Console

from campus_kg import pipeline
from campus_kg.settings import Settings
from campus_kg.workspace import Workspace
from ingest.lakehouse import Lakehouse
from ingest.synthetic import generate
from resolution.engines import JAVA_PACKAGE, EngineUnavailable, SparkEngine

# Small enough for Splink's many short Spark jobs to finish in about a minute on 2 shared cores,
# large enough for typos, namesakes, mentions and review items.
PERSONS = 300


@dataclass
class Outcome:
    """One engine's resolution of the workspace."""

    seconds: float
    entity_of: dict[str, frozenset[str]]  # Person record -> the records of its master entity
    rule: dict[str, str]  # Person record -> the rule that linked it
    pair_scores: dict[tuple[str, str], float]  # res_pair_score
    mentions: dict[tuple[str, int], frozenset[str] | str]  # mention -> its entity's records, or its rule
    review: set[str]  # res_review item IDs
    dialect: str  # of the saved model

    @classmethod
    def read(cls, ws: Workspace, seconds: float) -> Outcome:
        with Lakehouse(ws.lakehouse, read_only=True) as lake:
            links = lake.con.execute("SELECT member_id, master_id, rule FROM res_link "
                                     "WHERE entity_type = 'Person'").fetchall()
            scores = lake.con.execute("SELECT record_a, record_b, match_probability FROM res_pair_score").fetchall()
            mentions = lake.con.execute("SELECT record_id, position, master_id, rule FROM res_mention").fetchall()
            review = {r[0] for r in lake.con.execute("SELECT item_id FROM res_review").fetchall()}
        members = defaultdict(set)
        for record, master, _ in links:
            members[master].add(record)
        entity = {m: frozenset(rs) for m, rs in members.items()}
        model = json.loads(ws.person_model.read_text(encoding="utf-8"))
        return cls(seconds, {r: entity[m] for r, m, _ in links}, {r: rule for r, _, rule in links},
                   {tuple(sorted((a, b))): p for a, b, p in scores},
                   {(r, pos): entity[m] if m in entity else rule for r, pos, m, rule in mentions},
                   review, model["sql_dialect"])


@dataclass
class Resolved:
    duckdb: Outcome
    spark: Outcome
    workspace: Path  # a copy after both runs, for the command-line test (which leaves a failed resolve)


def _resolve_both(tmp: Path, persons: int | None = None) -> Resolved:
    """A generated university (generator defaults; `persons` or the generator's own number), ingested
    once and resolved by each engine in turn."""
    generated = generate(tmp / "sources", seed=7, **({"persons": persons} if persons else {}))
    ws = Workspace.at(tmp / "ws")
    settings = Settings(workspace=ws.root)
    pipeline.run_ingest(generated.mapping_path, ws, Console(quiet=True))
    out = {}
    for engine in ("duckdb", "spark"):  # the same workspace resolved again: master IDs stay, clusters are rebuilt
        start = time.perf_counter()
        pipeline.run_resolve(ws, Console(quiet=True), settings.model_copy(update={"resolution_engine": engine}))
        out[engine] = Outcome.read(ws, time.perf_counter() - start)
    print(f"\nresolve at {persons or 'the generator default of'} persons: "
          + ", ".join(f"{e} {o.seconds:.1f} s" for e, o in out.items()))
    shutil.copytree(ws.root, tmp / "ws-copy")
    return Resolved(out["duckdb"], out["spark"], tmp / "ws-copy")


@pytest.fixture(scope="module")
def engines(tmp_path_factory) -> Resolved:
    return _resolve_both(tmp_path_factory.mktemp("engines"), PERSONS)


def _pairs(entity_of: dict[str, frozenset[str]]) -> set[tuple[str, str]]:
    return {pair for entity in set(entity_of.values()) for pair in combinations(sorted(entity), 2)}


def test_both_engines_really_ran(engines):
    assert engines.duckdb.dialect == "duckdb"
    assert engines.spark.dialect == "spark"


def _assert_same_entities(duck: Outcome, other: Outcome, min_persons: int) -> None:
    """The issue's bar: pairwise agreement of master entities >= 99.9 %, and identical entities for
    the records linked by identifiers."""
    assert duck.entity_of.keys() == other.entity_of.keys()
    together_duck, together_other = _pairs(duck.entity_of), _pairs(other.entity_of)
    n = len(duck.entity_of)
    disagree = len(together_duck ^ together_other)
    # over every pair of records (the measure) and, stricter, over the pairs either engine joins
    agreement_all = 1 - disagree / (n * (n - 1) // 2)
    agreement_joined = 1 - disagree / len(together_duck | together_other)
    print(f"\n{n} person records, {len(together_duck)} / {len(together_other)} pairs in one entity "
          f"(duckdb / other); agreement {agreement_all:.6f} over all pairs, {agreement_joined:.6f} over joined pairs")
    assert len(together_duck) > n / 2  # persons with several records: the comparison is not empty
    assert agreement_all >= 0.999
    assert agreement_joined >= 0.999, sorted(together_duck ^ together_other)[:10]
    by_identifier = {r for r, rule in duck.rule.items() if rule.startswith("exact:")}
    assert by_identifier == {r for r, rule in other.rule.items() if rule.startswith("exact:")}
    assert len(by_identifier) > min_persons
    differ = [r for r in by_identifier if duck.entity_of[r] & by_identifier != other.entity_of[r] & by_identifier]
    assert not differ, differ[:10]


def test_master_entities_agree(engines):
    _assert_same_entities(engines.duckdb, engines.spark, PERSONS)


@pytest.mark.slow
def test_master_entities_agree_at_the_generators_default_size(tmp_path):
    """The same bar on a university of the generator's default size (5,000 persons)."""
    default = inspect.signature(generate).parameters["persons"].default
    resolved = _resolve_both(tmp_path, None)
    _assert_same_entities(resolved.duckdb, resolved.spark, default)


def test_the_model_scores_the_same_pairs_alike(engines):
    """Same blocking, same comparisons: the same candidate pairs; training on each engine gives
    near-identical probabilities (u is sampled in chunks on DuckDB, in one pass on Spark)."""
    duck, spark = engines.duckdb.pair_scores, engines.spark.pair_scores
    common = duck.keys() & spark.keys()
    close = sum(1 for pair in common if abs(duck[pair] - spark[pair]) < 0.05)
    print(f"\nscored pairs (p >= 0.01): duckdb {len(duck)}, spark {len(spark)}, both {len(common)}, "
          f"within 0.05: {close}, largest difference {max(abs(duck[p] - spark[p]) for p in common):.4f}")
    assert duck and len(common) >= 0.99 * len(duck.keys() | spark.keys())
    assert close >= 0.99 * len(common)


def test_the_review_queue_asks_the_same_questions(engines):
    duck, spark = engines.duckdb.review, engines.spark.review
    assert duck and len(duck & spark) >= 0.95 * len(duck | spark), (duck ^ spark)


def test_mentions_link_to_the_same_entities(engines):
    duck, spark = engines.duckdb.mentions, engines.spark.mentions
    assert duck and duck.keys() == spark.keys()
    same = sum(1 for m in duck if duck[m] == spark[m])
    assert same >= 0.99 * len(duck), [(m, duck[m], spark[m]) for m in duck if duck[m] != spark[m]][:5]


def test_without_java_the_engine_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))  # a Java home without bin/java
    with pytest.raises(EngineUnavailable, match=JAVA_PACKAGE):
        SparkEngine("local[1]")


def test_resolve_command_chooses_the_engine_and_fails_clearly_without_java(engines, tmp_path):
    cli = [str(Path(sys.executable).with_name("campus-kg")), "resolve", "--workspace", str(engines.workspace)]
    env = {**os.environ, "JAVA_HOME": str(tmp_path), "COLUMNS": "200"}
    bad = subprocess.run([*cli, "--engine", "hadoop"], capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2 and "duckdb, spark" in bad.stdout + bad.stderr
    run = subprocess.run([*cli, "--engine", "spark", "--spark-master", "local[1]"], capture_output=True, text=True,
                         env=env, timeout=300)
    assert run.returncode == 1, run.stdout + run.stderr
    assert JAVA_PACKAGE in run.stdout, run.stdout + run.stderr


@pytest.mark.slow
def test_held_back_pairs_are_scored_alike_on_spark(tmp_path):
    """The pairs the identifier rule holds back (a shared staff number, names that disagree) are
    scored without blocking (`PersonModel.score_pairs`): on Spark the two sides go in as Parquet and
    the scores come back the same way. The generated university has none, so the hand-made exports
    of tests/test_identifier_typos.py."""
    from ingest.lakehouse import Lakehouse
    from resolution.clusters import ConstrainedUnionFind
    from resolution.engines import DuckDBEngine
    from resolution.exact import add_records, finish, identifier_rows, link_identifiers
    from resolution.held_back import score_held_back
    from resolution.person_model import PERSON_INPUT_SQL, train
    from tests.samples import write_csv
    from tests.test_identifier_typos import CARD, HR, MAPPING

    write_csv(tmp_path, "hr", ["key", "staff_no", "name", "birth_date", "id_number", "email"], HR)
    write_csv(tmp_path, "card", ["key", "name", "staff_no", "email"], CARD)
    (tmp_path / "mapping.yaml").write_text(MAPPING, encoding="utf-8")
    ws = Workspace.at(tmp_path / "ws")
    pipeline.run_ingest(tmp_path / "mapping.yaml", ws, Console(quiet=True))
    with Lakehouse(ws.lakehouse, read_only=True) as lake:
        rows = identifier_rows(lake.con)
        records = lake.con.sql(PERSON_INPUT_SQL).to_arrow_table()
    uf, rule = ConstrainedUnionFind(), {}
    add_records(uf, rows)
    link_identifiers(uf, rows, rule)
    held_back = finish(uf, rule).held_back
    assert len(held_back) >= 2
    scored = {}
    for engine in (DuckDBEngine(), SparkEngine("local[2]")):
        model = train(records, engine=engine)
        try:
            scored[engine.name] = {(p["unique_id_l"], p["unique_id_r"]): p for p in
                                   score_held_back(model, records, held_back)}
        finally:
            model.close()
    assert scored["duckdb"].keys() == scored["spark"].keys() == {tuple(sorted(p[:2])) for p in held_back}
    for pair, p in scored["duckdb"].items():
        q = scored["spark"][pair]
        assert abs(p["match_probability"] - q["match_probability"]) < 0.05, (p, q)
        assert (p["mw_name"] < 0) == (q["mw_name"] < 0), (p, q)


@pytest.fixture(scope="module")
def connect_url(tmp_path_factory):
    """A Spark Connect server on a loopback port, started the way a cluster's would be
    (`spark-submit --class …SparkConnectServer`, Splink's jar on its classpath), from the pyspark
    installation: the resolve then talks to it over gRPC only, with no JVM of its own."""
    import socket

    import pyspark
    from splink.backends.spark import similarity_jar_location

    home = Path(pyspark.__file__).parent
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("spark-connect") / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(home / "bin" / "spark-submit"), "--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
             "--master", "local[2]", "--driver-memory", "1g", "--jars", similarity_jar_location(),
             "--conf", f"spark.connect.grpc.binding.port={port}",
             "--conf", "spark.connect.grpc.binding.address=127.0.0.1",
             "--conf", "spark.ui.enabled=false", "--conf", "spark.sql.shuffle.partitions=4",
             "--conf", "spark.sql.adaptive.enabled=false"],
            env={**os.environ, "SPARK_HOME": str(home)}, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert server.poll() is None, log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "Spark Connect did not open its port:\n" + log.read_text()[-3000:]
            time.sleep(1)
        yield f"sc://127.0.0.1:{port}", log
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.mark.slow
def test_spark_connect_gives_the_duckdb_answers(engines, connect_url):
    """`--spark-master sc://host:port`: Splink's SparkAPI on a Spark Connect session (no SparkContext,
    intermediate tables persisted rather than checkpointed) resolves the same university to the
    same master entities as DuckDB."""
    url, server_log = connect_url
    ws = Workspace.at(engines.workspace)
    settings = Settings(workspace=ws.root, resolution_engine="spark", spark_master=url)
    jobs_before = server_log.read_text(errors="replace").count("finished in")
    start = time.perf_counter()
    pipeline.run_resolve(ws, Console(quiet=True), settings)
    connect = Outcome.read(ws, time.perf_counter() - start)
    jobs = server_log.read_text(errors="replace").count("finished in") - jobs_before
    print(f"\nresolve on Spark Connect: {connect.seconds:.1f} s, {jobs} Spark jobs on the server")
    assert jobs > 50  # the model was trained and scored on the server, not in a session of this process
    assert connect.dialect == "spark"
    _assert_same_entities(engines.duckdb, connect, PERSONS)
