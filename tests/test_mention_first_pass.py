"""The mention first pass (resolution/mentions.py: _first_pass) against a plain-Python oracle of its
rule, on random populations with many namesakes: the leaders by weight (ties: the smaller master ID),
the others' mass as one log2 sum, the number of candidates, whatever the statements' chunking."""

from __future__ import annotations

import math

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings, target
from hypothesis import strategies as st

from resolution import mentions
from resolution.entity_evidence import NameWeights, OrgEvidence

NAMES = {"张伟": "zhang|wei", "章伟": "zhang|wei", "王芳": "wang|fang", "李娜": "li|na"}
UNITS = ["计算机学院", "化学学院", "外国语学院"]
ORG = OrgEvidence(same=3.0, other=-2.0, m_other=0.1, u_same=0.2)
WEIGHTS = NameWeights()

# mostly one key (张伟 and its homophone 章伟), so that a mention often has more than LEADERS candidates
person = st.tuples(st.sampled_from(["张伟", "张伟", "章伟", "王芳", "李娜"]), st.sampled_from([None, *UNITS]),
                   st.booleans())
mention = st.tuples(st.sampled_from([*sorted(NAMES), "Wei Zhang", "Fang Wang", "Sukarno"]),
                    st.sampled_from([None, *UNITS, "校外单位"]))


def _keys(text: str) -> list[str]:
    if text in NAMES:
        return [NAMES[text]]
    given, family = text.lower().split()[0], text.lower().split()[-1]
    return [f"{family}|{given}", f"{given}|{family}"] if " " in text else []


def _lakehouse(people: list[tuple[str, str | None, bool]]) -> duckdb.DuckDBPyConnection:
    """The tables the first pass reads, one record per master (two for every third, a MEMBER_OF unit)."""
    con = duckdb.connect()
    con.execute("CREATE TABLE res_link (member_id VARCHAR, entity_type VARCHAR, master_id VARCHAR)")
    con.execute("""CREATE TABLE dwd_person_record (record_id VARCHAR, name VARCHAR, name_keys VARCHAR,
                   staff_no VARCHAR, org_name VARCHAR)""")
    con.execute("CREATE TABLE dwd_relation (record_id VARCHAR, rel_type VARCHAR, target_value VARCHAR)")
    for i, (name, unit, staff) in enumerate(people):
        master = f"P{i:04d}"
        con.execute("INSERT INTO res_link VALUES (?, 'Person', ?)", [f"r{i}", master])
        con.execute("INSERT INTO dwd_person_record VALUES (?, ?, ?, ?, ?)",
                    [f"r{i}", name, NAMES[name], f"S{i}" if staff else None, unit if i % 3 else None])
        if i % 3 == 0 and unit:
            con.execute("INSERT INTO dwd_relation VALUES (?, 'MEMBER_OF', ?)", [f"r{i}", unit])
    return con


def _oracle(people, text: str, unit: str | None, masters: int):
    """Every candidate's weight, sorted; the leaders, the rest's log2 mass and the count."""
    romanised = not any("\u4e00" <= c <= "\u9fff" for c in text)
    by_name = {n: sum(1 for p in people if p[0] == n) for n in NAMES}
    by_key = {k: sum(1 for p in people if NAMES[p[0]] == k) for k in set(NAMES.values())}
    weighed = []
    for i, (name, their_unit, staff) in enumerate(people):
        routes = []
        if name == text:
            routes.append(math.log2(WEIGHTS.exact_m * masters / by_name[name]))
        for place, key in enumerate(_keys(text), start=1):
            if NAMES[name] == key:
                m = WEIGHTS.exact_m if romanised else WEIGHTS.key_m
                routes.append(math.log2(m * (1 if place == 1 else mentions.OTHER_ORDER) * masters / by_key[key]))
        if not routes:
            continue
        unit_bits = 0.0 if unit is None or their_unit is None else ORG.same if unit == their_unit else ORG.other
        weighed.append((max(routes) + unit_bits + (mentions.STAFF_PRIOR_BITS if staff else 0.0), f"P{i:04d}"))
    weighed.sort(key=lambda t: (-t[0], t[1]))
    leaders = {m: w for w, m in weighed[:mentions.LEADERS]}
    rest = [w for w, _ in weighed[mentions.LEADERS:]]
    tail = math.log2(sum(2.0 ** w for w in rest)) if rest else None
    return leaders, tail, len(weighed)


@pytest.mark.parametrize("per_statement", [1, 7, 1_000_000])
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(people=st.lists(person, min_size=30, max_size=80), said=st.lists(mention, min_size=1, max_size=12))
def test_first_pass_is_the_rule(monkeypatch, per_statement, people, said):
    monkeypatch.setattr(mentions, "CANDIDATES_PER_STATEMENT", per_statement)
    con = _lakehouse(people)
    rows = [{"mention": text, "keys": ";".join(_keys(text)), "unit": unit} for text, unit in said]
    got = mentions._first_pass(con, rows, WEIGHTS, ORG, len(people))
    target(max(n for _, _, n in got))  # towards crowds of namesakes, past the leaders
    for (text, unit), (scored, tail, n) in zip(said, got, strict=True):
        leaders, want_tail, want_n = _oracle(people, text, unit, len(people))
        assert n == want_n and scored.keys() == leaders.keys()
        assert all(math.isclose(scored[m], w, abs_tol=1e-9) for m, w in leaders.items())
        assert (tail is None) == (want_tail is None)
        assert tail is None or math.isclose(tail, want_tail, abs_tol=1e-9)
