"""Data quality per system, table and field in the six dimensions of GB/T 36344, with traffic lights
per department and table (红绿灯制度). docs/quality.md defines every measure.

Each ingest run stores its report in the lakehouse (`quality_report`), so the HTML report can show
the trend across runs. Example values in the report are masked where the property is sensitive.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ingest.lakehouse import Lakehouse, fetch_one
from ontology.masking import mask_if_sensitive
from ontology.model import load_ontology

DIMENSIONS = {  # key: (Chinese, English) — the order the report shows them in
    "completeness": ("完整性", "Completeness"),
    "validity": ("有效性", "Validity"),
    "accuracy": ("准确性", "Accuracy"),
    "consistency": ("一致性", "Consistency"),
    "uniqueness": ("唯一性", "Uniqueness"),
    "timeliness": ("及时性", "Timeliness"),
}
LIGHTS = {"green": ("绿", "Green"), "yellow": ("黄", "Yellow"), "red": ("红", "Red")}
EXAMPLES_PER_FIELD = 3


@dataclass(frozen=True)
class Thresholds:
    """A score at or above `green` is green, at or above `yellow` yellow, else red."""

    green: float = 0.98
    yellow: float = 0.90
    timeliness_days: int = 400  # an export older than this is late

    def light(self, score: float | None) -> str | None:
        if score is None:
            return None
        return "green" if score >= self.green else "yellow" if score >= self.yellow else "red"


def _score(checked: int, failed: int) -> float | None:
    return None if not checked else round(1 - failed / checked, 4)


def _worst(scores) -> float | None:
    present = [s for s in scores if s is not None]
    return min(present) if present else None


# ---- measuring --------------------------------------------------------------------------------
def _field_counts(lake: Lakehouse) -> list[tuple]:
    """Per source, column and property: records whose column has a value (under any of the column's
    rules, or NULL when every rule is optional), values, and flags by dimension."""
    return lake.con.execute("""
        WITH filled AS (
            SELECT r.source, s.column_name, count(DISTINCT s.record_id) AS n
            FROM dwd_statement s JOIN dwd_record r USING (record_id) GROUP BY ALL),
        per_prop AS (
            SELECT r.source, s.column_name, s.property, count(*) AS vals,
                   count(*) FILTER (WHERE s.dimension = 'validity') AS invalid,
                   count(*) FILTER (WHERE s.dimension = 'accuracy') AS inaccurate,
                   count(*) FILTER (WHERE s.dimension = 'consistency') AS inconsistent
            FROM dwd_statement s JOIN dwd_record r USING (record_id) GROUP BY ALL)
        SELECT f.source, f.column_name, f.property,
               CASE WHEN bool_and(f.optional) OVER (PARTITION BY f.source, f.column_name) THEN NULL
                    ELSE COALESCE(filled.n, 0) END,
               COALESCE(p.vals, 0), COALESCE(p.invalid, 0), COALESCE(p.inaccurate, 0), COALESCE(p.inconsistent, 0)
        FROM source_field f
        LEFT JOIN filled ON filled.source = f.source AND filled.column_name = f.column_name
        LEFT JOIN per_prop p ON p.source = f.source AND p.column_name = f.column_name AND p.property = f.property
        ORDER BY 1, 2, 3""").fetchall()


CROSS_CHECKED = ("name", "sex", "birth_date", "ethnic_group")


def _cross_system_conflicts(lake: Lakehouse) -> dict[tuple[str, str], int]:
    """多源校核 against 一数一源: for one person in several systems, a value that differs from the
    most authoritative source's value for that property (rank from the mapping) is inconsistent;
    when equally ranked sources disagree, each of them is. One person means one resolved master
    entity once resolution has run (so people without an ID number are checked too), else one
    valid ID number. Year-month values are compared at month precision. Values already flagged
    (e.g. disagreeing with their own record's ID number) are not counted twice."""
    props = ", ".join(f"'{p}'" for p in CROSS_CHECKED)
    resolved = lake.has_table("res_link")
    person = ("COALESCE(l.master_id, 'id:' || p.id_number)" if resolved else "'id:' || p.id_number")
    link = ("LEFT JOIN res_link l ON l.member_id = s.record_id AND l.entity_type = 'Person'" if resolved else "")
    lake.con.execute(f"""CREATE OR REPLACE TEMP TABLE _cross_conflict AS
        WITH v AS (
            SELECT r.source, r.system, s.column_name, s.record_id, s.property, s.value, {person} AS id_number,
                   s.flag = 'month_precision' AS month_only, COALESCE(a.rank, 9) AS rank
            FROM dwd_statement s JOIN dwd_record r USING (record_id) JOIN dwd_person_record p USING (record_id)
            {link}
            LEFT JOIN source_authority a ON a.source = r.source AND a.property = s.property
            WHERE s.property IN ({props}) AND s.value IS NOT NULL AND {person} IS NOT NULL
              AND (s.dimension IS NULL OR s.dimension = 'info')),
        people AS (  -- only people whose property appears in more than one system
            SELECT id_number, property, min(rank) AS best FROM v GROUP BY ALL HAVING count(DISTINCT system) > 1)
        SELECT DISTINCT ON (a.record_id, a.property) a.source, a.column_name, a.record_id, a.property, a.value,
               b.value AS expected, b.system AS expected_system
        FROM v a JOIN people USING (id_number, property)
        JOIN v b ON b.id_number = a.id_number AND b.property = a.property AND b.rank = people.best
                AND b.system <> a.system
        WHERE a.rank >= people.best
          AND CASE WHEN a.property = 'birth_date' AND (a.month_only OR b.month_only)
                   THEN left(a.value, 7) <> left(b.value, 7) ELSE a.value <> b.value END""")
    rows = lake.con.execute("SELECT source, column_name, count(*) FROM _cross_conflict GROUP BY ALL").fetchall()
    return {(src, col): n for src, col, n in rows}


def _duplicates(lake: Lakehouse, run_id: str) -> dict[str, int]:
    """Duplicate record keys (quarantined) plus one person twice in a table (same valid ID number)."""
    keys = dict(lake.con.execute("""SELECT source, count(*) FROM quarantine
        WHERE run_id = ? AND reason LIKE 'duplicate record key%' GROUP BY 1""", [run_id]).fetchall())
    people = dict(lake.con.execute("""SELECT r.source, count(*) - count(DISTINCT p.id_number)
        FROM dwd_record r JOIN dwd_person_record p USING (record_id) WHERE p.id_number IS NOT NULL
        GROUP BY 1""").fetchall())
    return {s: keys.get(s, 0) + people.get(s, 0) for s in set(keys) | set(people)}


def _examples(lake: Lakehouse, source: str, column: str, prop: str, dimension: str | None) -> list[dict]:
    """A few rows showing the field's worst problem, so a department can find and fix them."""
    if dimension == "completeness":
        rows = lake.con.execute("""SELECT r.row_no, r.record_key, NULL, '缺失 / missing', NULL, NULL FROM dwd_record r
            WHERE r.source = ? AND r.record_id NOT IN (SELECT record_id FROM dwd_statement WHERE column_name = ?)
            ORDER BY r.row_no, r.record_key LIMIT ?""", [source, column, EXAMPLES_PER_FIELD]).fetchall()
    else:
        flagged = """SELECT r.row_no, r.record_key, s.original, s.flag, NULL, NULL
            FROM dwd_statement s JOIN dwd_record r USING (record_id)
            WHERE r.source = ? AND s.column_name = ? AND s.property = ? AND s.dimension = ?"""
        params: list = [source, column, prop, dimension]
        if dimension == "consistency":  # and the disagreements with the authoritative source
            flagged += """ UNION ALL
                SELECT r.row_no, r.record_key, c.value, NULL, c.expected_system, c.expected
                FROM _cross_conflict c JOIN dwd_record r USING (record_id)
                WHERE c.source = ? AND c.column_name = ? AND c.property = ?"""
            params += [source, column, prop]
        # Row, then key: two records can name one row (a kept record's last good row, a new record's now).
        rows = lake.con.execute(f"{flagged} ORDER BY ALL LIMIT ?", [*params, EXAMPLES_PER_FIELD]).fetchall()
    return [{"row": row_no, "record_key": key, "value": mask_if_sensitive(prop, value),
             "problem": flag or f"与权威来源 {system} 不一致 / differs from the authoritative source {system}: "
                                f"{mask_if_sensitive(prop, expected)}"}
            for row_no, key, value, flag, system, expected in rows]


def assess(lake: Lakehouse, run_id: str | None = None, thresholds: Thresholds | None = None) -> dict:
    """The quality report of one ingest run (the latest by default) as a JSON-ready dict."""
    th = thresholds or Thresholds()
    run_id = run_id or lake.latest_run()
    if run_id is None:
        raise LookupError("no completed ingest run: run `campus-kg ingest` first")
    started = fetch_one(lake.con, "SELECT started_at FROM ingest_run WHERE run_id = ?", [run_id])[0]
    stats = lake.con.execute("""SELECT s.source, s.system, COALESCE(y.name, s.system), s.table_name, s.department,
            s.entity_type, s.file, s.read, s.loaded, s.quarantined, s.problem, s.data_as_of
        FROM source_stats s LEFT JOIN source_system y USING (system) WHERE s.run_id = ? ORDER BY s.source""",
                             [run_id]).fetchall()
    counts = _field_counts(lake)
    cross = _cross_system_conflicts(lake)
    dupes = _duplicates(lake, run_id)
    ont = load_ontology()
    tables = []
    for (source, system, system_name, table, department, entity_type, file, read, loaded, quarantined, problem,
         as_of) in stats:
        fields = []
        for src, column, prop, with_value, values, invalid, inaccurate, inconsistent in counts:
            if src != source:
                continue
            inconsistent += cross.get((source, column), 0)
            dims = {
                "completeness": None if with_value is None else _score(loaded, loaded - with_value),
                "validity": _score(values, invalid),
                "accuracy": _score(values, inaccurate),
                "consistency": _score(values, min(values, inconsistent)),
            }
            score = _worst(dims.values())
            label = ont.prop(prop).label_zh if prop in ont.properties else prop
            worst_dim = min((d for d in dims if dims[d] is not None), key=lambda d: dims[d], default=None)
            fields.append({
                "column": column, "property": prop, "label": label, "score": score, "light": th.light(score),
                "dimensions": dims, "worst_dimension": worst_dim,
                "failed": {"completeness": loaded - (with_value or 0) if with_value is not None else 0,
                           "validity": invalid, "accuracy": inaccurate,
                           "consistency": inconsistent},
                "examples": [] if score is None or score >= 1 else _examples(lake, source, column, prop, worst_dim),
            })
        fields.sort(key=lambda f: (f["score"] if f["score"] is not None else 2, f["column"]))
        dims = _table_dimensions(fields, read, loaded, quarantined, dupes.get(source, 0), as_of, started, th)
        if problem:
            dims["validity"] = 0.0  # the export could not be read (fully): nothing about it can be trusted
        score = _worst(dims.values())
        tables.append({
            "source": source, "system": system, "system_name": system_name, "table": table,
            "department": department, "entity_type": entity_type, "file": file,
            "read": read, "loaded": loaded, "quarantined": quarantined, "problem": problem,
            "data_as_of": as_of.isoformat() if as_of else None,
            "dimensions": dims, "lights": {d: th.light(s) for d, s in dims.items()},
            "score": score, "light": th.light(score), "fields": fields,
            "quarantine_examples": _quarantine_examples(lake, run_id, source),
        })
    departments = []
    for dept in sorted({t["department"] for t in tables}):
        own = [t for t in tables if t["department"] == dept]
        # A department is as good as its worst table: one red table makes the department red.
        score = _worst(t["score"] for t in own)
        departments.append({"department": dept, "score": score, "light": th.light(score),
                            "tables": [t["source"] for t in own], "records": sum(t["read"] for t in own)})
    departments.sort(key=lambda d: (d["score"] if d["score"] is not None else 2, d["department"]))
    worst = sorted(((t, f) for t in tables for f in t["fields"] if f["score"] is not None and f["score"] < 1),
                   key=lambda tf: tf[1]["score"])
    return {
        "run_id": run_id, "run_started_at": started.isoformat(timespec="seconds"), "generated_at": dt.datetime.now().isoformat(
            timespec="seconds"),
        "thresholds": asdict(th), "dimensions": DIMENSIONS, "lights": LIGHTS,
        "totals": {k: sum(t[k] for t in tables) for k in ("read", "loaded", "quarantined")},
        "departments": departments, "tables": tables,
        "worst_fields": [{"department": t["department"], "source": t["source"], "table": t["table"], **f}
                         for t, f in worst[:25]],
        "trend": [],
    }


def _table_dimensions(fields, read, loaded, quarantined, duplicates, as_of, started, th: Thresholds) -> dict:
    def mean(dim):
        scores = [f["dimensions"][dim] for f in fields if f["dimensions"][dim] is not None]
        return round(sum(scores) / len(scores), 4) if scores else None

    validity = mean("validity")
    loadable = _score(read, quarantined)  # a quarantined row is an invalid record
    age = (started - as_of).days if as_of else None
    return {
        "completeness": mean("completeness"),
        "validity": None if validity is None and loadable is None else round((validity or 1) * (loadable or 1), 4),
        "accuracy": mean("accuracy"),
        "consistency": mean("consistency"),
        "uniqueness": _score(read, min(read, duplicates)),
        "timeliness": None if age is None else _timeliness(age, th.timeliness_days),
    }


def _timeliness(age_days: int, limit_days: int) -> float:
    """1 while the export is no older than the limit, then falling linearly to 0 at twice the limit."""
    if age_days <= limit_days:
        return 1.0
    return round(max(0.0, 2 - age_days / limit_days), 4)


def _quarantine_examples(lake: Lakehouse, run_id: str, source: str) -> list[dict]:
    rows = lake.con.execute("""SELECT row_no, field, reason FROM quarantine WHERE run_id = ? AND source = ?
        ORDER BY row_no NULLS FIRST LIMIT 5""", [run_id, source]).fetchall()
    return [{"row": r, "field": f, "reason": why} for r, f, why in rows]


# ---- storing and the trend ---------------------------------------------------------------------
def store(lake: Lakehouse, report: dict) -> None:
    lake.con.execute("CREATE TABLE IF NOT EXISTS quality_report (run_id VARCHAR PRIMARY KEY, run_at TIMESTAMP, "
                     "report JSON)")
    lake.con.execute("INSERT OR REPLACE INTO quality_report VALUES (?, ?, ?)",
                     [report["run_id"], report["run_started_at"], json.dumps(report, ensure_ascii=False, default=str)])


def with_trend(lake: Lakehouse, report: dict, runs: int = 12) -> dict:
    """Adds the department and table scores of up to `runs` earlier runs, oldest first."""
    if not lake.has_table("quality_report"):
        return report
    rows = lake.con.execute("""SELECT report FROM quality_report WHERE run_at <= ? ORDER BY run_at DESC LIMIT ?""",
                            [report["run_started_at"], runs]).fetchall()
    trend = []
    for (text,) in reversed(rows):
        old = json.loads(text)
        trend.append({"run_id": old["run_id"], "at": old["run_started_at"],
                      "departments": {d["department"]: {"score": d["score"], "light": d["light"]}
                                      for d in old["departments"]},
                      "tables": {t["source"]: t["score"] for t in old["tables"]}})
    return {**report, "trend": trend}


def assess_and_store(lake: Lakehouse, run_id: str | None, thresholds: Thresholds | None = None) -> dict:
    report = assess(lake, run_id, thresholds)
    store(lake, report)
    return report


# ---- writing the reports -----------------------------------------------------------------------
def write_json(report: dict, path: Path) -> None:
    path.write_text(json.dumps(report, ensure_ascii=False, indent=2, default=str), encoding="utf-8")


def write_html(report: dict, path: Path) -> None:
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("ingest", "templates"), autoescape=select_autoescape(["html"]))
    env.filters["pct"] = lambda v: "—" if v is None else f"{v * 100:.1f}%"
    path.write_text(env.get_template("quality.html").render(r=report), encoding="utf-8")
