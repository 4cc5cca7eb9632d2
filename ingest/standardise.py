"""Standardisation of single values. Each function returns the standard value (or None) and
never raises on bad input: problems are reported as a flag string that the ingest keeps."""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata
from functools import lru_cache

import opencc
import phonenumbers

# Middle-dot look-alikes used in minority names (买买提·艾力): ASCII dot, bullets, katakana dot...
_DOTS = re.compile(r"[\.\u2022\u2027\u30fb\uff0e\uff65\u00b7\u0387\u16eb\u2219\u22c5\u2e31]")
_SPACES = re.compile(r"[\s\u3000]+")
_HAN = re.compile(r"[\u3400-\u9fff]")


@lru_cache(maxsize=1)
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    return _t2s().convert(text)


def clean_text(raw: object) -> str | None:
    if raw is None:
        return None
    text = unicodedata.normalize("NFKC", str(raw)).strip()
    return text or None


def standardise_name(raw: object) -> str | None:
    """Chinese names: NFKC, no inner whitespace, simplified characters, one kind of middle dot.
    Romanised names keep single spaces (parsed later by resolution)."""
    text = clean_text(raw)
    if text is None:
        return None
    if _HAN.search(text):
        text = _SPACES.sub("", text)
        text = _DOTS.sub("·", text)
        return to_simplified(text)
    return _SPACES.sub(" ", text)


def standardise_org_name(raw: object, aliases: dict[str, str] | None = None, university: str | None = None) -> str | None:
    """NFKC, no whitespace, simplified; the university's own name as a prefix dropped
    (某某大学计算机学院 = 计算机学院); then the alias table (former names, nicknames) applied."""
    text = clean_text(raw)
    if text is None:
        return None
    text = to_simplified(_SPACES.sub("", text))
    if university:
        uni = to_simplified(_SPACES.sub("", university))
        if text.startswith(uni) and len(text) > len(uni):
            text = text[len(uni):]
    if aliases:
        text = aliases.get(text, text)
    return text


def normalise_alias_table(aliases: dict[str, str], university: str | None = None) -> dict[str, str]:
    """Alias keys and values go through the same normalisation as the names they will meet."""
    out = {}
    for alias, canonical in aliases.items():
        a = standardise_org_name(alias, None, university)
        c = standardise_org_name(canonical, None, university)
        if a and c:
            out[a] = c
    return out


# ---- pinyin keys -------------------------------------------------------------------------------------
# Surnames read differently from the same character in ordinary words (单 shàn, not dān). pypinyin
# reads characters in word context and has no surname mode, so the first character of a name is
# looked up here first.
SURNAME_READINGS = {
    "单": "shan", "曾": "zeng", "解": "xie", "区": "ou", "朴": "piao", "查": "zha", "仇": "qiu", "覃": "qin",
    "缪": "miao", "盖": "ge", "葛": "ge", "乐": "yue", "华": "hua", "秘": "bi", "种": "chong", "召": "shao",
    "翟": "zhai", "折": "she", "员": "yun", "繁": "po", "黑": "he", "角": "jue", "任": "ren", "沈": "shen",
    "隗": "wei", "蕃": "pi", "尉": "yu", "都": "du", "长": "chang", "臧": "zang", "燕": "yan", "洗": "xian",
    "冼": "xian", "纪": "ji", "宓": "mi", "能": "nai", "朝": "chao", "句": "gou", "谌": "chen", "訾": "zi",
}
COMPOUND_SURNAMES = {
    "欧阳": "ouyang", "司马": "sima", "上官": "shangguan", "诸葛": "zhuge", "东方": "dongfang", "皇甫": "huangfu",
    "尉迟": "yuchi", "公孙": "gongsun", "慕容": "murong", "长孙": "zhangsun", "令狐": "linghu", "宇文": "yuwen",
    "司徒": "situ", "夏侯": "xiahou", "澹台": "tantai", "万俟": "moqi", "独孤": "dugu", "端木": "duanmu",
    "南宫": "nangong", "西门": "ximen", "轩辕": "xuanyuan", "呼延": "huyan", "闻人": "wenren", "申屠": "shentu",
}
_COMPOUND_PINYIN = set(COMPOUND_SURNAMES.values())


