"""Bad rows are quarantined with file, row and field; read = loaded + quarantined."""

from ingest.lakehouse import Lakehouse
from ingest.load import ingest
from ingest.mapping import load_mapping

MAPPING = """
version: 1
sources:
  - name: staff
    path: staff.csv
    encoding: utf-8
    system: HR
    system_name: 人事系统
    department: 人事处
    table: 教职工
    entity_type: Person
    record_key: [工号]
    fields:
      工号: {property: staff_no}
      姓名: {property: name}
      身份证: {property: id_number}
"""


def test_ragged_empty_key_duplicate_and_undecodable_rows(tmp_path):
    (tmp_path / "mapping.yaml").write_text(MAPPING, encoding="utf-8")
    rows = ["工号,姓名,身份证", "100001,张伟,11010519491231002X", "100002,李娜", ",王芳,",
            "100001,张伟,11010519491231002X", "100003,赵六,110105194912310021"]
    data = ("\n".join(rows) + "\n").encode("utf-8") + "100004,".encode() + b"\xff\xfe" + b",\n"
    (tmp_path / "staff.csv").write_bytes(data)
    with Lakehouse(tmp_path / "lake.duckdb") as lake:
        result = ingest(load_mapping(tmp_path / "mapping.yaml"), lake)
        stats = result.sources[0]
        assert (stats.read, stats.loaded, stats.quarantined) == (6, 2, 4)
        reasons = lake.con.execute("SELECT row_no, field, reason FROM quarantine ORDER BY row_no").fetchall()
        flagged = lake.con.execute("SELECT flag FROM dwd_statement WHERE property = 'id_number' AND flag IS NOT NULL"
                                   ).fetchall()
    assert [r[0] for r in reasons] == [3, 4, 5, 7]
    assert "cells" in reasons[0][2] and reasons[1][1] == "工号" and "duplicate" in reasons[2][2]
    assert reasons[3][1] == "姓名" and "utf-8" in reasons[3][2]
    # A bad check character is a soft failure: the record stays, the field is flagged.
    assert flagged == [("invalid ID number: check character is wrong",)]
