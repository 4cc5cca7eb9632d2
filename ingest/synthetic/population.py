"""The true population: people, colleges and their identifiers, before any system writes them down."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

from faker.providers.person.zh_CN import Provider as ZhNames
from pypinyin import lazy_pinyin

from ingest.idcard import check_character

UNIVERSITY = "漓江师范大学"


@dataclass(frozen=True)
class College:
    code: int
    name: str
    former_name: str | None  # before a renaming (older records still carry it)
    nickname: str
    discipline: str  # 2022 catalogue first-level code
    majors: tuple[str, ...]


COLLEGES = (
    College(1, "计算机科学与工程学院", "计算机科学与信息工程学院", "计算机学院", "0812", ("计算机科学与技术", "软件工程", "网络工程")),
    College(2, "数学与统计学院", None, "数统学院", "0701", ("数学与应用数学", "统计学")),
    College(3, "物理科学与技术学院", None, "物理学院", "0702", ("物理学", "光电信息科学与工程")),
    College(4, "化学与药学学院", "化学化工学院", "化药学院", "0703", ("化学", "药学")),
    College(5, "生命科学学院", None, "生科院", "0710", ("生物科学", "生物技术")),
    College(6, "文学院", None, "文学院", "0501", ("汉语言文学", "秘书学")),
    College(7, "外国语学院", None, "外院", "0502", ("英语", "日语", "翻译")),
    College(8, "历史文化与旅游学院", "历史文化学院", "历史学院", "0602", ("历史学", "旅游管理")),
    College(9, "法学院", None, "法学院", "0301", ("法学",)),
    College(10, "经济管理学院", None, "经管学院", "1202", ("会计学", "工商管理", "经济学")),
    College(11, "教育学部", "教育科学学院", "教育学院", "0401", ("教育学", "学前教育", "心理学")),
    College(12, "马克思主义学院", None, "马院", "0305", ("思想政治教育",)),
    College(13, "体育与健康学院", "体育学院", "体育学院", "0403", ("体育教育", "社会体育指导与管理")),
    College(14, "音乐学院", None, "音乐学院", "1301", ("音乐学", "舞蹈学")),
    College(15, "美术学院", None, "美院", "1301", ("美术学", "视觉传达设计")),
    College(16, "电子与信息工程学院", "电子工程学院", "电子学院", "0810", ("电子信息工程", "通信工程")),
    College(17, "环境与资源学院", None, "环资学院", "0830", ("环境科学", "地理科学")),
    College(18, "政治与公共管理学院", None, "政管学院", "1204", ("行政管理", "政治学与行政学")),
)
ADMIN_UNITS = ("人事处", "教务处", "财务处", "资产管理处", "图书馆", "研究生院", "学生工作处", "科学技术处")

ETHNIC = (("01", "汉族", 0.84), ("08", "壮族", 0.11), ("13", "瑶族", 0.015), ("03", "回族", 0.01),
          ("06", "苗族", 0.01), ("12", "侗族", 0.01), ("05", "维吾尔族", 0.005))
AREA_CODES = ("450102", "450103", "450105", "450305", "450311", "450321", "450502", "450802", "451002",
              "430102", "440106", "110105", "320102", "510104", "360102")
XINJIANG_AREA = ("650102", "650103", "653101")
UYGHUR_GIVEN = ("买买提", "艾力", "阿依古丽", "古丽娜尔", "吐尔逊", "艾合买提", "热依拉", "努尔", "阿不都", "迪丽拜尔")
TITLES = ("助教", "讲师", "副教授", "教授", "工程师", "高级工程师", "副研究员", "研究员")
# A few names so common that namesakes are certain (张伟 is shared by many different people).
VERY_COMMON = ("张伟", "王伟", "王芳", "李伟", "李娜", "张敏", "李静", "王静", "刘伟", "王秀英", "张丽", "李强")


@dataclass
class TruePerson:
    pid: str
    name: str
    sex: str
    birth: dt.date
    id_number: str
    ethnic: str
    phone: str
    role: str  # staff / undergrad / master / phd
    college: College | None
    unit: str
    email: str | None = None
    staff_no: str | None = None
    student_no: str | None = None
    former_student_no: str | None = None  # a PhD graduate who joined the staff
    enrol_year: int | None = None
    hire_date: dt.date | None = None
    title: str | None = None
    major: str | None = None
    advisor: str | None = None  # pid
    twin_of: str | None = None
    teacher: bool = False


@dataclass
class Population:
    persons: list[TruePerson]
    by_pid: dict[str, TruePerson] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_pid = {p.pid: p for p in self.persons}


class _Names:
    def __init__(self, rng: random.Random):
        self.rng = rng
        self.surnames = list(ZhNames.last_names.keys())
        self.surname_w = list(ZhNames.last_names.values())
        self.male = list(ZhNames.first_names_male)
        self.female = list(ZhNames.first_names_female)

    def given(self, sex: str) -> str:
        pool = self.male if sex == "1" else self.female
        first = self.rng.choice(pool)
        if len(first) == 1 and self.rng.random() < 0.55:
            first += self.rng.choice(pool)[0]
        return first

    def full(self, sex: str) -> str:
        if self.rng.random() < 0.03:
            return self.rng.choice(VERY_COMMON)
        return self.rng.choices(self.surnames, self.surname_w)[0] + self.given(sex)

    def uyghur(self) -> str:
        a, b = self.rng.sample(UYGHUR_GIVEN, 2)
        return f"{a}·{b}"


def _id_number(rng: random.Random, area: str, birth: dt.date, sex: str, used: set[str]) -> str:
    while True:
        seq = rng.randrange(0, 500) * 2 + (1 if sex == "1" else 0)
        if seq == 0:
            continue
        first17 = f"{area}{birth:%Y%m%d}{seq:03d}"
        value = first17 + check_character(first17)
        if value not in used:
            used.add(value)
            return value


def _birth(rng: random.Random, start_year: int, end_year: int) -> dt.date:
    start = dt.date(start_year, 1, 1).toordinal()
    end = dt.date(end_year, 12, 31).toordinal()
    return dt.date.fromordinal(rng.randint(start, end))


def _phone(rng: random.Random) -> str:
    return rng.choice(("138", "139", "158", "186", "136", "177", "150", "189")) + f"{rng.randrange(10**8):08d}"


def build_population(n: int, rng: random.Random, twin_rate: float = 0.01) -> Population:
    names = _Names(rng)
    used_ids: set[str] = set()
    persons: list[TruePerson] = []
    n_staff = max(10, int(n * 0.18))
    counters = {"staff": 100000}
    student_seq: dict[tuple[int, int, int], int] = {}

    def new_person(role: str, sex: str | None = None, birth: dt.date | None = None, area: str | None = None,
                   surname: str | None = None) -> TruePerson:
        sex = sex or rng.choice("12")
        minority = surname is None and rng.random() < 0.02
        if minority:
            name, ethnic, area = names.uyghur(), "05", area or rng.choice(XINJIANG_AREA)
        else:
            name = (surname + names.given(sex)) if surname else names.full(sex)
            ethnic = rng.choices([e[0] for e in ETHNIC[:-1]], [e[2] for e in ETHNIC[:-1]])[0]
            area = area or rng.choice(AREA_CODES)
        if birth is None:
            birth = _birth(rng, 1960, 1995) if role == "staff" else _birth(rng, 1996 if role == "phd" else 2000, 2007)
        pid = f"T{len(persons) + 1:08d}"
        return TruePerson(pid=pid, name=name, sex=sex, birth=birth, id_number=_id_number(rng, area, birth, sex, used_ids),
                          ethnic=ethnic, phone=_phone(rng), role=role, college=None, unit="")

    def student_no(p: TruePerson, level: int) -> str:
        key = (p.enrol_year, p.college.code, level)  # type: ignore[union-attr]
        student_seq[key] = student_seq.get(key, 0) + 1
        return f"{p.enrol_year}{p.college.code:02d}{level}{student_seq[key]:04d}"  # type: ignore[union-attr]

    # Staff: teachers belong to colleges, the rest to administrative units.
    teachers_by_college: dict[int, list[TruePerson]] = {}
    for _ in range(n_staff):
        p = new_person("staff")
        counters["staff"] += 1
        p.staff_no = str(counters["staff"])
        p.teacher = rng.random() < 0.75
        if p.teacher:
            p.college = rng.choice(COLLEGES)
            p.unit = p.college.name
            teachers_by_college.setdefault(p.college.code, []).append(p)
        else:
            p.unit = rng.choice(ADMIN_UNITS)
        hire_year = min(2025, max(p.birth.year + 24, rng.randint(1985, 2025)))
        p.hire_date = dt.date(hire_year, rng.choice((7, 9)), 1)
        p.title = rng.choice(TITLES)
        p.email = f"{''.join(lazy_pinyin(p.name.replace('·', '')))}{rng.randrange(100)}@ljnu.edu.cn"
        if p.teacher and hire_year >= 2012 and rng.random() < 0.25:
            # A PhD of this university who joined the staff: one person, a student and a staff number.
            p.enrol_year = hire_year - 4
            p.former_student_no = student_no(p, 3)
        persons.append(p)

    n_students = n - n_staff
    while len(persons) < n:
        r = rng.random()
        role = "undergrad" if r < 0.73 else ("master" if r < 0.93 else "phd")
        p = new_person(role)
        _student_details(rng, p, teachers_by_college, student_no)
        persons.append(p)
        if len(persons) < n and rng.random() < twin_rate:
            # Twins: same surname, birth date and birthplace; different given names and ID numbers.
            surname = p.name[0] if "·" not in p.name else None
            t = new_person(role, birth=p.birth, area=p.id_number[:6], surname=surname)
            t.twin_of = p.pid
            _student_details(rng, t, teachers_by_college, student_no, college=p.college, enrol_year=p.enrol_year)
            persons.append(t)
    assert n_students >= 0
    return Population(persons)


def _student_details(rng, p: TruePerson, teachers_by_college, student_no, college=None, enrol_year=None) -> None:
    p.college = college or rng.choice(COLLEGES)
    p.unit = p.college.name
    p.major = rng.choice(p.college.majors)
    level = {"undergrad": 1, "master": 2, "phd": 3}[p.role]
    p.enrol_year = enrol_year or rng.randint(2021 if level == 1 else 2020, 2025)
    p.student_no = student_no(p, level)
    if level > 1 and teachers_by_college.get(p.college.code):
        p.advisor = rng.choice(teachers_by_college[p.college.code]).pid
