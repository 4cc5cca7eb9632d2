"""Where the Person model runs: Splink on DuckDB (one machine, the default) or on Spark (a cluster).

The model (resolution/person_model.py) is the same on both: the same comparisons, blocking,
training and thresholds. An engine supplies what differs:

- Splink's database API (`DuckDBAPI`, or `SparkAPI` over a SparkSession);
- the SQL of the model's custom comparison levels in its dialect (`ComparisonSql`: the one place
  that knows DuckDB from Spark SQL);
- `register`: records into the engine. Spark gets them as Parquet written by DuckDB
  (`COPY ... TO ... (FORMAT parquet)`): no CSV, no pandas;
- `to_duckdb`: the scored pairs back into DuckDB (`con`), as Parquet, so that everything after
  prediction — clustering, record-to-entity matching, mentions — runs unchanged over them.

Both engines keep a DuckDB connection (`con`) for the local work the model does anyway: counting
blocked pairs before choosing blockings, and the scored pairs after prediction.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import duckdb
import pyarrow as pa

ENGINES = ("duckdb", "spark")
JAVA_PACKAGE = "openjdk-17-jre-headless"
MIN_JAVA = 17  # Spark 4


class EngineUnavailable(RuntimeError):
    """The engine cannot start on this machine (no pyspark, no Java): the message says what to install."""


class ComparisonSql:
    """SQL for the custom comparison levels, in one dialect. Splink's dialect names the similarity
    functions (DuckDB's built-ins, or the Scala UDFs that ship with Splink for Spark: the same
    Jaro-Winkler and Damerau-Levenshtein values); the list and date expressions are ours."""

    def __init__(self, splink_dialect):
        self.splink_dialect = splink_dialect

    def jaro_winkler(self, left: str, right: str) -> str:
        return f"{self.splink_dialect.jaro_winkler_function_name}({left}, {right})"

    def damerau_levenshtein(self, left: str, right: str) -> str:
        return f"{self.splink_dialect.damerau_levenshtein_function_name}({left}, {right})"

    def within_one_typo(self, left: str, right: str) -> str:
        """Damerau-Levenshtein distance at most 1: one changed, missing, extra or swapped character."""
        return f"{self.damerau_levenshtein(left, right)} <= 1"

    def swapped(self, left: str, right: str) -> str:
        """Two neighbouring characters swapped, and nothing else (a transposition)."""
        return (f"{self.damerau_levenshtein(left, right)} = 1 AND "
                f"{self.splink_dialect.levenshtein_function_name}({left}, {right}) = 2")

    def lists_overlap(self, left: str, right: str) -> str:
        raise NotImplementedError

    def half_the_words(self, left: str, right: str) -> str:
        """The two texts share (as distinct words) at least half the words of the longer one."""
        raise NotImplementedError

    def year_month(self, date: str) -> str:
        raise NotImplementedError

    def date_digits(self, date: str) -> str:
        """`1981-03-02` as `19810302`, for a typo between two dates."""
        raise NotImplementedError


class DuckDBSql(ComparisonSql):
    def __init__(self):
        from splink.internals.dialects import DuckDBDialect

        super().__init__(DuckDBDialect())

    # Damerau-Levenshtein costs about 0.5 µs a pair and every pair that reaches a typo level would
    # pay it; DuckDB computes a function for every row of a CASE branch's batch, so the cheap test
    # that rules out most pairs (lengths, differing positions) guards it in a CASE of its own.
    @staticmethod
    def _differing(left: str, right: str) -> str:
        """How many positions differ, for texts of one length (NULL otherwise; 0 for two empty ones)."""
        return (f"(CASE WHEN length({left}) = length({right}) THEN "
                f"CASE WHEN length({left}) = 0 THEN 0 ELSE hamming({left}, {right}) END END)")

    def within_one_typo(self, left, right):
        return (f"(CASE WHEN coalesce({self._differing(left, right)} <= 2, abs(length({left}) - length({right})) = 1) "
                f"THEN {self.damerau_levenshtein(left, right)} <= 1 ELSE false END)")

    def swapped(self, left, right):
        return (f"(CASE WHEN {self._differing(left, right)} = 2 "
                f"THEN {self.damerau_levenshtein(left, right)} = 1 ELSE false END)")

    def lists_overlap(self, left, right):
        return f"array_has_any({left}, {right})"

    def half_the_words(self, left, right):
        def words(col):
            return f"string_split({col}, ' ')"

        return (f"len(list_intersect({words(left)}, {words(right)})) * 2 "
                f">= greatest(len({words(left)}), len({words(right)}))")

    def year_month(self, date):
        return f"strftime({date}, '%Y-%m')"

    def date_digits(self, date):
        return f"strftime({date}, '%Y%m%d')"


class SparkSql(ComparisonSql):
    def __init__(self):
        from splink.internals.dialects import SparkDialect

        super().__init__(SparkDialect())

    def lists_overlap(self, left, right):
        return f"arrays_overlap({left}, {right})"

    def half_the_words(self, left, right):
        def words(col):
            return f"split({col}, ' ')"

        # size(NULL) is -1 outside ANSI mode: say "no" for a missing address, as DuckDB's NULL does
        return (f"({left} IS NOT NULL AND {right} IS NOT NULL AND "
                f"size(array_intersect({words(left)}, {words(right)})) * 2 "
                f">= greatest(size({words(left)}), size({words(right)})))")

    def year_month(self, date):
        return f"date_format({date}, 'yyyy-MM')"

    def date_digits(self, date):
        return f"date_format({date}, 'yyyyMMdd')"


def _spill_folder(prefix: str) -> str:
    # Working files under the system's temp folder, not in whatever folder the command was started
    # from (gigabytes at 1.5 M records); the folder goes when the engine is closed.
    return tempfile.mkdtemp(prefix=prefix)


# The model's own DuckDB: at 1.3 M person records 1 GB against 2 GB cost 3 % more time and saved
# 0.5 GB of peak RSS (bench/RESULTS.md, Resolution: 1.5 M records); the setting resolution_memory_limit.
MODEL_MEMORY_LIMIT = "1GB"


class DuckDBEngine:
    """Splink on its own DuckDB database, bounded in memory and spilling to disk."""

    name = "duckdb"
    # Splink's default: the sampled pairs in 10 chunks, stopping once every level is seen 100 times
    u_sampling_chunks = 10

    def __init__(self, memory_limit: str = MODEL_MEMORY_LIMIT):
        from splink import DuckDBAPI

        self.sql = DuckDBSql()
        self.workdir = _spill_folder("campus-kg-splink-")
        self.con = duckdb.connect(config={"memory_limit": memory_limit, "preserve_insertion_order": False,
                                          "temp_directory": self.workdir})
        self.db_api = DuckDBAPI(connection=self.con)

    def register(self, table: pa.Table, name: str):
        return self.db_api.register(table, dataset_display_name=name)

    def to_duckdb(self, splink_df) -> str:
        return splink_df.physical_name  # already there

    def close(self) -> None:
        self.con.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


def require_java() -> str:
    """The java binary Spark will start (JAVA_HOME's, else the one on PATH), at least Java 17."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home, "bin", "java")) if home else shutil.which("java")
    if not java or not Path(java).is_file():
        where = f"JAVA_HOME={home} has no bin/java" if home else "no `java` on PATH"
        raise EngineUnavailable(f"the Spark engine needs Java {MIN_JAVA} 需要 Java {MIN_JAVA} ({where}): "
                                f"install the package {JAVA_PACKAGE} (apt-get install {JAVA_PACKAGE}) "
                                "or set JAVA_HOME")
    out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    found = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    major = int(found.group(1)) if found else 0
    major = int(found.group(2) or 0) if major == 1 and found else major  # 1.8 is Java 8
    if major < MIN_JAVA:
        raise EngineUnavailable(f"the Spark engine needs Java {MIN_JAVA} or newer, {java} is "
                                f"{found.group(0) if found else 'unreadable'}: install the package {JAVA_PACKAGE} "
                                "and point JAVA_HOME at it")
    return java


def spark_settings(master: str, driver_memory: str = "1g") -> dict[str, str]:
    """Spark configuration for a resolve. On `local[n]` it is sized for one small machine: a few
    shuffle partitions (Spark's 200 cost more than the work) and no adaptive re-planning (Splink
    runs hundreds of short queries). On a cluster, Spark's own configuration (spark-defaults.conf,
    `spark-submit --conf`) decides, and nothing is set here but Splink's jar."""
    from splink.backends.spark import similarity_jar_location

    if master.startswith("sc://"):  # a Spark Connect server was configured when it started (its jars too)
        return {}
    conf = {"spark.jars": similarity_jar_location(),  # jaro_winkler, damerau_levenshtein for Spark SQL
            "spark.ui.showConsoleProgress": "false"}
    if master.startswith("local"):
        conf |= {"spark.sql.shuffle.partitions": "4", "spark.default.parallelism": "4",
                 "spark.sql.adaptive.enabled": "false",
                 "spark.driver.memory": driver_memory, "spark.ui.enabled": "false"}
    return conf


class SparkEngine:
    """Splink on Spark (`SparkAPI`). `master`: `local[2]`, `spark://host:7077`, `yarn`, … or a Spark
    Connect URL `sc://host:15002`. `staging_dir`: where the records are handed over as Parquet and
    the scored pairs come back (and Splink checkpoints); on a cluster a folder that this machine
    (DuckDB writes and reads it) and every executor see at the same path: a shared mount. By
    default Spark's own `spark.checkpoint.dir` (spark-defaults.conf, `spark-submit --conf`), else a
    local temp folder (enough for `local[n]`)."""

    name = "spark"
    # Every chunk is a Spark job of a second or two whatever its size: the 2 M sampled pairs in one
    u_sampling_chunks = 1

    def __init__(self, master: str = "local[2]", memory_limit: str = MODEL_MEMORY_LIMIT,
                 driver_memory: str | None = None, staging_dir: str | None = None, conf: dict[str, str] | None = None):
        try:
            from pyspark.sql import SparkSession
            from splink import SparkAPI
        except ImportError as exc:
            raise EngineUnavailable(f"the Spark engine needs pyspark 需要 pyspark ({exc}): "
                                    "pip install 'campus-kg[spark]' (or `make install-spark`)") from None
        if not master.startswith("sc://"):  # a Spark Connect server brings its own Java
            require_java()
        self.sql = SparkSql()
        self.workdir = _spill_folder("campus-kg-spark-")
        self.con = duckdb.connect(config={"memory_limit": memory_limit, "preserve_insertion_order": False,
                                          "temp_directory": str(Path(self.workdir, "duckdb"))})
        try:
            builder = SparkSession.builder.appName("campus-kg resolve")
            builder = builder.remote(master) if master.startswith("sc://") else builder.master(master)
            # Spark's own variable, as spark-submit reads it: the driver is this process's JVM on local[n]
            driver_memory = driver_memory or os.environ.get("SPARK_DRIVER_MEMORY", "1g")
            for key, value in (spark_settings(master, driver_memory) | (conf or {})).items():
                builder = builder.config(key, value)
            self.spark = builder.getOrCreate()
            shared = staging_dir or self.spark.conf.get("spark.checkpoint.dir", None)
            # its own folder under a shared staging folder, removed on close (never the shared folder itself)
            self.staging = (tempfile.mkdtemp(prefix="campus-kg-spark-", dir=shared.removeprefix("file:")) if shared
                            else self.workdir)
            # Splink breaks the lineage of its big intermediate tables. In memory on one machine (and on
            # Spark Connect, which has no SparkContext to checkpoint with); on a cluster as Parquet in
            # the staging folder, as Splink does by default.
            lineage = "persist" if master.startswith(("local", "sc://")) else "parquet"
            if not master.startswith("sc://"):
                self.spark.sparkContext.setLogLevel("ERROR")
                self.spark.sparkContext.setCheckpointDir(str(Path(self.staging, "checkpoints")))
            self.db_api = SparkAPI(spark_session=self.spark, break_lineage_method=lineage)
        except BaseException:
            self.con.close()
            shutil.rmtree(self.workdir, ignore_errors=True)
            raise
        self._handed = 0

    def _path(self, name: str) -> str:
        self._handed += 1
        return str(Path(self.staging, f"{self._handed:04d}_{re.sub(r'[^A-Za-z0-9_]', '_', name)}.parquet"))

    def register(self, table: pa.Table, name: str):
        """`table` into Spark as a Parquet file that DuckDB writes."""
        path = self._path(name)
        self.con.register("_to_spark", table)
        try:
            self.con.execute(f"COPY _to_spark TO '{path}' (FORMAT parquet)")
        finally:
            self.con.unregister("_to_spark")
        return self.db_api.register(self.spark.read.parquet(path), dataset_display_name=name)

    def to_duckdb(self, splink_df) -> str:
        """A Splink result in Spark (scored pairs) as a table of the same name in `con`, via Parquet."""
        path = self._path(splink_df.physical_name)
        splink_df.as_spark_dataframe().write.mode("overwrite").parquet(path)
        table = splink_df.physical_name
        self.con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM read_parquet('{path}/*.parquet')")
        return table

    def close(self) -> None:
        self.con.close()
        self.spark.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
        if self.staging != self.workdir:
            shutil.rmtree(self.staging, ignore_errors=True)


def open_engine(name: str = "duckdb", spark_master: str = "local[2]", memory_limit: str = MODEL_MEMORY_LIMIT):
    """The engine named by the setting `resolution_engine` (duckdb | spark)."""
    if name == "duckdb":
        return DuckDBEngine(memory_limit)
    if name == "spark":
        return SparkEngine(spark_master, memory_limit)
    raise ValueError(f"unknown resolution engine {name!r}: one of {', '.join(ENGINES)}")