@lru_cache(maxsize=1)
def _pinyin():
    # Imported on first use: its phrase dictionary takes a quarter of a second to load, and a command
    # that reads no new name (a rerun with nothing changed, a graph build) never needs it.
    from pypinyin import Style, lazy_pinyin

    return functools.partial(lazy_pinyin, style=Style.NORMAL, errors="ignore", v_to_u=False)


def _syllables(text: str) -> str:
    return "".join(_pinyin()(text))


@lru_cache(maxsize=262_144)  # names repeat across systems; pinyin conversion dominates ingest time
def pinyin_key(name: str | None) -> str | None:
    """Toneless `surname|given` in pinyin, for homophone matching (张伟 and 章玮 both `zhang|wei`).

    Read from the name as written, not its simplified form: a traditional character can have a
    reading its simplified replacement lacks (乾 qián became 干 gān in some conversions)."""
    if not name or not _HAN.search(name):
        return None
    text = _DOTS.sub("", _SPACES.sub("", unicodedata.normalize("NFKC", name)))
    simple = to_simplified(text)
    if simple[:2] in COMPOUND_SURNAMES:
        surname, given = COMPOUND_SURNAMES[simple[:2]], text[2:]
    else:
        surname = SURNAME_READINGS.get(simple[0]) or _syllables(text[0])
        given = text[1:]
    return f"{surname}|{_syllables(given)}"


_ROMAN_TOKEN = re.compile(r"[A-Za-zÀ-ɏ]+(?:['’-][A-Za-zÀ-ɏ]+)*")


def _roman_syllables(token: str) -> str:
    t = unicodedata.normalize("NFKD", token.lower().replace("ü", "v"))
    t = "".join(ch for ch in t if not unicodedata.combining(ch))
    t = re.sub(r"['’-]", "", t)
    return re.sub(r"^(l|n)yu", r"\1v", t)  # passports write 吕 as LYU


@lru_cache(maxsize=65_536)
def _romanised_keys(name: str) -> tuple[str, ...]:
    return tuple(_parse_romanised(name))


def romanised_keys(name: str | None) -> list[str]:
    return list(_romanised_keys(name)) if name else []


def _parse_romanised(name: str | None) -> list[str]:
    """Candidate `surname|given` keys of a romanised Chinese name, most likely first.

    "ZHANG, Wei" and "ZHANG Wei" name the surname (comma, or capitals); "Wei Zhang" and
    "Zhang Wei" are ambiguous, so both orders come back and linkage decides."""
    if not name or _HAN.search(name):
        return []
    text = unicodedata.normalize("NFKC", name).strip()
    if "," in text:
        left, _, right = text.partition(",")
        s, g = _ROMAN_TOKEN.findall(left), _ROMAN_TOKEN.findall(right)
        if s and g:
            return [f"{''.join(map(_roman_syllables, s))}|{''.join(map(_roman_syllables, g))}"]
    tokens = _ROMAN_TOKEN.findall(text)
    if len(tokens) < 2:
        return []
    upper = [t for t in tokens if t.isupper() and len(t) > 1]
    if len(upper) == 1 and len(tokens) > 1 and not all(t.isupper() for t in tokens):
        rest = [t for t in tokens if t is not upper[0]]
        return [f"{_roman_syllables(upper[0])}|{''.join(map(_roman_syllables, rest))}"]
    first, last = _roman_syllables(tokens[0]), _roman_syllables(tokens[-1])
    surname_first = f"{first}|{''.join(map(_roman_syllables, tokens[1:]))}"
    surname_last = f"{last}|{''.join(map(_roman_syllables, tokens[:-1]))}"
    if first in _surname_pinyin() and last not in _surname_pinyin():
        return [surname_first, surname_last]
    # Otherwise Western order (given name first), the usual order in English-language author lists.
    return [surname_last, surname_first]


