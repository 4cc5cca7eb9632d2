"""Whether a resolve may score its pairs with the Person model an earlier resolve trained.

Splink's own workflow for data that grows: train once, save the model, load it to predict. Here a
resolve reuses the saved model (`workspace.person_model`) when all of these hold, and trains anew
otherwise:

- the model was trained by this code (resolution/*.py and the Splink version), on the same engine,
  with the same steward judgements as labels, on Person records standardised as they are now (the
  ingest's `source_fingerprint` of each Person source: a mapping or code change rewrites values
  without changing any row);
- the Person records changed since (new, changed or deleted, per `change_set`) are at most
  `resolution_retrain_share` of the records it was trained on;
- the settings this data calls for (comparisons, blocking rules, term frequencies) are the ones it
  was trained with (`person_model.reuse` checks that).

What it was trained on is kept beside the model (`<model>.basis.json`), and the resolve's notes say
which it did and why: a steward or an auditor sees when the model was last trained.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import duckdb

from ingest.lakehouse import FINISHED_RUN_STATUSES, fetch_one

DEFAULT_RETRAIN_SHARE = 0.05  # settings.resolution_retrain_share


@dataclass
class Basis:
    trained_run: str  # the latest ingest run when the model was trained
    person_records: int
    labels: str  # digest of the steward judgements it learned from
    code: str
    engine: str
    standardised: str  # digest of the Person sources' standardisation fingerprints
    notes: list[str] = field(default_factory=list)  # what training said (evidence, skipped steps)


def basis_path(model_path: Path) -> Path:
    return model_path.with_name(model_path.stem + ".basis.json")


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    digest = hashlib.sha256(importlib.metadata.version("splink").encode())
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def labels_digest(labels: list[tuple[str, str, bool]]) -> str:
    return hashlib.sha256(json.dumps(sorted(labels)).encode()).hexdigest()


def standardised_digest(con: duckdb.DuckDBPyConnection) -> str:
    rows = con.execute(f"""SELECT source, fingerprint FROM source_fingerprint
        WHERE source IN ({PERSON_SOURCES}) ORDER BY 1""").fetchall()
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


# Sources whose records are Person records, in any run (a source whose records are all gone still counts).
PERSON_SOURCES = "SELECT DISTINCT source FROM source_stats WHERE entity_type = 'Person'"


def latest_run(con: duckdb.DuckDBPyConnection) -> str | None:
    row = fetch_one(con, f"""SELECT run_id FROM ingest_run WHERE status IN {FINISHED_RUN_STATUSES}
        ORDER BY started_at DESC LIMIT 1""")
    return row[0] if row else None


def _changed_since(con: duckdb.DuckDBPyConnection, run_id: str) -> int | None:
    """Person records new, changed or deleted in the runs after `run_id`; None when that run is unknown."""
    if fetch_one(con, "SELECT count(*) FROM ingest_run WHERE run_id = ?", [run_id])[0] == 0:
        return None
    return fetch_one(con, f"""SELECT count(DISTINCT c.record_id) FROM change_set c JOIN ingest_run r USING (run_id)
        WHERE r.started_at > (SELECT started_at FROM ingest_run WHERE run_id = ?)
          AND c.source IN ({PERSON_SOURCES})""", [run_id])[0]


def reusable(con: duckdb.DuckDBPyConnection, model_path: Path | None, labels: list[tuple[str, str, bool]],
             engine: str, max_share: float, retrain: bool = False) -> tuple[dict | None, str]:
    """(the saved model's Splink JSON, why) when it may be reused, else (None, why it is trained anew)."""
    if retrain:
        return None, "model trained 模型训练: asked to (--retrain)"
    if model_path is None or not model_path.exists() or not basis_path(model_path).exists():
        return None, "model trained 模型训练: no saved model"
    try:
        basis = Basis(**json.loads(basis_path(model_path).read_text(encoding="utf-8")))
        saved = json.loads(model_path.read_text(encoding="utf-8"))
        trained_on = int(basis.person_records)
    except Exception as exc:  # noqa: BLE001 - whatever is wrong with it, training anew is the answer
        return None, f"model trained 模型训练: the saved model cannot be read ({type(exc).__name__}: {exc})"
    if basis.code != code_fingerprint() or basis.engine != engine:
        return None, "model trained 模型训练: the resolution code or engine changed since the saved model"
    if basis.labels != labels_digest(labels):
        return None, "model trained 模型训练: steward judgements changed since the saved model"
    if basis.standardised != standardised_digest(con):
        return None, "model trained 模型训练: the Person records are standardised otherwise since the saved model"
    changed = _changed_since(con, basis.trained_run)
    if changed is None:
        return None, "model trained 模型训练: the run the saved model was trained after is gone"
    share = changed / max(trained_on, 1)
    if share > max_share:
        return None, (f"model trained 模型训练: {changed:,} person records changed since the saved model "
                            f"({share:.1%} > resolution_retrain_share {max_share:.0%})")
    return saved, (f"model reused 模型复用: trained after run {basis.trained_run} on {basis.person_records:,} "
                          f"person records; {changed:,} changed since ({share:.1%} ≤ resolution_retrain_share "
                          f"{max_share:.0%})")


def remember(model_path: Path, basis: Basis) -> None:
    basis_path(model_path).write_text(json.dumps(asdict(basis), ensure_ascii=False, indent=1), encoding="utf-8")
