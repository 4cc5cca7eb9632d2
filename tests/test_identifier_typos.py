"""A hand-typed identifier (staff number, student number, e-mail) links two records by rule only
when their names are compatible: a card office's swapped digits name another person, and the rule
must not merge two people whose names disagree entirely (resolution/exact.py).

The end-to-end cases write an HR export and a campus-card export as CSV with a mapping and run the
`campus-kg` command line on them (`run`, then `export links`); the name test itself runs in DuckDB
on names keyed by ingest's own standardisation."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from campus_kg import cli
from campus_kg.cli import app
from ingest.idcard import check_character
from ingest.lakehouse import Lakehouse
from tests.samples import write_csv
from ingest.standardise import name_keys_of, standardise_name
from resolution.clusters import ConstrainedUnionFind
from resolution.exact import NAMED_RECORDS_SQL, add_records, finish, identifier_rows, link_identifiers, \
    names_compatible_sql
from resolution.held_back import score_held_back
from resolution.person_model import PERSON_INPUT_SQL, train

# Colleagues present in both systems under the same name and staff number: the model's population.
CROWD = ["王芳", "刘强", "陈杰", "杨秀英", "黄勇", "赵丽", "周军", "吴霞", "徐明", "孙娟", "马超", "朱琳", "胡斌",
         "郭静", "何磊", "高燕", "林涛", "罗欣", "郑浩", "梁雪"]


def _id_number(serial: int, born: str) -> str:
    first17 = f"110105{born}{serial:03d}"
    return first17 + check_character(first17)


MAPPING = """version: 1
university: 测试大学
sources:
  - name: hr
    path: hr.csv
    format: csv
    encoding: utf-8
    system: HR
    system_name: 人事管理系统
    department: 人事处
    table: staff
    entity_type: Person
    record_key: [key]
    fields:
      staff_no: {property: staff_no}
      name: {property: name}
      birth_date: {property: birth_date}
      id_number: {property: id_number}
      email: {property: email}
  - name: card
    path: card.csv
    format: csv
    encoding: utf-8
    system: YKT
    system_name: 一卡通系统
    department: 后勤处
    table: cardholders
    entity_type: Person
    record_key: [key]
    fields:
      name: {property: name}
      staff_no: {property: staff_no}
      email: {property: email}