@lru_cache(maxsize=1)
def _surname_pinyin() -> frozenset[str]:
    """Readings of Chinese surnames, from Faker's zh_CN name data plus the tables above."""
    from faker.providers.person.zh_CN import Provider

    readings = {pinyin_key(n + "某").split("|")[0] for n in set(Provider.last_names)}
    return frozenset(readings | set(SURNAME_READINGS.values()) | _COMPOUND_PINYIN)


def is_han(text: str | None) -> bool:
    """Does the text hold a Chinese character (a name written in characters, not romanised)?"""
    return bool(text and _HAN.search(text))


def name_keys(name: str | None) -> list[str]:
    key = pinyin_key(name)
    return [key] if key else romanised_keys(name)


def compose_name(given: str | None, family: str | None) -> str | None:
    """The whole name of a record that has only its parts: 张 + 伟 = 张伟 (Chinese characters: family
    name first, no space), otherwise Western order, `John Smith`."""
    given, family = standardise_name(given), standardise_name(family)
    if not given or not family:
        return given or family
    if _HAN.search(given + family):
        return family + given
    return f"{given} {family}"


def parts_key(given: str | None, family: str | None) -> str | None:
    """`surname|given` from separate given and family name fields: the name key without guessing
    the order (Chinese characters through pinyin, romanised and Western names lower-cased). A
    missing part stays empty (`|isabelle`), so that resolution still knows which part it has."""
    if not given and not family:
        return None
    if family and given and _HAN.search(family + given):
        return pinyin_key(standardise_name(family) + standardise_name(given))
    parts = [_part_syllables(family), _part_syllables(given)]
    return "|".join(parts) if any(parts) else None


def _part_syllables(part: str | None) -> str:
    if not part:
        return ""
    if _HAN.search(part):
        return _syllables(to_simplified(_SPACES.sub("", part)))
    return "".join(map(_roman_syllables, _ROMAN_TOKEN.findall(unicodedata.normalize("NFKC", part))))


def name_keys_of(name: str | None, given: str | None = None, family: str | None = None) -> list[str]:
    """name_keys, led by the exact key when the record names its family and given name apart."""
    keys = name_keys(name)
    exact = parts_key(given, family)
    return [exact, *(k for k in keys if k != exact)] if exact else keys


# ICAO 9303: up to 9 letters and digits; 6 at least, with a digit, to look like a real number.
PASSPORT_PATTERN = "[A-Z]{0,3}[0-9][A-Z0-9]{4,8}"
_PASSPORT = re.compile(f"^(?=.{{6,9}}$){PASSPORT_PATTERN}$")


def standardise_passport(raw: object) -> tuple[str | None, str | None]:
    """Upper case without spaces, hyphens or dots (`e 1234-5678` = E12345678). A value that does not
    look like a passport number (6 to 9 letters and digits, at least one digit) is kept, flagged."""
    text = clean_text(raw)
    if text is None:
        return None, None
    text = re.sub(r"[\s\-./]+", "", text).upper()
    if not text:
        return None, None
    return text, (None if looks_like_passport(text) else f"not a passport number: {text!r}")


def looks_like_passport(value: str | None) -> bool:
    return bool(value) and bool(_PASSPORT.match(value))


_COUNTRY_CODE = re.compile(r"^[A-Z]{2,3}$")


def standardise_nationality(raw: object) -> tuple[str | None, str | None]:
    """ISO 3166-1 code, upper case (`usa` = USA); anything else is kept, flagged."""
    text = clean_text(raw)
    if text is None:
        return None, None
    code = _SPACES.sub("", text).upper()
    return code, (None if _COUNTRY_CODE.match(code) else f"not an ISO 3166 country code: {text!r}")


