"""An independent test university (云岭理工大学), written from the project's documentation only
(docs/mapping.md, docs/resolution.md, ontology/campus.ttl) — not from `campus-kg generate`.

`build(out_dir, persons=..., seed=...)` writes eleven exports of nine systems in the shapes real systems
give them, a mapping (docs/mapping.md), and the truth:

- `truth_persons.csv` (source, record_key, entity_type, entity_id): every Person record's true person,
  as `campus-kg evaluate --truth` reads it. External payees have ids X…;
- `truth_mentions.csv` (source, record_key, position, mention, entity_id): every author and project
  leader named in a record, `EXTERNAL` for people from outside, as `--mentions` reads it.

    .venv/bin/python -m tests.corpus.build_corpus OUT_DIR [--persons N] [--seed S]

What makes it hard is listed in `HARD_CASES` and counted in `corpus_stats.json`.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import random
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import opencc
import yaml
from pypinyin import Style, lazy_pinyin

from tests.corpus import names as N

UNIVERSITY = "云岭理工大学"
EMAIL_DOMAIN = "ylut.edu.cn"
ONTOLOGY = Path(__file__).resolve().parents[2] / "ontology" / "campus.ttl"

# (code, full name, names other systems use for it)
COLLEGES = [
    ("01", "计算机科学与技术学院", ["计算机学院", "计科院"]),
    ("02", "机械工程学院", ["机械学院", "机电学院"]),  # 机电学院: its former name
    ("03", "材料科学与工程学院", ["材料学院"]),
    ("04", "化学工程学院", ["化工学院"]),
    ("05", "土木工程学院", ["土木学院"]),
    ("06", "电气与信息工程学院", ["电气学院", "电信学院"]),
    ("07", "生命科学与技术学院", ["生科院"]),
    ("08", "理学院", []),
    ("09", "外国语学院", ["外语学院"]),
    ("10", "管理与经济学院", ["管经学院", "经管学院"]),
    ("11", "艺术与传媒学院", ["艺传学院"]),
    ("12", "建筑与城市规划学院", ["建筑学院"]),
    ("13", "国土资源工程学院", ["国土学院"]),
    ("14", "马克思主义学院", ["马院"]),
]
OFFICES = ["人事处", "教务处", "财务处", "图书馆", "科技处"]
TITLES = ["教授", "副教授", "讲师", "助教", "研究员", "副研究员", "高级工程师", "工程师"]
MAJORS = ["软件工程", "机械设计制造及其自动化", "材料物理", "化学工程与工艺", "土木工程", "电气工程及其自动化",
          "生物技术", "应用数学", "英语", "工商管理", "视觉传达设计", "城乡规划", "地质工程", "思想政治教育"]

HARD_CASES = ["homophone", "traditional", "dotted_name", "twins", "namesakes", "staff_former_phd",
              "legacy_15_digit", "legacy_century_contradiction", "lowercase_x", "international",
              "international_swapped_order", "international_one_word", "international_typo", "name_only_finance",
              "name_only_card", "external_author", "romanised_author", "identifier_typo"]

_s2t = opencc.OpenCC("s2t")


# ---- people ----------------------------------------------------------------------------------------

@dataclass
class Person:
    pid: str
    surname: str            # Chinese surname, or the family name of an international person
    given: str
    sex: str                # "1" male, "2" female
    birth: dt.date
    college: int            # index into COLLEGES, or -1 - office index for administrative staff
    id_number: str | None = None
    passport: str | None = None
    staff_no: str | None = None
    student_no: str | None = None     # current (or, for a former PhD on the staff, former) student number
    level: str | None = None          # 本科 / 硕士 / 博士 for students
    advisor: str | None = None        # pid
    enrol_year: int | None = None
    title: str | None = None
    hire_date: dt.date | None = None
    international: bool = False
    nationality: str | None = None
    dotted: bool = False
    one_word: bool = False
    legacy_id: bool = False           # HR holds the 15-digit form
    century_contradiction: bool = False  # student affairs holds the 15-digit projection of a 20xx birth
    tags: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        if self.one_word:
            return self.given
        if self.international:
            return f"{self.given} {self.surname}"
        if self.dotted:
            return self.given  # the whole dotted name is kept in `given`
        return self.surname + self.given

    @property
    def unit(self) -> str:
        return COLLEGES[self.college][1] if self.college >= 0 else OFFICES[-self.college - 1]

    @property
    def is_staff(self) -> bool:
        return self.staff_no is not None


def _check_char(first17: str) -> str:
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return "10X98765432"[sum(int(c) * w for c, w in zip(first17, weights)) % 11]


def id_number(region: str, birth: dt.date, order: int) -> str:
    body = f"{region}{birth:%Y%m%d}{order:03d}"
    return body + _check_char(body)


def legacy_15(id18: str) -> str:
    """The 15-digit form: no century digits, no check character."""
    return id18[:6] + id18[8:17]


class Population:
    def __init__(self, persons: int, rng: random.Random):
        self.rng = rng
        self.people: list[Person] = []
        self._staff_seq = 0
        self._student_seq: Counter = Counter()
        self._orders: set[tuple[str, dt.date, int]] = set()
        self._surnames = [s for s, _ in N.SURNAMES]
        self._weights = [w for _, w in N.SURNAMES]
        self._build(persons)

    # identifiers
    def _new_id(self, person: Person, region: str | None = None, order: int | None = None) -> str:
        region = region or self.rng.choice(N.XINJIANG_REGIONS if person.dotted else N.REGIONS)
        while True:
            o = order if order is not None else self.rng.randrange(1, 500) * 2 - (person.sex == "1")
            if (region, person.birth, o) not in self._orders:
                self._orders.add((region, person.birth, o))
                return id_number(region, person.birth, o)
            order = None

    def _staff_no(self) -> str:
        self._staff_seq += 1
        return f"1{self._staff_seq:05d}"

    def _student_no(self, year: int, college: int, level: str) -> str:
        key = (year, college, level)
        self._student_seq[key] += 1
        code = COLLEGES[college][0]
        if level == "本科":
            return f"{year}{code}{self._student_seq[key]:04d}"                     # 10 digits
        return f"{year}{'1' if level == '硕士' else '2'}{code}{self._student_seq[key]:05d}"  # 12 digits

    def _given(self) -> str:
        if self.rng.random() < 0.3:
            return self.rng.choice(N.GIVEN_COMMON)
        return self.rng.choice(N.GIVEN_CHARS) + self.rng.choice(N.GIVEN_CHARS)

    def _person(self, kind: str) -> Person:
        rng = self.rng
        pid = f"U{len(self.people) + 1:06d}"
        sex = rng.choice("12")
        if kind == "staff":
            birth = dt.date(rng.randint(1958, 1992), rng.randint(1, 12), rng.randint(1, 28))
        elif kind == "本科":
            birth = dt.date(rng.randint(2000, 2006), rng.randint(1, 12), rng.randint(1, 28))
        else:
            birth = dt.date(rng.randint(1990, 2002), rng.randint(1, 12), rng.randint(1, 28))
        college = rng.randrange(len(COLLEGES))
        if kind == "staff" and rng.random() < 0.12:
            college = -1 - rng.randrange(len(OFFICES))
        p = Person(pid, rng.choices(self._surnames, self._weights)[0], self._given(), sex, birth, college)
        if rng.random() < 0.02:
            p.dotted, p.given, p.surname = True, rng.choice(N.DOTTED_NAMES), ""
            p.tags.append("dotted_name")
        p.id_number = self._new_id(p)
        if rng.random() < 0.15 and p.id_number[-1] == "X":
            p.tags.append("lowercase_x")
        if kind == "staff":
            p.staff_no, p.title = self._staff_no(), rng.choice(TITLES)
            p.hire_date = dt.date(max(p.birth.year + 23, 1982), rng.randint(1, 12), 1) + dt.timedelta(
                days=rng.randint(0, 365 * 8))
            if p.birth.year < 1978 and rng.random() < 0.35:
                p.legacy_id = True
                p.tags.append("legacy_15_digit")
        else:
            p.level = kind
            p.enrol_year = p.birth.year + (18 if kind == "本科" else 22 if kind == "硕士" else 25)
            p.enrol_year = min(p.enrol_year, 2025)
            p.student_no = self._student_no(p.enrol_year, max(college, 0), kind)
            if p.birth.year >= 2000 and rng.random() < 0.01:
                p.century_contradiction = True
                p.tags.append("legacy_century_contradiction")
        self.people.append(p)
        return p

    def _international(self, kind: str) -> Person:
        rng = self.rng
        p = self._person(kind)
        p.international, p.dotted, p.id_number = True, False, None
        p.tags = ["international"]
        p.surname, p.given = rng.choice(N.WESTERN_FAMILY), rng.choice(N.WESTERN_GIVEN)
        if rng.random() < 0.15:
            p.one_word, p.given, p.surname = True, rng.choice(N.ONE_WORD_NAMES), ""
            p.tags.append("international_one_word")
        letters = "EGPK" if rng.random() < 0.5 else "ABCDX"
        p.passport = rng.choice(letters) + f"{rng.randrange(10**7, 10**8)}"
        p.nationality = rng.choice(["USA", "FRA", "DEU", "RUS", "PAK", "VNM", "JPN", "KOR", "IDN", "GHA", "IND"])
        p.legacy_id = False
        return p

    def _build(self, persons: int) -> None:
        rng = self.rng
        n_staff, n_grad, n_intl = int(persons * 0.24), int(persons * 0.2), max(4, int(persons * 0.04))
        n_ug = persons - n_staff - n_grad - n_intl
        staff = [self._person("staff") for _ in range(n_staff)]
        teachers = [s for s in staff if s.college >= 0 and s.title in ("教授", "副教授", "研究员")] or staff
        for _ in range(n_grad):
            g = self._person("博士" if rng.random() < 0.3 else "硕士")
            g.advisor = rng.choice([t for t in teachers if t.college == g.college] or teachers).pid
        for _ in range(n_ug):
            self._person("本科")
        for i in range(n_intl):
            kind = "staff" if i % 5 == 0 else ("本科" if i % 2 else "硕士")
            p = self._international(kind)
            if kind == "硕士":
                p.advisor = rng.choice(teachers).pid
        self._plant_hard_cases(persons, staff, teachers)

    def _plant_hard_cases(self, persons: int, staff: list[Person], teachers: list[Person]) -> None:
        """Twins, namesakes in one college, and PhDs who joined the staff: planted, not left to chance."""
        rng = self.rng
        students = [p for p in self.people if p.level == "本科" and not p.international and not p.dotted]
        # twins: same birth date and surname, different given names, ID numbers with neighbouring order codes
        for a in rng.sample(students, max(2, persons // 150)):
            b = self._person("本科")
            b.surname, b.birth, b.college, b.sex = a.surname, a.birth, a.college, rng.choice("12")
            b.given = self._given()
            while b.given == a.given:
                b.given = self._given()
            region = a.id_number[:6]
            order = int(a.id_number[14:17])
            b.id_number = self._new_id(b, region, order + (2 if b.sex == a.sex else 1))
            b.student_no = self._student_no(a.enrol_year, a.college, "本科")
            b.enrol_year, b.dotted, b.tags = a.enrol_year, False, ["twins"]
            a.tags.append("twins")
        # namesakes: a second person with exactly the same name in the same college
        for a in rng.sample(staff + students, max(3, persons // 100)):
            if a.dotted or a.international:
                continue
            b = self._person(rng.choice(["staff", "本科", "硕士"]))
            b.surname, b.given, b.college, b.dotted = a.surname, a.given, max(a.college, 0), False
            if b.level in ("硕士", "博士"):
                b.advisor = rng.choice([t for t in teachers if t.college == b.college] or teachers).pid
            b.tags = ["namesakes"]
            a.tags.append("namesakes")
        # staff who were PhD students here: a student number from years ago and a staff number now
        for p in rng.sample(staff, max(2, persons // 200)):
            if p.international:
                continue
            p.level, p.enrol_year = "博士", max(p.hire_date.year - 4, 1985)
            p.student_no = self._student_no(p.enrol_year, max(p.college, 0), "博士")
            p.advisor = rng.choice([t for t in teachers if t is not p]).pid
            p.tags.append("staff_former_phd")


# ---- how systems write things ---------------------------------------------------------------------

def pinyin_given(given: str) -> str:
    return "".join(lazy_pinyin(given, style=Style.NORMAL)).capitalize()


def pinyin_surname(surname: str) -> str:
    if surname in N.SURNAME_ROMAN:
        return N.SURNAME_ROMAN[surname]
    return "".join(lazy_pinyin(surname, style=Style.NORMAL)).capitalize()


class Writer:
    """The variations one system's clerks produce: homophones, traditional forms, dots, full-width digits."""

    def __init__(self, rng: random.Random, homophones: dict[str, list[str]]):
        self.rng, self.homophones = rng, homophones

    def chinese_name(self, p: Person, noise: float, encoding: str = "utf-8") -> tuple[str, list[str]]:
        rng = self.rng
        if p.international:
            return self.western_name(p, noise)
        if p.dotted:
            if rng.random() < noise * 3:
                written = p.given.replace("·", rng.choice(N.DOT_VARIANTS[1:]))
                return (written, []) if _encodable(written, encoding) else (p.given, [])
            return p.given, []
        r = rng.random()
        if r < noise:  # a homophone in the given name: 张玮 for 张伟
            i = rng.randrange(len(p.given))
            options = [c for c in self.homophones.get(p.given[i], []) if c != p.given[i]]
            if options:
                return p.surname + p.given[:i] + rng.choice(options) + p.given[i + 1:], ["homophone"]
        elif r < noise * 2:  # traditional characters (a Hong Kong / Taiwan form, or an old system's font)
            written = _s2t.convert(p.surname + p.given)
            if written != p.surname + p.given and _encodable(written, encoding):
                return written, ["traditional"]
        return p.surname + p.given, []

    def western_name(self, p: Person, noise: float) -> tuple[str, list[str]]:
        rng = self.rng
        if p.one_word:
            return (p.given.upper() if rng.random() < 0.3 else p.given), []
        given, tags = p.given, []
        if rng.random() < noise * 2 and len(given) > 3:  # a typo: two letters swapped
            i = rng.randrange(1, len(given) - 2)
            given = given[:i] + given[i + 1] + given[i] + given[i + 2:]
            tags.append("international_typo")
        form = rng.random()
        if form < 0.45:
            return f"{given} {p.surname}", tags
        if form < 0.8:
            return f"{p.surname.upper()} {given}", tags + ["international_swapped_order"]  # family first, as on a visa
        return f"{p.surname}, {given}", tags + ["international_swapped_order"]

    def romanised(self, p: Person, order: str) -> str:
        if p.international:
            return f"{p.given} {p.surname}" if not p.one_word else p.given
        s, g = pinyin_surname(p.surname), pinyin_given(p.given)
        return {"western": f"{g} {s}", "chinese": f"{s} {g}", "comma": f"{s.upper()}, {g}"}[order]

    def fullwidth(self, text: str, chance: float) -> str:
        if text and self.rng.random() < chance:
            return text.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789"})
        return text

    def unit(self, p: Person, formal: float = 0.5) -> str:
        rng = self.rng
        if p.college < 0:
            return p.unit
        full, aliases = COLLEGES[p.college][1], COLLEGES[p.college][2]
        r = rng.random()
        if r < formal or not aliases:
            return full if rng.random() < 0.8 else UNIVERSITY + full
        return rng.choice(aliases)

    def maybe(self, value: str, missing: float) -> str:
        return "" if self.rng.random() < missing else value


