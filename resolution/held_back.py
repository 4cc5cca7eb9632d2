"""The model's scores for the pairs the identifier rule held back (resolution/exact.py: records that
share a staff number, student number or e-mail but whose names disagree).

Blocking rarely pairs them — their names share no key, and a campus card carries no birth date — so
`PersonModel.predict` would never score them, and a steward would never see one the model is unsure
of. Scored here explicitly (no blocking: just these pairs), in the shape `PersonModel.predict`
yields, so that person linkage can treat them like its other scored pairs: link at or above the
match threshold, review between the thresholds, leave apart below.
"""

from __future__ import annotations

import itertools

import pyarrow as pa
import pyarrow.compute as pc

from resolution.person_model import PersonModel, with_sound_keys


def score_held_back(model: PersonModel, records: pa.Table, held_back: list[tuple[str, str, str]]) -> list[dict]:
    """`records`: the Person records the model was trained on (PERSON_INPUT_SQL's columns);
    `held_back`: Clustering.held_back. One dict per pair (unique_id_l < unique_id_r): match_weight,
    match_probability and each comparison's match weight (mw_x), strongest first."""
    wanted = {tuple(sorted((a, b))) for a, b, _ in held_back}
    if not wanted:
        return []
    table = with_sound_keys(records)
    ordered = sorted(wanted)
    out = []
    for start in range(0, len(ordered), BATCH_PAIRS):  # score_pairs compares every left with every right
        out += _score_batch(model, table, set(ordered[start:start + BATCH_PAIRS]), next(_BATCHES))
    return sorted(out, key=lambda p: (-p["match_probability"], p["unique_id_l"], p["unique_id_r"]))


# Pairs scored per call: the cartesian product of their left and right records stays ≤ 256² rows.
BATCH_PAIRS = 256
_BATCHES = itertools.count()  # a table name is registered once per model: each batch its own


def _score_batch(model: PersonModel, table: pa.Table, wanted: set[tuple[str, str]], batch: int) -> list[dict]:
    side = [table.filter(pc.is_in(table["unique_id"], value_set=pa.array(sorted(ids), pa.string())))
            for ids in ({a for a, _ in wanted}, {b for _, b in wanted})]
    # each batch registers its own tables: a name is registered once per model
    scored = model.score_pairs(*side, name=f"held_back_{batch}")  # a table in model.con, whatever the engine
    names = [r[0] for r in model.con.execute(f"DESCRIBE {scored}").fetchall()]
    weights = [f"{n}{' + mw_tf_adj_' + n[3:] if 'mw_tf_adj_' + n[3:] in names else ''} AS {n}"
               for n in names if n.startswith("mw_") and not n.startswith("mw_tf_adj_")]
    rows = model.con.sql(f"""SELECT least(unique_id_l, unique_id_r) AS a, greatest(unique_id_l, unique_id_r) AS b,
            match_weight, match_probability{''.join(', ' + w for w in weights)}
        FROM {scored}""").to_arrow_table().to_pylist()
    out = []
    for row in rows:
        pair = (row.pop("a"), row.pop("b"))
        if pair in wanted:
            wanted.discard(pair)  # a pair may come back twice (either side): once is enough
            out.append({"unique_id_l": pair[0], "unique_id_r": pair[1], **row})
    return out