def standardise_address(raw: object) -> str | None:
    """One line, single spaces."""
    text = clean_text(raw)
    return _SPACES.sub(" ", text) if text else None


_STRONG_SEPARATORS = re.compile(r"[;；、|\n]+")
_COMMAS = re.compile(r"\s*[,，]\s*")
_AND = re.compile(r"\s+(?:and|&)\s+", re.I)  # not 和 / 与: 王和平 is one name


def split_author_list(cell: str | None) -> list[str]:
    """Names in an author list, in order. Semicolons, 、 and line breaks always separate; a comma
    separates Chinese names (张伟,李娜) and romanised ones (Zhang Wei, Li Na) but not the surname
    from the given name (ZHANG, Wei; Zhang, W.)."""
    if not cell:
        return []
    out: list[str] = []
    for chunk in _STRONG_SEPARATORS.split(cell):
        chunk = chunk.strip()
        if not chunk:
            continue
        parts = [p for p in _COMMAS.split(chunk) if p]
        if _HAN.search(chunk) or len(parts) == 1:
            names = parts
        elif len(parts) == 2 and len(parts[0].split()) == 1 and len(parts[1].split()) <= 2:
            names = [chunk]  # SURNAME, Given
        else:
            names = parts
        for name in names:
            out += [n.strip() for n in _AND.split(name) if n.strip()]
    return out


# A cell starting with + or - is a formula to a spreadsheet too (`+cmd|' /C calc'!A0`,
# `-2+3+cmd|' /C calc'!A0`), but exports are full of signed numbers and phone numbers
# (`-3.5`, `+86 138 0013 8000`, `-1.2e5`) and of a lone `-` for "none": those stay values.
_SIGNED_NUMBER = re.compile(r"^[+\-]\s*\(?\d[\d\s.,()\-]*(?:[eE][+\-]?\d+)?%?$")
_FORMULA_SYNTAX = re.compile(r"[A-Za-z_(|!\"'$+*/^&<>=:;%]")


def looks_like_formula(text: str) -> bool:
    """A cell a spreadsheet would execute (CSV/formula injection, e.g. =cmd|' /C calc'!A0)."""
    if not text:
        return False
    if text[0] in "=@\t\r":
        return True
    if text[0] in "+-":
        return not _SIGNED_NUMBER.match(text) and bool(_FORMULA_SYNTAX.search(text[1:]))
    return False


DEFAULT_DATE_FORMATS = ("%Y-%m-%d", "%Y%m%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日")
MONTH_FORMATS = ("%Y%m", "%Y-%m", "%Y/%m", "%Y年%m月")


def parse_date(raw: object, formats: tuple[str, ...] | list[str] = ()) -> tuple[dt.date | None, str | None]:
    """Returns (date, flag). A year-month value becomes the first of the month, flagged."""
    text = clean_text(raw)
    if text is None:
        return None, None
    text = text.split(" ")[0].split("T")[0]
    for fmt in tuple(formats) or DEFAULT_DATE_FORMATS:
        try:
            value = dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
        if fmt in MONTH_FORMATS:
            return value, "month_precision"
        return value, None
    for fmt in MONTH_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).date(), "month_precision"
        except ValueError:
            continue
    return None, f"not a date: {text!r}"


def standardise_phone(raw: object, region: str = "CN") -> tuple[str | None, str | None]:
    text = clean_text(raw)
    if text is None:
        return None, None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None, f"not a phone number: {text!r}"
    if not phonenumbers.is_valid_number(number):
        return None, f"not a valid phone number: {text!r}"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def standardise_email(raw: object) -> tuple[str | None, str | None]:
    text = clean_text(raw)
    if text is None:
        return None, None
    text = text.lower()
    if not _EMAIL.match(text):
        return None, f"not an e-mail address: {text!r}"
    return text, None
