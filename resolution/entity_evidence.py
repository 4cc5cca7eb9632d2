"""The evidence record-to-entity matching and mention linking weigh beyond a record pair's
comparisons: the model's name weights, a unit at entity level, and the hypothesis that an item
belongs to none of our entities (resolution/entity_match.py, resolution/mentions.py)."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

MIN_OUTSIDE_SHARE, MAX_OUTSIDE_SHARE = 0.01, 0.5
# The chance that an outsider's name meets one of ours, when no outsider is recognisable by a unit
# that is not ours: the share of a university's people an outsider's full name collides with.
DEFAULT_COLLISION = 0.1


@dataclass(frozen=True)
class Outsiders:
    """How likely an item (a weak cluster, a mention) is to belong to none of our entities, measured
    on the items themselves:

    - collide: the chance that an outsider's name meets a candidate at all — the share of items
      naming a unit that is not ours (clearly outsiders) that found a candidate;
    - share π: the items without any candidate, divided by 1 − collide (outsiders whose names met
      nobody are the ones seen);
    - ours: the chance that an outsider names one of our units — the share of the items without a
      candidate that do (an upper bound: a person of ours whose name we failed to match counts too).

    The hypothesis "outside" then weighs π · collide (· ours when the item names one of our units)
    against λ · 2^S for each candidate: u, behind every S, already says how common the name is."""

    share: float
    collide: float
    ours: float
    units_seen: bool = True  # False: no item without a candidate named a unit; `ours` is the uninformed 0.5

    @classmethod
    def measure(cls, items: int, unfit: int, foreign: int, foreign_fit: int, unfit_with_unit: int,
                unfit_ours: int) -> "Outsiders":
        collide = (foreign_fit + 1) / (foreign + 2) if foreign else DEFAULT_COLLISION
        share = min(max(unfit / max(items, 1) / (1 - collide), MIN_OUTSIDE_SHARE), MAX_OUTSIDE_SHARE)
        return cls(share, collide, (unfit_ours + 1) / (unfit_with_unit + 2), unfit_with_unit > 0)

    def log_mass(self, names_our_unit: bool) -> float:
        return math.log2(self.share * self.collide * (self.ours if names_our_unit else 1.0))

    def describe(self) -> str:
        return (f"outside 校外/无对应 π = {self.share:.3f}; an outsider's name meets ours {self.collide:.3f}"
                + (f", names one of our units {self.ours:.3f}" if self.units_seen else ""))

@dataclass(frozen=True)
class NameWeights:
    """From the trained Person model: m of an exact name and m of "same pinyin key only" (a
    homophone or a traditional form: a spelling error of the person's name). Defaults: what a model
    trained on university records learns. u is not taken from the model: a mention's u is the share
    of our people who bear its name, or its key (see resolution/mentions.py)."""

    exact_m: float = 0.95
    key_m: float = 0.1


# A unit outside an entity's known units is rare but happens (a move, a stale unit in a finance
# system): never taken as rarer than this.
MIN_OTHER_UNIT = 0.01


@dataclass(frozen=True)
class OrgEvidence:
    """Match weights of "the record's unit is one of the entity's units" and "it is not".

    A record pair's organisation comparison says how often two records of one person name different
    units (a PhD's college and the college that hired them: often); the question here is how often
    a person's record names a unit none of their other records names. Measured on the anchored
    entities by leaving each record out: m = the share of records whose unit no other record of the
    entity names (at least MIN_OTHER_UNIT); u = the chance that a random entity's units include a
    random record's unit."""

    same: float
    other: float
    m_other: float
    u_same: float
    measured: bool = True  # False: no entity holds a unit, the weights are 0

    @classmethod
    def measure(cls, groups: dict[str, list[str]], orgs: dict[str, str | None], skip: set[str]) -> "OrgEvidence":
        share = Counter(o for o in orgs.values() if o)
        total = sum(share.values()) or 1
        checked = unique = entities = 0
        covered = 0.0
        for cluster, members in groups.items():
            if cluster in skip:
                continue
            units = Counter(orgs.get(m) for m in members if orgs.get(m))
            if units:
                entities += 1
                covered += sum(share[o] for o in units) / total
            if sum(units.values()) >= 2:
                checked += sum(units.values())
                unique += sum(1 for n in units.values() if n == 1)
        return cls.from_counts(entities, covered, checked, unique)

    @classmethod
    def from_counts(cls, entities: int, covered: float, checked: int, unique: int) -> "OrgEvidence":
        """entities: those with a unit; covered: the sum over them of the share of all records whose
        unit is one of theirs; checked: records of entities with two or more records with a unit;
        unique: of those, the records whose unit no other record of their entity has."""
        if not entities:
            return cls(0.0, 0.0, 0.5, 0.5, measured=False)
        m_other = max((unique + 1) / (checked + 2), MIN_OTHER_UNIT)
        u_same = min(max(covered / entities, 1e-6), 1 - 1e-6)
        return cls(math.log2((1 - m_other) / u_same), math.log2(m_other / (1 - u_same)), m_other, u_same)

    def describe(self) -> str:
        return (f"unit evidence 单位证据 (entity level): a record's unit is one of its entity's "
                f"{1 - self.m_other:.3f} vs {self.u_same:.3f} for a random entity: "
                f"{self.same:+.2f} / {self.other:+.2f} bits")


# Linked co-authors needed before the record's unit speaks for the others.
MIN_CO_AUTHORS = 20


@dataclass(frozen=True)
class CoAuthorUnit:
    """Is a co-author of the record's unit (第一作者单位 names the first author's)? Measured on the
    co-authors the first pass linked: the share of them whose units include the record's unit,
    against `u`, the chance for a random person. Where co-authors come from anywhere, the weights
    are about 0; where they mostly share the first author's college, the record's unit settles
    namesakes."""

    m: float = 0.5
    u: float = 0.5
    measured: bool = False

    @classmethod
    def measure(cls, rows: list[dict], profiles: dict, u: float) -> "CoAuthorUnit":
        linked = [r for r in rows if r["master_id"] and r["record_unit"] and profiles[r["master_id"]]["orgs"]]
        if len(linked) < MIN_CO_AUTHORS or not 0 < u < 1:
            return cls()
        shared = sum(1 for r in linked if r["record_unit"] in profiles[r["master_id"]]["orgs"])
        return cls(min(max((shared + 1) / (len(linked) + 2), u), 0.99), u, True)

    def weight(self, record_unit: str | None, theirs: set[str]) -> float:
        if not self.measured or not record_unit or not theirs:
            return 0.0
        return math.log2(self.m / self.u) if record_unit in theirs else math.log2((1 - self.m) / (1 - self.u))

    def describe(self) -> str:
        return (f"co-authors 合作者: {self.m:.3f} of those linked share the record's unit, against {self.u:.3f} "
                f"for anyone: {math.log2(self.m / self.u):+.2f} / {math.log2((1 - self.m) / (1 - self.u)):+.2f} bits")


@dataclass(frozen=True)
class FlagEvidence:
    """A yes / no fact about a candidate, weighed by how often the mentions the first pass linked
    show it (m) against how often a random candidate would (u). Unmeasured (fewer than
    MIN_CO_AUTHORS links): `prior_bits` for yes, 0 for no.

    Advising: one of the candidate's students (advisors) is linked from the same record — a PhD
    student publishes with the supervisor; measured per role, u the chance that one of a random
    advisor's (student's) partners is linked there. "No" weighs too: a student named without the
    supervisor, where the data says students seldom are, is unlikely to be that student."""

    m: float = 0.5
    u: float = 0.5
    measured: bool = False
    prior_bits: float = 0.0  # for yes, until measured

    @classmethod
    def measure(cls, yes: int, linked: int, u: float, prior_bits: float = 0.0) -> "FlagEvidence":
        if linked < MIN_CO_AUTHORS or not 0 < u < 1:
            return cls(prior_bits=prior_bits)
        return cls(min(max((yes + 1) / (linked + 2), 0.01), 0.99), u, True, prior_bits)

    def weight(self, yes: bool) -> float:
        if not self.measured:
            return self.prior_bits if yes else 0.0
        return math.log2(self.m / self.u) if yes else math.log2((1 - self.m) / (1 - self.u))

    def describe(self, what: str, against: str) -> str:
        return (f"{what}: {self.m:.3f} of those linked, against {self.u:.3f} {against}: "
                f"{self.weight(True):+.2f} / {self.weight(False):+.2f} bits")


STAFF_KIND = "staff 教职工"
STUDENT_KIND = "student 学生"
OTHER_KIND = "other 其他"


def person_kind(staff: bool, degree_level: str | None, student: bool) -> str:
    """What kind of person a master is, as their records say: staff (a staff number), else their
    degree level (培养层次, as the university's systems write it: 博士, 硕士, 本科), else a student of
    unknown level (a student number), else none of these (a card or a payee only)."""
    if staff:
        return STAFF_KIND
    return degree_level or (STUDENT_KIND if student else OTHER_KIND)


@dataclass(frozen=True)
class KindEvidence:
    """Which kind of person (`person_kind`) the candidate is. Authors, project leaders and custodians
    are staff and doctoral students far more often, and undergraduates far less often, than a random
    person of ours — how much, each university's data says: measured per relationship on the mentions
    the first pass linked, m the share of each kind among them (add-one), u its share among our
    people. Unmeasured (fewer than MIN_CO_AUTHORS links): `prior_bits` for staff, 0 otherwise."""

    m: dict[str, float] = field(default_factory=dict)
    u: dict[str, float] = field(default_factory=dict)
    measured: bool = False
    prior_bits: float = 0.0

    @classmethod
    def measure(cls, linked: Counter, people: Counter, prior_bits: float = 0.0) -> "KindEvidence":
        n, total = sum(linked.values()), sum(people.values())
        if n < MIN_CO_AUTHORS or len(people) < 2:  # too few links, or one kind of person only: nothing to weigh
            return cls(prior_bits=prior_bits)
        kinds = sorted(set(people) | set(linked))
        return cls({k: (linked[k] + 1) / (n + len(kinds)) for k in kinds},
                   {k: max(people[k], 1) / total for k in kinds}, True, prior_bits)

    def weight(self, kind: str) -> float:
        if not self.measured:
            return self.prior_bits if kind == STAFF_KIND else 0.0
        return math.log2(self.m[kind] / self.u[kind]) if kind in self.m else 0.0

    def describe(self, what: str) -> str:
        shares = ", ".join(f"{k} {self.m[k]:.3f}/{self.u[k]:.3f} {self.weight(k):+.2f}"
                           for k in sorted(self.m, key=lambda k: -self.m[k]))
        return f"kind 人员类别 ({what}; of those linked / of our people, bits): {shares}"