"""

HR = [  # key, staff number, name, birth date, ID number, e-mail
    ["H001", "200001", "张伟", "1980-01-01", "", ""],
    ["H002", "200002", "Sarah Miller", "1985-02-02", "", ""],
    ["H003", "200003", "李敏", "1963-09-17", "", ""],
    ["H004", "200030", "王燕诺", "1979-05-04", "", ""],
    ["H005", "200005", "Lena Suzuki", "1990-03-03", "", ""],
    ["H006", "200006", "JENSEN Hassan", "1970-06-06", "", ""],
    ["H007", "200007", "刘洋", "1982-07-07", "", "liuyang@ltu.edu.cn"],
    ["H008", "200008", "周杰", "1975-08-08", _id_number(1, "19750808"), ""],
    ["H009", "200009", "吴敏", "1975-08-08", _id_number(1, "19750808"), ""],  # the same ID number: one person
] + [[f"C{i:03d}", f"3{i:05d}", n, f"19{70 + i}-0{1 + i % 9}-1{i % 9}", "", ""] for i, n in enumerate(CROWD)]

CARD = [  # key, name, staff number, e-mail
    ["K001", "ZHANG Wei", "200001", ""],          # romanised: the key zhang|wei is shared
    ["K002", "Sarah Jones", "200002", ""],        # married: another surname, the same given name
    ["K003", "王燕诺", "200003", ""],              # 200030 typed with two digits swapped: 李敏's number
    ["K004", "LENA SUZUKI", "200006", ""],        # 200005 mistyped: JENSEN Hassan's number
    ["K005", "陈晶", "", "liuyang@ltu.edu.cn"],    # 刘洋's address typed on another person's card
] + [[f"D{i:03d}", n, f"3{i:05d}", ""] for i, n in enumerate(CROWD)]


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> tuple[Path, dict[str, tuple[str, str]]]:
    """`campus-kg run` on both exports: record key -> (master ID, the rule that linked the record)."""
    tmp = tmp_path_factory.mktemp("typos")
    src = tmp / "src"
    src.mkdir()
    write_csv(src, "hr", ["key", "staff_no", "name", "birth_date", "id_number", "email"], HR)
    write_csv(src, "card", ["key", "name", "staff_no", "email"], CARD)
    (src / "mapping.yaml").write_text(MAPPING, encoding="utf-8")
    ws = tmp / "ws"
    result = CliRunner().invoke(app, ["run", "--mapping", str(src / "mapping.yaml"), "--workspace", str(ws)])
    assert result.exit_code == 0, result.output
    with Lakehouse(ws / "lakehouse.duckdb", read_only=True) as lake:
        links = lake.con.execute("""SELECT split_part(member_id, ':', 2), master_id, rule FROM res_link
            WHERE entity_type = 'Person'""").fetchall()
    return ws, {key: (master, rule) for key, master, rule in links}


def test_swapped_digits_do_not_merge_two_people(ran):
    _, links = ran
    assert links["K003"][0] != links["H003"][0]  # 王燕诺's card is not 李敏's
    assert links["K004"][0] != links["H006"][0]  # LENA SUZUKI is not JENSEN Hassan
    assert links["K005"][0] != links["H007"][0]  # 陈晶 is not 刘洋
    for key in ("K003", "K004", "K005"):  # the rule does not claim the identifier it refused
        assert not links[key][1].startswith("exact:"), (key, links[key])


def test_swapped_digits_whose_name_agrees_join_their_person(ran, monkeypatch):
    """王燕诺's card carries 200003 for her 200030: two neighbouring digits swapped, a level of the
    model's own (SWAP_LEVEL), as the name and the swap outweigh the number's disagreement."""
    ws, links = ran
    assert links["K003"][0] == links["H004"][0], links["K003"]
    monkeypatch.setattr(cli.console, "width", 200)  # the CLI's console took its width at import
    result = CliRunner().invoke(app, ["model", "--workspace", str(ws)])
    assert "two neighbouring characters swapped" in result.output


def test_a_romanised_name_and_a_married_name_still_link_by_rule(ran):
    _, links = ran
    assert links["K001"] == (links["H001"][0], "exact:staff_no")  # 张伟 / ZHANG Wei
    assert links["K002"] == (links["H002"][0], "exact:staff_no")  # Sarah Miller / Sarah Jones
    for i in range(len(CROWD)):
        assert links[f"D{i:03d}"] == (links[f"C{i:03d}"][0], "exact:staff_no")


def test_a_validated_id_number_links_whatever_the_names(ran):
    _, links = ran
    assert links["H008"][0] == links["H009"][0]
    assert links["H008"][1] == links["H009"][1] == "exact:id_number"


def test_the_held_back_pairs_are_recorded_for_the_model_and_stewards(ran):
    ws, _ = ran
    with Lakehouse(ws / "lakehouse.duckdb", read_only=True) as lake:
        rows = identifier_rows(lake.con)
    uf, rule = ConstrainedUnionFind(), {}
    add_records(uf, rows)
    link_identifiers(uf, rows, rule)
    held = {(a, b, why.split(" ")[0]) for a, b, why in finish(uf, rule).held_back}
    assert held == {("card:K003", "hr:H003", "staff_no"), ("card:K004", "hr:H006", "staff_no"),
                    ("card:K005", "hr:H007", "email")}


@pytest.mark.parametrize(("a", "b", "compatible"), [
    ("张伟", "ZHANG Wei", True),                      # a shared pinyin key
    ("张伟", "Wei Zhang", True),                      # either order
    ("张伟", "章玮", True),                            # a homophone
    ("張偉", "张伟", True),                            # traditional characters
    ("Sarah Miller", "Sarah Jones", True),          # a married name
    ("Catherine Whitfield", "Whitfeild Catherine", True),  # one typo, the other order
    ("Sukarno", "SUKARNO", True),                   # one word, any case
    (None, "王燕诺", True),                           # no name: no evidence against
    ("LENA SUZUKI", "JENSEN Hassan", False),
    ("李敏", "王燕诺", False),
    ("张伟", "李伟", False),                           # the same given name in characters: two people
    ("张伟", "张文", False),                           # the same surname: two people
])
def test_name_compatibility(a, b, compatible):
    con = duckdb.connect()
    rows = [(rid, standardise_name(n), ";".join(name_keys_of(standardise_name(n))) if n else None)
            for rid, n in (("a", a), ("b", b))]
    con.execute("CREATE TABLE dwd_person_record (record_id VARCHAR, name VARCHAR, name_keys VARCHAR)")
    con.executemany("INSERT INTO dwd_person_record VALUES (?, ?, ?)", rows)
    got = con.execute(f"""WITH named AS ({NAMED_RECORDS_SQL})
        SELECT {names_compatible_sql('x', 'y')} FROM named x, named y WHERE x.record_id = 'a' AND y.record_id = 'b'
        """).fetchone()[0]
    assert got is compatible


def _records_and_held_back(ran) -> tuple:
    """The run's Person records (the model's input) and the pairs the identifier rule held back."""
    ws, _ = ran
    with Lakehouse(ws / "lakehouse.duckdb", read_only=True) as lake:
        rows = identifier_rows(lake.con)
        records = lake.con.sql(PERSON_INPUT_SQL).to_arrow_table()
    uf, rule = ConstrainedUnionFind(), {}
    add_records(uf, rows)
    link_identifiers(uf, rows, rule)
    return records, finish(uf, rule).held_back


def test_the_model_scores_the_held_back_pairs(ran):
    """Blocking never pairs them (no shared name key, no birth date on a card): scored explicitly,
    each gets the model's probability — here near 0, as names that disagree entirely deserve."""
    records, held_back = _records_and_held_back(ran)
    model = train(records)
    try:
        scored = score_held_back(model, records, held_back)
    finally:
        model.close()
    assert {(p["unique_id_l"], p["unique_id_r"]) for p in scored} == {(a, b) for a, b, _ in held_back}
    for p in scored:
        assert 0 <= p["match_probability"] < 0.5, p
        assert p["mw_name"] < 0, p  # the evidence a steward would see: the names disagree …
        if p["unique_id_r"] != "hr:H007":
            assert p["mw_staff_no"] > 0, p  # … and the staff number agrees


def test_many_held_back_pairs_are_scored_batch_by_batch(ran, monkeypatch):
    """Thousands of held-back pairs (FEBRL's corrupted names under one social-security number) are
    scored in batches, each registering its own tables with the model: one pair per batch here."""
    import resolution.held_back as held_back_module

    records, held_back = _records_and_held_back(ran)
    assert len(held_back) >= 2
    model = train(records)
    try:
        whole = score_held_back(model, records, held_back)
        monkeypatch.setattr(held_back_module, "BATCH_PAIRS", 1)
        batched = score_held_back(model, records, held_back)
    finally:
        model.close()
    assert [(p["unique_id_l"], p["unique_id_r"]) for p in batched] == [(p["unique_id_l"], p["unique_id_r"])
                                                                        for p in whole]
    assert [p["match_probability"] for p in batched] == pytest.approx([p["match_probability"] for p in whole])
