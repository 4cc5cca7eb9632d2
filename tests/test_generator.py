import csv
import filecmp

from ingest.synthetic import generate


def test_same_seed_same_exports_and_truth_covers_every_row(tmp_path):
    a = generate(tmp_path / "a", persons=300, seed=3)
    b = generate(tmp_path / "b", persons=300, seed=3)
    for name in ("hr/人事_教职工基本信息.csv", "ky/科研_论文成果.csv", "card/一卡通_账户.csv", "truth.csv"):
        assert filecmp.cmp(a.out_dir / name, b.out_dir / name, shallow=False), name
    with open(a.truth_path, encoding="utf-8") as fh:
        truth = list(csv.DictReader(fh))
    assert len(truth) == a.records
    assert {r["source"] for r in truth} == set(a.by_source)


def test_the_messiness_of_the_brief_is_present(tmp_path):
    g = generate(tmp_path, persons=3000, seed=11, messiness=0.08)
    card = (tmp_path / "card/一卡通_账户.csv").read_text(encoding="gbk")
    students = (tmp_path / "jw/教务_学生学籍.csv").read_text(encoding="utf-8-sig")
    affairs = (tmp_path / "xg/学工_学生基本信息.csv").read_text(encoding="gb18030")
    research = (tmp_path / "ky/科研_论文成果.csv").read_text(encoding="utf-8")
    rows = [r.split(",") for r in card.splitlines()[1:]]
    assert any(len(r[3]) == 15 for r in rows), "legacy 15-digit ID numbers"
    assert "x\n" in students or "x," in students, "lower-case x check character"
    assert any("\uff10" <= ch <= "\uff19" for ch in students), "full-width digits"
    assert "\u3000" in affairs, "ideographic space inside names"
    assert "·" in affairs or "•" in affairs, "middle-dot names"
    assert any(s in research for s in ("; ", ", ")), "romanised author lists"
    assert "计算机科学与信息工程学院" in (tmp_path / "yjs/研究生_学籍信息.csv").read_text(encoding="utf-8"), "a renamed college"
    with open(g.mentions_path, encoding="utf-8") as fh:
        mentions = list(csv.DictReader(fh))
    assert any(m["entity_id"] == "EXTERNAL" for m in mentions)
