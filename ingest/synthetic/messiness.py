"""The real-world messiness of BRIEF.md, applied to clean values at a configurable rate."""

from __future__ import annotations

import random
import unicodedata
from functools import lru_cache

import opencc
from faker.providers.person.zh_CN import Provider as ZhNames
from pypinyin import lazy_pinyin

from ingest.synthetic.population import College

_FULLWIDTH = {ord(c): ord(c) + 0xFEE0 for c in "0123456789X"}


@lru_cache(maxsize=1)
def _s2t() -> opencc.OpenCC:
    return opencc.OpenCC("s2t")


@lru_cache(maxsize=1)
def homophones() -> dict[str, list[str]]:
    """Characters of given names grouped by toneless pinyin: 伟 -> [玮, 维, 薇, ...]."""
    chars = {ch for name in (*ZhNames.first_names_male, *ZhNames.first_names_female) for ch in name}
    chars |= set("玮炜纬维薇卫蔚娟鹃隽静婧敬靖丽莉俐立力利敏民珉闽军君均钧峰锋丰枫芳方舫坊华骅桦")
    groups: dict[str, list[str]] = {}
    for ch in sorted(chars):
        groups.setdefault(lazy_pinyin(ch)[0], []).append(ch)
    return {ch: [o for o in groups[lazy_pinyin(ch)[0]] if o != ch] for ch in chars}


def romanise(name: str, style: str) -> str:
    """张伟 -> 'Wei Zhang' (given-family), 'Zhang Wei' (family-given) or 'ZHANG, Wei'."""
    if "·" in name:
        return " ".join(p.capitalize() for p in lazy_pinyin(name.replace("·", " ")) if p.strip())
    family, given = lazy_pinyin(name[0])[0].capitalize(), "".join(lazy_pinyin(name[1:])).capitalize()
    if style == "given_family":
        return f"{given} {family}"
    if style == "family_given":
        return f"{family} {given}"
    return f"{family.upper()}, {given}"


def to_15(id18: str) -> str:
    """The legacy 15-digit form: no century, no check character."""
    return id18[:6] + id18[8:17]


class Mess:
    def __init__(self, rng: random.Random, rate: float):
        self.rng = rng
        self.rate = rate

    def hit(self, factor: float = 1.0) -> bool:
        return self.rng.random() < self.rate * factor

    def encodable(self, text: str, encoding: str) -> bool:
        try:
            text.encode(encoding)
        except UnicodeEncodeError:
            return False
        return True

    def name(self, name: str, encoding: str = "utf-8", spaces: bool = False) -> str:
        out = name
        if "·" in name and self.hit(4):
            out = name.replace("·", self.rng.choice((".", "•", "・", " ")))
        elif self.hit():
            out = _s2t().convert(name)  # 張偉 for 张伟
        elif self.hit(0.6) and len(name) >= 2:
            i = self.rng.randrange(1, len(name))  # a homophone typo in the given name (张玮 for 张伟)
            alts = homophones().get(name[i])
            if alts:
                out = name[:i] + self.rng.choice(alts) + name[i + 1:]
        if spaces and self.hit(2) and "·" not in out and len(out) == 2:
            out = out[0] + "\u3000" + out[1]
        elif spaces and self.hit():
            out = " " + out + " "
        return out if self.encodable(out, encoding) else name

    def id_number(self, value: str, *, lower_x: float = 0.5, legacy_15: bool = False) -> str:
        if legacy_15:
            return to_15(value)
        if value.endswith("X") and self.rng.random() < lower_x:
            value = value[:-1] + "x"
        if self.hit(0.4):
            value = value.translate(_FULLWIDTH)  # １２３ full-width digits
        elif self.hit(0.15):
            i = self.rng.randrange(6, 17)  # a typing error: one digit wrong, the check character catches it
            value = value[:i] + str((int(value[i]) + self.rng.randint(1, 9)) % 10) + value[i + 1:]
        return value

    def phone(self, value: str) -> str:
        r = self.rng.random()
        if r < self.rate:
            return f"{value[:3]} {value[3:7]} {value[7:]}"
        if r < self.rate * 2:
            return "+86 " + value
        if r < self.rate * 2.5:
            return unicodedata.normalize("NFKC", value).translate(_FULLWIDTH)
        return value

    def org(self, college: College | None, unit: str, year: int | None = None) -> str:
        if college is None:
            return unit
        if college.former_name and year is not None and year < 2022 and self.rng.random() < 0.7:
            return college.former_name
        if self.hit(5):
            return college.nickname
        return college.name

    def missing(self, value: str, factor: float = 1.0) -> str:
        return "" if self.hit(factor) else value
