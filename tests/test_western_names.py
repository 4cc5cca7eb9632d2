"""Names of every script: Western and romanised names (留学生, 外籍教师) with given / family name
fields, passports, one-word names, and blocking that survives a typo.

Each case writes a few records as CSV with a mapping and runs the `campus-kg` command line (the
Typer app, in this process) on them: `run`, then `export links`."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from campus_kg.cli import app
from ingest.lakehouse import Lakehouse
from resolution.person_model import BLOCKING_COLUMNS, PERSON_INPUT_SQL, TYPO_BLOCKING, with_sound_keys

# Other students of both systems, so that the model has a population to learn from.
CROWD = [("Oliver", "Bennett", "1998-02-11"), ("Sofia", "Lindqvist", "1999-07-30"), ("Kenji", "Watanabe", "1997-12-03"),
         ("Amara", "Okafor", "2000-05-19"), ("Lucas", "Moreau", "1996-09-08"), ("Ingrid", "Halvorsen", "1998-11-25"),
         ("Mateo", "Fernandez", "1999-03-14"), ("Priya", "Raman", "1997-06-21"), ("Noah", "Schneider", "2000-01-07"),
         ("Elena", "Petrova", "1998-04-02")]


def _source(folder: Path, name: str, fields: dict[str, str], rows: list[dict]) -> str:
    with open(folder / f"{name}.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["id", *fields])
        writer.writeheader()
        writer.writerows(rows)
    rules = "\n".join(f"      {column}: {{property: {prop}}}" for column, prop in fields.items())
    return f"""  - name: {name}
    path: {name}.csv
    format: csv
    encoding: utf-8
    system: {name.upper()}
    system_name: {name}
    department: 国际交流处
    table: {name}
    entity_type: Person
    record_key: [id]
    fields:
{rules}
"""


# The international office names given and family name apart; the library has one name column.
OFFICE = {"given": "given_name", "family": "family_name", "dob": "birth_date", "passport": "passport_no",
          "country": "nationality"}
LIBRARY = {"name": "name", "dob": "birth_date", "passport": "passport_no", "country": "nationality"}


def _office(rows: list[tuple]) -> list[dict]:
    crowd = [(g, f, d, "", "") for g, f, d in CROWD]
    return [{"id": f"G{i:03d}", "given": g, "family": f, "dob": d, "passport": p, "country": c}
            for i, (g, f, d, p, c) in enumerate(rows + crowd)]


def _library(rows: list[tuple]) -> list[dict]:
    crowd = [(f"{g} {f}", d, "", "") for g, f, d in CROWD]
    return [{"id": f"L{i:03d}", "name": n, "dob": d, "passport": p, "country": c}
            for i, (n, d, p, c) in enumerate(rows + crowd)]


def _papers(folder: Path) -> str:
    """A publication whose author list names Suharto, who has one name only."""
    (folder / "papers.csv").write_text("id,title,authors\nK1,Batik and lattices,Suharto; Oliver Bennett\n",
                                       encoding="utf-8")
    return """  - name: papers
    path: papers.csv
    format: csv
    encoding: utf-8
    system: KY
    system_name: 科研管理系统
    department: 科学技术处
    table: papers
    entity_type: Publication
    record_key: [id]
    fields:
      title: {property: title}
    relationships:
      - {type: AUTHOR_OF, column: authors, target: Person, match_on: author_name, direction: in, split: authors}