def _transpose_digits(code: str, rng: random.Random) -> str:
    """Two neighbouring different digits swapped (the prefix letters stay); unchanged when there are none."""
    spots = [i for i in range(len(code) - 1) if code[i].isdigit() and code[i + 1].isdigit() and code[i] != code[i + 1]]
    if not spots:
        return code
    i = rng.choice(spots)
    return code[:i] + code[i + 1] + code[i] + code[i + 2:]


def _encodable(text: str, encoding: str) -> bool:
    try:
        text.encode(encoding)
        return True
    except UnicodeEncodeError:
        return False


def homophone_table() -> dict[str, list[str]]:
    """Given-name characters grouped by toneless pinyin: each maps to the others of its reading."""
    pool = sorted(set(N.GIVEN_CHARS) | set("玮炜卫薇维娟鹃静婧敏闵丽莉力立强蔷磊垒军君洋阳杨勇永涛韬明铭鸣超朝"
                                           "霞侠平萍刚钢英瑛华桦芳方娜纳杰捷艳燕"))
    by_sound: dict[str, list[str]] = {}
    for ch in pool:
        by_sound.setdefault(lazy_pinyin(ch, style=Style.NORMAL)[0], []).append(ch)
    return {ch: [c for c in by_sound[lazy_pinyin(ch, style=Style.NORMAL)[0]] if c != ch] for ch in pool}


