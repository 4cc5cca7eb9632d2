"""Standardisation of single values. Each function returns the standard value (or None) and
never raises on bad input: problems are reported as a flag string that the ingest keeps."""

from __future__ import annotations

import datetime as dt
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


def standardise_org_name(raw: object) -> str | None:
    text = clean_text(raw)
    if text is None:
        return None
    return to_simplified(_SPACES.sub("", text))


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