"""


def _run(tmp_path: Path, office: list[tuple], library: list[tuple]) -> dict[str, str]:
    """`campus-kg run` on the two sources, then `campus-kg export links`: record key -> master ID."""
    src = tmp_path / "src"
    src.mkdir()
    body = _source(src, "office", OFFICE, _office(office)) + _source(src, "library", LIBRARY, _library(library))
    body += _papers(src)
    (src / "mapping.yaml").write_text(f"version: 1\nuniversity: 测试大学\nsources:\n{body}", encoding="utf-8")
    ws, links = tmp_path / "ws", tmp_path / "links.csv"
    runner = CliRunner()
    ran = runner.invoke(app, ["run", "--mapping", str(src / "mapping.yaml"), "--workspace", str(ws)])
    assert ran.exit_code == 0, ran.output
    exported = runner.invoke(app, ["export", "links", "--workspace", str(ws), "--out", str(links)])
    assert exported.exit_code == 0, exported.output
    with open(links, encoding="utf-8") as fh:
        return {r["record_key"]: r["master_id"] for r in csv.DictReader(fh) if r["entity_type"] == "Person"}


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """One run holds every case: each person is far from the others in name and birth date."""
    tmp = tmp_path_factory.mktemp("western")
    office = [("Catherine", "Whitfield", "1995-04-12", "", ""),      # G000
              ("", "Suharto", "1994-08-17", "B 1234-567", "IDN"),    # G001: a one-word name
              ("Wei", "Zhang", "1993-10-30", "E12345678", "CHN"),     # G002
              ("伟", "张", "1992-01-15", "", "")]                      # G003: characters, given + family
    library = [("Whitfeild Catherine", "1995-04-12", "", ""),        # L000: surname first, one typo
               ("Suharto", "1994-08-17", "b1234567", "idn"),          # L001
               ("Wei Zhang", "1993-10-30", "E87654321", "CHN"),       # L002: another passport of China
               ("张伟", "1992-01-15", "", "")]                         # L003
    return tmp / "ws", _run(tmp, office, library)


def test_a_western_name_with_a_typo_in_the_surname_and_swapped_order_is_linked(ran):
    ws, masters = ran
    assert masters["G000"] == masters["L000"]
    # and not only thanks to the broad blockings small data affords: a typo-surviving blocking pairs them
    with Lakehouse(ws / "lakehouse.duckdb", read_only=True) as lake:
        records = {r["unique_id"]: r for r in with_sound_keys(lake.con.sql(PERSON_INPUT_SQL).to_arrow_table())
                   .to_pylist()}
    a, b = records["office:G000"], records["library:L000"]
    assert (a["surname_key"], a["given_key"]) == ("whitfield", "catherine")
    assert a["pinyin_key"] != b["pinyin_key"]  # the exact name keys differ: one typo
    assert not any(all(a[c] is not None and a[c] == b[c] for c in cols) for cols in BLOCKING_COLUMNS)
    assert any(all(a[c] is not None and a[c] == b[c] for c in cols) for cols in TYPO_BLOCKING)


def test_a_one_word_name_links_on_name_birth_date_and_passport(ran):
    _, masters = ran
    assert masters["G001"] == masters["L001"]  # `B 1234-567` and `b1234567` are one passport
    assert len({masters["G001"], masters["L001"], masters["G000"], masters["G002"]}) == 3


def test_a_one_word_author_is_linked_by_name(ran):
    ws, masters = ran
    with Lakehouse(ws / "lakehouse.duckdb", read_only=True) as lake:
        linked = dict(lake.con.execute("SELECT mention, master_id FROM res_mention").fetchall())
    assert linked == {"Suharto": masters["G001"], "Oliver Bennett": masters["G004"]}


def test_two_passports_of_one_country_are_not_the_same_person(ran):
    """Same name and birth date, but two valid passports issued by the same country: the veto holds."""
    ws, masters = ran
    assert masters["G002"] != masters["L002"]
    with Lakehouse(ws / "lakehouse.duckdb", read_only=True) as lake:
        review = lake.con.execute("""SELECT reason FROM res_review WHERE record_a = 'library:L002'
            AND record_b = 'office:G002'""").fetchall()
    assert review and review[0][0].startswith("conflict"), review  # a steward sees it


def test_given_and_family_name_without_a_name_ingest_and_resolve(ran):
    ws, masters = ran
    assert masters["G003"] == masters["L003"]  # 张 + 伟 = 张伟
    with Lakehouse(ws / "lakehouse.duckdb", read_only=True) as lake:
        rows = dict(lake.con.execute("""SELECT record_id, name || ' ' || name_keys FROM dwd_person_record
            WHERE record_id IN ('office:G000', 'office:G001', 'office:G003')""").fetchall())
        derived = lake.con.execute("""SELECT count(*) FROM dwd_statement WHERE property = 'name'
            AND flag = 'derived from given_name + family_name' AND record_id LIKE 'office:%'""").fetchone()[0]
        name = lake.con.execute("""SELECT a.value FROM res_attribute a JOIN res_link l USING (master_id)
            WHERE l.member_id = 'office:G000' AND a.property = 'name'""").fetchone()[0]
        passport = lake.con.execute("SELECT passport_no FROM dwd_person_record WHERE record_id = 'office:G001'"
                                    ).fetchone()[0]
    assert rows == {"office:G000": "Catherine Whitfield whitfield|catherine;catherine|whitfield",
                    "office:G001": "Suharto suharto|", "office:G003": "张伟 zhang|wei"}
    assert derived == 4 + len(CROWD)
    assert name in ("Catherine Whitfield", "Whitfeild Catherine")
    assert passport == "B1234567"


def test_name_parts_passports_and_countries_standardise():
    from ingest.standardise import compose_name, name_keys_of, standardise_nationality, standardise_passport

    assert compose_name("Catherine", "Whitfield") == "Catherine Whitfield"
    assert compose_name("伟", "张") == "张伟" and compose_name(None, "Suharto") == "Suharto"
    assert name_keys_of("José Núñez", "José", "Núñez")[0] == "nunez|jose"  # accents off, family first
    assert name_keys_of("Isabelle", "Isabelle", None) == ["|isabelle"]  # the missing part stays empty
    assert standardise_passport(" e 1234-5678 ") == ("E12345678", None)
    value, flag = standardise_passport("ABC")
    assert value == "ABC" and "not a passport number" in flag  # kept, flagged: it vetoes nothing
    assert standardise_nationality(" usa ") == ("USA", None)
    assert standardise_nationality("美国")[1] is not None


def test_a_passport_typo_does_not_veto_but_a_second_passport_does():
    from resolution.clusters import ConstrainedUnionFind

    uf = ConstrainedUnionFind()
    uf.add("a", None, **{"passport:USA": "E12345678"})
    uf.add("b", None, **{"passport:USA": "E12345687"})  # two digits swapped
    uf.add("c", None, **{"passport:USA": "E87654321"})
    uf.add("d", None, **{"passport:CAN": "E87654321"})  # another country: no conflict
    assert uf.union("a", "b", "model")
    assert not uf.union("a", "c", "model") and uf.find("a") != uf.find("c")
    assert uf.union("a", "d", "model")
    assert uf.union("a", "c", "steward:same", override_exclusive=True)  # a renewed passport