# ---- the exports -----------------------------------------------------------------------------------

@dataclass
class Export:
    source: str
    path: str
    encoding: str
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    delimiter: str = ","

    def write(self, out_dir: Path) -> None:
        target = out_dir / self.path
        target.parent.mkdir(parents=True, exist_ok=True)
        buf = io.StringIO()
        w = csv.writer(buf, delimiter=self.delimiter, lineterminator="\r\n" if self.encoding == "gbk" else "\n")
        w.writerow(self.header)
        w.writerows(self.rows)
        target.write_bytes(buf.getvalue().encode(self.encoding))


def _key(*cells: str) -> str:
    """The record key as ingest reads it: each cell NFKC-normalised and trimmed, joined by '|'."""
    return "|".join(unicodedata.normalize("NFKC", c).strip() for c in cells)


class Corpus:
    def __init__(self, persons: int, seed: int):
        self.rng = random.Random(seed)
        self.pop = Population(persons, self.rng)
        self.w = Writer(self.rng, homophone_table())
        self.by_pid = {p.pid: p for p in self.pop.people}
        self.truth: list[tuple[str, str, str, str]] = []        # source, record_key, entity_type, entity_id
        self.mentions: list[tuple[str, str, int, str, str]] = []  # source, record_key, position, mention, entity_id
        self.case_records: Counter = Counter()
        self.record_tags: list[tuple[str, str, str]] = []         # source, record_key, hard cases of the record
        self.exports: list[Export] = []

    def _person_row(self, export: Export, key: str, p_or_id, row: list[str], tags: list[str] = ()) -> None:
        export.rows.append(row)
        entity = p_or_id if isinstance(p_or_id, str) else p_or_id.pid
        self.truth.append((export.source, key, "Person", entity))
        all_tags = sorted(set(tags) | set([] if isinstance(p_or_id, str) else p_or_id.tags))
        self.record_tags.append((export.source, key, ";".join(all_tags)))
        for t in all_tags:
            self.case_records[t] += 1

    def _id_cell(self, p: Person) -> str:
        if p.international:
            return p.passport or ""
        value = legacy_15(p.id_number) if p.legacy_id else p.id_number
        return value.lower() if "lowercase_x" in p.tags else value

    # 1 HR: 人事管理系统, GBK, ISO dates, 15-digit IDs of older staff
    def hr(self) -> None:
        e = Export("hr_staff", "hr/人事_教职工基本信息.csv", "gbk",
                   ["工号", "姓名", "性别", "出生日期", "证件类型", "证件号码", "所在单位", "职称", "参加工作日期", "手机号码", "电子邮箱"])
        for p in self.pop.people:
            if not p.is_staff:
                continue
            name, tags = p.name, []
            if p.international and not p.one_word:  # HR copies the passport: family name first, in capitals
                name, tags = f"{p.surname.upper()} {p.given}", ["international_swapped_order"]
            email = self.w.maybe(self._email(p), 0.1)
            self._person_row(e, _key(p.staff_no), p, [
                p.staff_no, name, "男" if p.sex == "1" else "女", f"{p.birth:%Y-%m-%d}",
                "护照" if p.international else "居民身份证", self._id_cell(p), p.unit, p.title,
                f"{p.hire_date:%Y-%m-%d}", self.w.maybe(f"1{self.rng.randrange(3, 9)}{self.rng.randrange(10**8, 10**9)}", 0.2),
                email], tags)
        self.exports.append(e)

    def _email(self, p: Person) -> str:
        if p.international:
            return f"{p.given.lower()}.{(p.surname or 'x').lower()}{p.staff_no[-3:]}@{EMAIL_DOMAIN}"
        if p.dotted:
            return f"u{p.staff_no}@{EMAIL_DOMAIN}"
        return f"{pinyin_surname(p.surname).lower()}{pinyin_given(p.given).lower()}{p.staff_no[-3:]}@{EMAIL_DOMAIN}"

    # 2 academic affairs: 教务系统, UTF-8 with BOM, 19990302, codes 1/2
    def undergraduates(self) -> None:
        e = Export("jw_undergraduates", "jw/教务_本科生学籍.csv", "utf-8-sig",
                   ["学号", "姓名", "性别", "出生日期", "证件类型", "证件号码", "学院", "专业", "入学年份"])
        for p in self.pop.people:
            if p.level != "本科" or p.is_staff:
                continue
            name, tags = self.w.chinese_name(p, 0.005)
            self._person_row(e, _key(p.student_no), p, [
                p.student_no, name, p.sex, f"{p.birth:%Y%m%d}", "护照" if p.international else "居民身份证",
                self._id_cell(p), self.w.unit(p, 0.9), MAJORS[max(p.college, 0)], str(p.enrol_year)], tags)
        self.exports.append(e)

    # 3 graduate school: 研究生管理系统, UTF-8, 199903 (month only), advisor's staff number
    def graduates(self) -> None:
        e = Export("yjs_graduates", "yjs/研究生_学籍信息.csv", "utf-8",
                   ["学号", "姓名", "英文姓名", "出生年月", "证件号码", "院系", "导师工号", "培养层次", "入学年份"])
        for p in self.pop.people:
            if p.level not in ("硕士", "博士"):
                continue
            advisor = self.by_pid[p.advisor].staff_no if p.advisor else ""
            if p.international:
                (name, tags), english = self.w.western_name(p, 0.05), f"{p.surname.upper()} {p.given}".strip()
            else:
                (name, tags), english = self.w.chinese_name(p, 0.005), ""
            self._person_row(e, _key(p.student_no), p, [
                p.student_no, name, english, f"{p.birth:%Y%m}", self.w.maybe(self._id_cell(p), 0.08),
                self.w.unit(p, 0.4), advisor, p.level, str(p.enrol_year)], tags)
        self.exports.append(e)

    # 4 student affairs: 学工系统, GBK, 1999/3/2, full-width digits, homophones, missing IDs
    def student_affairs(self) -> None:
        e = Export("xg_students", "xg/学工_学生资助信息.csv", "gbk",
                   ["学号", "姓名", "出生日期", "身份证号", "学院", "家庭经济困难等级", "联系电话"])
        for p in self.pop.people:
            current = p.level and not p.is_staff and not p.international
            if not current or self.rng.random() > 0.55:
                continue
            name, tags = self.w.chinese_name(p, 0.03, "gbk")
            id_cell = self._id_cell(p)
            if p.century_contradiction:
                id_cell = legacy_15(p.id_number)  # typed in from an old household register: 19xx is guessed
            phone = self.w.fullwidth(f"1{self.rng.randrange(3, 9)}{self.rng.randrange(10**8, 10**9)}", 0.2)
            student_no = self.w.fullwidth(p.student_no, 0.1)  # the key cell too: ingest reads it NFKC
            self._person_row(e, _key(student_no), p, [
                student_no, name, f"{p.birth.year}/{p.birth.month}/{p.birth.day}", self.w.maybe(id_cell, 0.1),
                self.w.unit(p, 0.3), self.rng.choice(["", "", "", "一般困难", "困难", "特别困难"]), phone], tags)
        self.exports.append(e)

    # 5-8 research: outputs, one row per author, foreign-language outputs, projects
    def research(self) -> None:
        staff = [p for p in self.pop.people if p.is_staff and p.college >= 0]
        students_of: dict[str, list[Person]] = {}
        for p in self.pop.people:
            if p.advisor and p.level in ("硕士", "博士") and not p.is_staff:
                students_of.setdefault(p.advisor, []).append(p)
        ext_names = [(self.rng.choices(self.pop._surnames, self.pop._weights)[0] + self.pop._given(),
                      self.rng.choice(N.EXTERNAL_INSTITUTIONS)) for _ in range(max(20, len(staff) // 3))]
        outputs = Export("ky_outputs", "ky/科研_成果信息.csv", "utf-8", ["成果编号", "成果名称", "成果类型", "发表年份"])
        authors = Export("ky_output_authors", "ky/科研_成果作者.csv", "utf-8-sig", ["成果编号", "作者序号", "作者姓名", "作者单位"])
        foreign = Export("ky_foreign_outputs", "ky/科研_外文成果.csv", "utf-8",
                         ["成果编号", "Title", "Authors", "Year", "第一作者单位"])
        for i in range(int(len(staff) * 1.5)):
            lead = self.rng.choice(staff)
            team: list[Person | tuple[str, str]] = [lead]
            team += self.rng.sample(students_of.get(lead.pid, []), min(len(students_of.get(lead.pid, [])),
                                                                       self.rng.randint(0, 2)))
            for _ in range(self.rng.choice([0, 0, 1, 1, 2])):
                team.append(self.rng.choice(staff) if self.rng.random() < 0.5 else self.rng.choice(ext_names))
            year = str(self.rng.randint(2015, 2025))
            if self.rng.random() < 0.65:
                no = f"CG{year}{i:05d}"
                outputs.rows.append([no, f"基于{self.rng.choice(MAJORS)}的研究（{i}）", self.rng.choice(["期刊论文", "会议论文", "专著"]), year])
                for rank, a in enumerate(team, start=1):
                    if isinstance(a, Person):
                        name, _ = self.w.chinese_name(a, 0.02)
                        unit, entity = self.w.unit(a, 0.5), a.pid
                    else:
                        name, unit, entity = a[0], a[1], "EXTERNAL"
                    authors.rows.append([no, str(rank), name, unit])
                    self.mentions.append(("ky_output_authors", _key(no, str(rank)), 1, name, entity))
                    self.case_records["external_author" if entity == "EXTERNAL" else "author"] += 1
            else:
                no = f"WW{year}{i:05d}"
                order = self.rng.choice(["western", "chinese", "comma"])
                written = []
                for a in team:
                    if isinstance(a, Person):
                        written.append((self.w.romanised(a, order) if not a.dotted else a.given, a.pid))
                    else:
                        s, g = a[0][:1], a[0][1:]
                        written.append((self.w.romanised(Person("", s, g, "1", dt.date(1980, 1, 1), 0), order), "EXTERNAL"))
                foreign.rows.append([no, f"On {self.rng.choice(['graphs', 'alloys', 'soils', 'proteins', 'markets'])} {i}",
                                     "; ".join(w for w, _ in written), year, self.w.unit(lead, 0.7)])
                for pos, (w, entity) in enumerate(written, start=1):
                    self.mentions.append(("ky_foreign_outputs", _key(no), pos, w, entity))
                    self.case_records["romanised_author"] += 1
        projects = Export("ky_projects", "ky/科研_项目信息.csv", "gbk",
                          ["项目编号", "项目名称", "负责人", "负责人工号", "负责人单位", "立项日期", "经费（万元）"])
        for i in range(max(10, len(staff) // 2)):
            lead = self.rng.choice(staff)
            no = f"XM{2016 + i % 10}{i:04d}"
            name, _ = self.w.chinese_name(lead, 0.02, "gbk")
            start = dt.date(2016 + i % 10, self.rng.randint(1, 12), 1)
            projects.rows.append([no, f"{self.rng.choice(MAJORS)}关键技术研究", name,
                                  self.w.maybe(lead.staff_no, 0.4), self.w.unit(lead, 0.5), f"{start:%Y%m}",
                                  f"{self.rng.randint(5, 300)}.{self.rng.randint(0, 9)}"])
            self.mentions.append(("ky_projects", _key(no), 1, name, lead.pid))
        self.exports += [outputs, authors, foreign, projects]

    # 9 finance: 财务系统, GBK, payee name and unit only (labour fees), including outside payees
    def finance(self) -> None:
        e = Export("cw_payees", "cw/财务_劳务酬金发放.csv", "gbk",
                   ["发放流水号", "收款人", "收款人单位", "银行卡号", "发放金额", "发放日期"])
        payees = [p for p in self.pop.people if (p.is_staff and self.rng.random() < 0.35)
                  or (p.level in ("硕士", "博士") and self.rng.random() < 0.15)]
        outsiders = [(f"X{i + 1:05d}", self.rng.choices(self.pop._surnames, self.pop._weights)[0] + self.pop._given(),
                      self.rng.choice(N.EXTERNAL_INSTITUTIONS[:8])) for i in range(max(5, len(payees) // 8))]
        rows = []
        for p in payees:
            account = f"6222{self.rng.randrange(10**14, 10**15)}"
            for _ in range(self.rng.randint(1, 3)):
                name, tags = self.w.chinese_name(p, 0.03, "gbk")
                rows.append((p, name, self.w.unit(p, 0.5), account, tags))
        for xid, name, inst in outsiders:
            rows.append((xid, name, inst, f"6217{self.rng.randrange(10**14, 10**15)}", []))
        self.rng.shuffle(rows)
        for n, (who, name, unit, account, tags) in enumerate(rows, start=1):
            no = f"CW{2025}{n:07d}"
            self._person_row(e, _key(no), who, [no, name, unit, self.w.maybe(account, 0.05),
                                                f"{self.rng.randint(2, 80) * 50}.00", f"2025-{self.rng.randint(1, 12):02d}-15"],
                             list(tags) + ["name_only_finance"])
        self.exports.append(e)

    # 10 library: 图书管理系统, TSV, J+staff number or a student number in one column
    def library(self) -> None:
        e = Export("tsg_readers", "tsg/图书_读者信息.tsv", "utf-8", ["读者证号", "姓名", "读者类型", "单位", "电子邮箱"],
                   delimiter="\t")
        for p in self.pop.people:
            if self.rng.random() > 0.7:
                continue
            cards = []
            if p.is_staff:
                cards.append(("J" + p.staff_no, "教职工"))
            if p.student_no and (not p.is_staff or self.rng.random() < 0.7):  # a former PhD's old reader card
                cards.append((p.student_no, {"本科": "本科生"}.get(p.level, "研究生")))
            for card, kind in cards:
                name, tags = self.w.chinese_name(p, 0.01)
                email = self._email(p) if kind == "教职工" and self.rng.random() < 0.6 else ""
                self._person_row(e, _key(card), p, [card, name, kind, self.w.unit(p, 0.6), email], tags)
        self.exports.append(e)

    # 11 campus card: 一卡通系统, UTF-8 with BOM, CW…/T… key holding a staff or student number
    def campus_card(self) -> None:
        e = Export("ykt_cardholders", "ykt/一卡通_持卡人.csv", "utf-8-sig", ["卡号", "持卡人姓名", "关联编号", "部门", "性别"])
        n = 0
        for p in self.pop.people:
            if self.rng.random() > 0.9:
                continue
            n += 1
            card = f"{880000 + n}"
            link = ("CW" + p.staff_no) if p.is_staff else ("T" + p.student_no)
            tags = ["name_only_card"] if self.rng.random() < 0.06 else []
            if tags:
                link = ""
            elif self.rng.random() < 0.01:  # typed by hand at the card office: two digits swapped
                link, tags = _transpose_digits(link, self.rng), ["identifier_typo"]
            name, t2 = self.w.chinese_name(p, 0.02)
            if p.international and self.rng.random() < 0.5:
                name = name.upper()
            self._person_row(e, _key(card), p, [card, name, link, self.w.unit(p, 0.3),
                                                self.rng.choice(["男", "女", "未知"]) if self.rng.random() < 0.05 else
                                                ("男" if p.sex == "1" else "女")], tags + t2)
        self.exports.append(e)

    # 12 international office: 留学生管理系统, given name and surname in two columns, passport, nationality
    def international_office(self) -> None:
        e = Export("gjc_international", "gjc/国际处_留学生信息.csv", "utf-8",
                   ["学号", "Given name", "Surname", "护照号", "国籍", "出生日期"])
        for p in self.pop.people:
            if not p.international or p.is_staff:
                continue
            passport = p.passport if self.rng.random() < 0.8 else f"{p.passport[0].lower()} {p.passport[1:5]}-{p.passport[5:]}"
            given = p.given if not p.one_word else ""
            surname = p.surname if not p.one_word else p.given
            self._person_row(e, _key(p.student_no), p, [p.student_no, given, surname, passport, p.nationality or "",
                                                        f"{p.birth:%d/%m/%Y}"])
        self.exports.append(e)

    def build_all(self) -> None:
        self.hr()
        self.undergraduates()
        self.graduates()
        self.student_affairs()
        self.research()
        self.finance()
        self.library()
        self.campus_card()
        self.international_office()


# ---- mapping ---------------------------------------------------------------------------------------

def ontology_has(prop: str) -> bool:
    """Whether the ontology defines a property (by graph name): passport_no, given_name and family_name
    are being added; the mapping uses them once they exist."""
    return f'ckg:graphName "{prop}"' in ONTOLOGY.read_text(encoding="utf-8")


ID_REGEX = r"^(\d{17}[\dXx]|\d{15})$"
PASSPORT_REGEX = r"^([A-Z]{1,2}\d{6,8})$"


def _id_fields() -> list[dict] | dict:
    if ontology_has("passport_no"):
        return [{"property": "id_number", "regex": ID_REGEX}, {"property": "passport_no", "regex": PASSPORT_REGEX}]
    # No passport property yet: the passport goes to id_number, the nearest identifier; it fails the
    # GB 11643 check and stays a flagged statement, so it links nothing.
    return {"property": "id_number"}


def mapping(corpus: Corpus) -> dict:
    aliases = {a: full for _, full, al in COLLEGES for a in al}
    sex = {"男": "1", "女": "2", "未知": "0"}
    def system(code: str, name: str, department: str, table: str) -> dict:
        return {"system": code, "system_name": name, "department": department, "table": table}

    src = {e.source: e for e in corpus.exports}

    def base(source: str, entity: str, key: list[str]) -> dict:
        e = src[source]
        out = {"name": source, "path": e.path, "format": "tsv" if e.delimiter == "\t" else "csv",
               "encoding": e.encoding,
               "entity_type": entity, "record_key": key}
        return out

    sources = [
        {**base("hr_staff", "Person", ["工号"]), **system("RS", "人事管理系统", "人事处", "教职工基本信息"),
         "fields": {"工号": {"property": "staff_no"}, "姓名": {"property": "name"},
                    "性别": {"property": "sex", "codes": {"男": "1", "女": "2"}},
                    "出生日期": {"property": "birth_date", "date_formats": ["%Y-%m-%d"]},
                    "证件号码": _id_fields(), "所在单位": {"property": "org_name"},
                    "职称": {"property": "job_title"}, "参加工作日期": {"property": "hire_date"},
                    "手机号码": {"property": "phone", "optional": True}, "电子邮箱": {"property": "email", "optional": True}},
         "relationships": [{"type": "MEMBER_OF", "column": "所在单位", "target": "Organisation", "match_on": "name",
                            "properties": {"role": "职称", "start_date": "参加工作日期"}}],
         "authority": {"name": 1, "id_number": 1, "birth_date": 1, "sex": 1, "staff_no": 1}},
        {**base("jw_undergraduates", "Person", ["学号"]), **system("JW", "教务管理系统", "教务处", "本科生学籍"),
         "fields": {"学号": {"property": "student_no"}, "姓名": {"property": "name"}, "性别": {"property": "sex"},
                    "出生日期": {"property": "birth_date", "date_formats": ["%Y%m%d"]}, "证件号码": _id_fields(),
                    "学院": {"property": "org_name"}, "专业": {"property": "major"}, "入学年份": {"property": "enrol_year"}},
         "relationships": [{"type": "MEMBER_OF", "column": "学院", "target": "Organisation", "match_on": "name"}],
         "authority": {"name": 1, "student_no": 1, "birth_date": 2}},
        {**base("yjs_graduates", "Person", ["学号"]), **system("YJS", "研究生管理系统", "研究生院", "研究生学籍"),
         "fields": {"学号": {"property": "student_no"}, "姓名": {"property": "name"},
                    "出生年月": {"property": "birth_date", "date_formats": ["%Y%m"]}, "证件号码": _id_fields(),
                    "院系": {"property": "org_name"}, "培养层次": {"property": "degree_level"},
                    "入学年份": {"property": "enrol_year"}},
         "relationships": [{"type": "MEMBER_OF", "column": "院系", "target": "Organisation", "match_on": "name"},
                           {"type": "ADVISES", "column": "导师工号", "target": "Person", "match_on": "staff_no",
                            "direction": "in"}],
         "authority": {"name": 2, "student_no": 1}},
        {**base("xg_students", "Person", ["学号"]), **system("XG", "学生工作管理系统", "学生工作处", "学生资助信息"),
         "fields": {"学号": {"property": "student_no"}, "姓名": {"property": "name"},
                    "出生日期": {"property": "birth_date"}, "身份证号": {"property": "id_number"},
                    "学院": {"property": "org_name"},
                    "家庭经济困难等级": {"property": "economic_hardship", "optional": True},
                    "联系电话": {"property": "phone"}},
         "authority": {"economic_hardship": 1, "phone": 2}},
        {**base("ky_outputs", "Publication", ["成果编号"]), **system("KY", "科研管理系统", "科技处", "科研成果"),
         "fields": {"成果名称": {"property": "title"}, "发表年份": {"property": "publication_year"}}},
        # One row per author with that author's own unit: a mention source of the outputs (docs/mapping.md).
        {**base("ky_output_authors", "Publication", ["成果编号", "作者序号"]),
         **system("KY", "科研管理系统", "科技处", "成果作者"),
         "mentions": {"parent": {"source": "ky_outputs", "key": ["成果编号"]}, "relationship": "AUTHOR_OF",
                      "name": "作者姓名", "position": "作者序号", "properties": {"rank": "作者序号"},
                      "context": {"org_name": "作者单位"}}},
        {**base("ky_foreign_outputs", "Publication", ["成果编号"]),
         **system("KY", "科研管理系统", "科技处", "外文成果"),
         "fields": {"Title": {"property": "title"}, "Year": {"property": "publication_year"},
                    "第一作者单位": {"property": "org_name"}},
         "relationships": [{"type": "AUTHOR_OF", "column": "Authors", "target": "Person", "match_on": "author_name",
                            "direction": "in", "split": "authors", "properties": {"rank": "@position"}}]},
        {**base("ky_projects", "Project", ["项目编号"]), **system("KY", "科研管理系统", "科技处", "科研项目"),
         "fields": {"项目名称": {"property": "title"}, "立项日期": {"property": "project_start"},
                    "经费（万元）": {"property": "funding"}, "负责人单位": {"property": "org_name"}},
         "relationships": [{"type": "LEADS", "column": "负责人工号", "target": "Person", "match_on": "staff_no",
                            "direction": "in"},
                           {"type": "LEADS", "column": "负责人", "target": "Person", "match_on": "name",
                            "direction": "in"}]},
        {**base("cw_payees", "Person", ["发放流水号"]), **system("CW", "财务管理系统", "财务处", "劳务酬金发放"),
         "fields": {"收款人": {"property": "name"}, "收款人单位": {"property": "org_name"},
                    "银行卡号": {"property": "bank_account"}},
         "authority": {"bank_account": 1}},
        {**base("tsg_readers", "Person", ["读者证号"]), **system("TSG", "图书管理系统", "图书馆", "读者信息"),
         "fields": {"读者证号": [{"property": "staff_no", "regex": r"^J(\d{6})$"},
                                {"property": "student_no", "regex": r"^(\d{10,12})$"}],
                    "姓名": {"property": "name"}, "单位": {"property": "org_name"},
                    "电子邮箱": {"property": "email", "optional": True}}},
        {**base("ykt_cardholders", "Person", ["卡号"]), **system("YKT", "一卡通系统", "后勤处", "持卡人信息"),
         "fields": {"卡号": {"property": "card_no"}, "持卡人姓名": {"property": "name"},
                    "关联编号": [{"property": "staff_no", "regex": r"^CW(\d{6})$"},
                                {"property": "student_no", "regex": r"^T(\d{10,12})$"}],
                    "部门": {"property": "org_name"}, "性别": {"property": "sex", "codes": sex}},
         "authority": {"card_no": 1}},
    ]
    intl = {**base("gjc_international", "Person", ["学号"]), **system("GJC", "留学生管理系统", "国际交流处", "留学生信息"),
            "fields": {"学号": {"property": "student_no"}, "出生日期": {"property": "birth_date",
                                                                    "date_formats": ["%d/%m/%Y"]}}}
    if ontology_has("given_name") and ontology_has("family_name"):
        intl["fields"].update({"Given name": {"property": "given_name", "optional": True},
                               "Surname": {"property": "family_name"}})
    else:  # no name parts in the ontology: the surname column is the nearest thing to a name
        intl["fields"]["Surname"] = {"property": "name"}
    if ontology_has("passport_no"):
        intl["fields"]["护照号"] = {"property": "passport_no"}
    else:
        intl["fields"]["护照号"] = {"property": "id_number"}
    if ontology_has("nationality"):
        intl["fields"]["国籍"] = {"property": "nationality"}
    sources.append(intl)
    return {"version": 1, "university": UNIVERSITY, "organisation_aliases": aliases, "sources": sources}


# ---- entry point -----------------------------------------------------------------------------------

def build(out_dir: Path | str, persons: int = 2000, seed: int = 7) -> Path:
    """Writes the exports, mapping.yaml, truth_persons.csv, truth_mentions.csv and corpus_stats.json
    into out_dir; returns the mapping's path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    corpus = Corpus(persons, seed)
    corpus.build_all()
    for e in corpus.exports:
        e.write(out)
    mapping_path = out / "mapping.yaml"
    mapping_path.write_text("# written by tests/corpus/build_corpus.py from docs/mapping.md\n" + yaml.safe_dump(
        mapping(corpus), allow_unicode=True, sort_keys=False, width=200), encoding="utf-8")
    with (out / "truth_persons.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["source", "record_key", "entity_type", "entity_id"])
        w.writerows(corpus.truth)
    with (out / "truth_mentions.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["source", "record_key", "position", "mention", "entity_id"])
        w.writerows(corpus.mentions)
    with (out / "truth_cases.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["source", "record_key", "cases"])
        w.writerows(corpus.record_tags)
    people = corpus.pop.people
    stats = {"persons": len(people), "records": {e.source: len(e.rows) for e in corpus.exports},
             "person_records": len(corpus.truth), "mentions": len(corpus.mentions),
             "hard_case_persons": dict(sorted(Counter(t for p in people for t in set(p.tags)).items())),
             "hard_case_records": dict(sorted(corpus.case_records.items())),
             "passport_property": "passport_no" if ontology_has("passport_no") else "id_number (no passport_no yet)"}
    (out / "corpus_stats.json").write_text(json.dumps(stats, ensure_ascii=False, indent=1), encoding="utf-8")
    return mapping_path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--persons", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    path = build(args.out_dir, args.persons, args.seed)
    print(path)
    print((path.parent / "corpus_stats.json").read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
