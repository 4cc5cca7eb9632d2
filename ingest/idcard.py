"""Citizen ID numbers (GB 11643-1999): check character, 15 -> 18 digits, derived birth date and sex."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"  # indexed by (weighted sum mod 11), ISO 7064 MOD 11-2
_SHAPE_18 = re.compile(r"^\d{17}[\dX]$")
_SHAPE_15 = re.compile(r"^\d{15}$")


def check_character(first17: str) -> str:
    return CHECK_CHARS[sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True)) % 11]


def upgrade_15_to_18(id15: str) -> str:
    """Legacy 15-digit numbers omit the century (assumed 19xx) and the check character."""
    first17 = id15[:6] + "19" + id15[6:]
    return first17 + check_character(first17)


def projection_15(id_number: str | None) -> str | None:
    """The legacy 15-digit form: an 18-digit number without its century digits and check
    character. A number upgraded from 15 digits only guessed its century, so two ID numbers are
    compared on this projection: the 15 digits are all that the legacy number really states."""
    if not id_number:
        return None
    if len(id_number) == 18:
        return id_number[:6] + id_number[8:17]
    return id_number if len(id_number) == 15 else None


@dataclass(frozen=True)
class IdNumber:
    value: str  # 18 characters, upper-case X; the cleaned input when it cannot be read
    valid: bool  # shape, date and check character all correct
    problem: str | None = None
    birth_date: dt.date | None = None
    sex: str | None = None  # GB/T 2261.1 code: "1" male, "2" female
    upgraded_from_15: bool = False


def parse_id_number(raw: str | None) -> IdNumber | None:
    if raw is None:
        return None
    text = unicodedata.normalize("NFKC", str(raw)).strip().replace(" ", "").upper()
    if not text:
        return None
    upgraded = False
    if _SHAPE_15.match(text):
        text = upgrade_15_to_18(text)
        upgraded = True
    if not _SHAPE_18.match(text):
        return IdNumber(text, False, "not 18 digits (or 15 legacy digits)")
    try:
        birth = dt.date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        return IdNumber(text, False, "birth date part is not a date")
    sex = "1" if int(text[16]) % 2 == 1 else "2"
    if check_character(text[:17]) != text[17]:
        return IdNumber(text, False, "check character is wrong", birth, sex, upgraded)
    return IdNumber(text, True, None, birth, sex, upgraded)
