"""Mapping errors name the line and key; encodings are detected; runs record what changed."""

import codecs

import pytest

from ingest.lakehouse import Lakehouse, fetch_one
from ingest.load import ingest
from ingest.mapping import MappingError, load_mapping
from ingest.readers import detect_encoding

MAPPING = """version: 1
sources:
  - name: staff
    path: staff.csv
    system: HR
    system_name: 人事系统
    department: 人事处
    table: 教职工
    entity_type: Person
    record_key: [NO]
    fields:
      NO: {property: staff_no}
      姓名: {property: name}
      性别: {property: sex, codes: {男: "1", 女: "2"}}
"""


def test_mapping_error_names_file_line_and_key(tmp_path):
    bad = MAPPING.replace("{property: name}", "{property: nmae}").replace("table: 教职工", "table: 教职工\n    colour: red")
    (tmp_path / "mapping.yaml").write_text(bad, encoding="utf-8")
    with pytest.raises(MappingError) as err:
        load_mapping(tmp_path / "mapping.yaml")
    lines = str(err.value).splitlines()
    assert any(":9: sources[0] (staff).colour: Extra inputs are not permitted" in x for x in lines), lines
    assert any(":14: sources[0] (staff).fields.姓名.property: property 'nmae' is not defined" in x for x in lines)
    assert not any("valid list" in x for x in lines)  # the other branch of "one rule or a list" is noise


def test_property_must_belong_to_the_entity_type(tmp_path):
    (tmp_path / "mapping.yaml").write_text(MAPPING.replace("{property: name}", "{property: asset_no}"), "utf-8")
    with pytest.raises(MappingError, match=r"not properties of Person: 姓名 → asset_no"):
        load_mapping(tmp_path / "mapping.yaml")


def test_an_authority_rank_outside_1_to_999_is_refused(tmp_path):
    """Survivorship sorts on the rank (1 = the authoritative source): 0 or a negative rank would
    outrank a steward's correction, which is applied as rank 0."""
    bad = MAPPING.replace("    fields:\n", "    authority: {name: 0}\n    fields:\n")
    (tmp_path / "mapping.yaml").write_text(bad, encoding="utf-8")
    with pytest.raises(MappingError, match=r"sources\[0\] \(staff\)\.authority\.name: .*greater than or equal to 1"):
        load_mapping(tmp_path / "mapping.yaml")


def test_yes_and_no_are_column_names_not_booleans(tmp_path):
    (tmp_path / "mapping.yaml").write_text(MAPPING, encoding="utf-8")
    assert load_mapping(tmp_path / "mapping.yaml").sources[0].record_key == ["NO"]


@pytest.mark.parametrize(("text", "encoding", "expected"), [
    ("工号,姓名\n1,张伟\n", "utf-8", "utf-8"),
    ("工号,姓名\n1,张伟\n", "utf-8-sig", "utf-8-sig"),
    ("工号,姓名\n1,张伟\n", "gbk", "gb18030"),
    ("工号,姓名\n1,𠀀\n", "gb18030", "gb18030"),  # a character outside GBK
])
def test_encoding_detection(tmp_path, text, encoding, expected):
    path = tmp_path / "x.csv"
    path.write_bytes(text.encode(encoding))
    assert codecs.lookup(detect_encoding(path)).name == codecs.lookup(expected).name
    assert path.read_bytes().decode(detect_encoding(path)).lstrip("\ufeff") == text


def _write(tmp_path, rows):
    (tmp_path / "staff.csv").write_text("NO,姓名,性别\n" + "".join(r + "\n" for r in rows), encoding="utf-8")


def test_runs_record_new_changed_deleted_and_keep_each_raw_version_once(tmp_path):
    (tmp_path / "mapping.yaml").write_text(MAPPING, encoding="utf-8")
    mapping = load_mapping(tmp_path / "mapping.yaml")
    with Lakehouse(tmp_path / "lake.duckdb") as lake:
        _write(tmp_path, ["1,张伟,男", "2,李娜,女", "3,王芳,女"])
        first = ingest(mapping, lake)
        assert (first.sources[0].new, first.sources[0].changed) == (3, 0)
        _write(tmp_path, ["1,张伟,男", "2,李娜,男", "4,赵六,男"])  # 2 changed, 3 deleted, 4 new
        # one of three records gone is over the deletion guard's 20 %: held back until allowed
        guarded = ingest(mapping, lake).sources[0]
        assert guarded.held_back == "deletion_guard" and "1 of the source's 3 records" in guarded.problem
        assert (guarded.new, guarded.changed, guarded.deleted) == (0, 0, 0)
        second = ingest(mapping, lake, allow_deletions=True)
        s = second.sources[0]
        assert (s.new, s.changed, s.deleted, s.unchanged) == (1, 1, 1, 1)
        changes = dict(lake.con.execute("SELECT record_id, change FROM change_set WHERE run_id = ?",
                                        [second.run_id]).fetchall())
        assert changes == {"staff:2": "changed", "staff:3": "deleted", "staff:4": "new"}
        # the raw layer holds every version once: 张伟 is not stored again, 李娜 twice
        raw = lake.con.execute("""SELECT _record_key, 性别 FROM ods_staff JOIN ingest_run ON run_id = _run_id
            ORDER BY 1, started_at""").fetchall()
        assert raw == [("1", "男"), ("2", "女"), ("2", "男"), ("3", "女"), ("4", "男")]
        seen = fetch_one(lake.con, "SELECT first_seen_run, version_run FROM dwd_record WHERE record_id = 'staff:2'")
        assert seen == (first.run_id, second.run_id)
        third = ingest(mapping, lake)
        assert not third.changed
