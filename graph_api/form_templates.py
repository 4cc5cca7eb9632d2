"""One form (一表通): a form template maps each label to an ontology property or a small derivation,
and prefill answers every field from the person's record with its provenance.

Templates are YAML in graph_api/forms/. A derivation says which properties or relationships it is
computed from, so its provenance is theirs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, model_validator

from graph_api.models import AttributeValue, FormField, PersonRecord
from ontology.model import load_ontology

FORMS_DIR = Path(__file__).with_name("forms")


class TemplateField(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str
    property: str | None = None
    derive: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> TemplateField:
        if (self.property is None) == (self.derive is None):
            raise ValueError(f"{self.label}: give exactly one of property or derive")
        if self.property is not None and self.property not in {p.name for p in load_ontology().class_properties(
                "Person")}:
            raise ValueError(f"{self.label}: {self.property!r} is not a Person property in the ontology")
        if self.derive is not None and self.derive not in DERIVATIONS:
            raise ValueError(f"{self.label}: unknown derivation {self.derive!r} (known: {', '.join(DERIVATIONS)})")
        return self


class FormTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    title_zh: str
    title_en: str
    audience: str
    fields: list[TemplateField]


@dataclass
class Derived:
    value: object
    basis: AttributeValue | None = None  # the attribute it was computed from, for provenance
    note: str | None = None


def _attr(record: PersonRecord, name: str) -> AttributeValue | None:
    return next((a for c in record.categories for a in c.attributes if a.property == name), None)


def _years_since(record: PersonRecord, prop: str, today: dt.date) -> Derived | None:
    a = _attr(record, prop)
    if a is None or a.masked or a.value is None:
        return None
    start = dt.date.fromisoformat(str(a.value))
    years = today.year - start.year - ((today.month, today.day) < (start.month, start.day))
    return Derived(years, a, f"from {prop}")


def _current_unit(record: PersonRecord, today: dt.date) -> Derived | None:
    current = [m for m in record.memberships if m.end_date is None or m.end_date >= today]
    if not current:
        return None
    best = max(current, key=lambda m: (m.start_date is not None, m.start_date or dt.date.min))
    return Derived(best.org_name, None, "MEMBER_OF")


def _count(relation: str, direction: str = "out", where: Callable[[dict], bool] = lambda p: True):
    def derive(record: PersonRecord, today: dt.date) -> Derived:
        n = sum(1 for r in record.related if r.relation == relation and r.direction == direction and where(r.properties))
        return Derived(n, None, relation)
    return derive


def _funding(record: PersonRecord, today: dt.date) -> Derived:
    total = sum(float(r.properties.get("funding") or 0) for r in record.related if r.relation == "LEADS")
    return Derived(round(total, 2), None, "LEADS → Project.funding")


def _advisor(record: PersonRecord, today: dt.date) -> Derived | None:
    names = [r.title for r in record.related if r.relation == "ADVISES" and r.direction == "in" and r.title]
    return Derived("、".join(names), None, "ADVISES") if names else None


def _no_source(record: PersonRecord, today: dt.date) -> None:
    return None  # no source system feeds it yet: the person fills it in


DERIVATIONS: dict[str, Callable[[PersonRecord, dt.date], Derived | None]] = {
    "age": lambda r, t: _years_since(r, "birth_date", t),
    "years_of_service": lambda r, t: _years_since(r, "hire_date", t),
    "current_unit": _current_unit,
    "publication_count": _count("AUTHOR_OF"),
    "first_author_count": _count("AUTHOR_OF", where=lambda p: p.get("rank") == 1),
    "project_count": _count("LEADS"),
    "project_funding": _funding,
    "advisee_count": _count("ADVISES"),
    "advisor": _advisor,
    "teaching_load": _no_source,
    "grade_ranking": _no_source,
}


@lru_cache(maxsize=None)
def templates() -> dict[str, FormTemplate]:
    out = {}
    for path in sorted(FORMS_DIR.glob("*.yaml")):
        template = FormTemplate.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        out[template.name] = template
    return out


def prefill(template: FormTemplate, record: PersonRecord, today: dt.date | None = None
            ) -> tuple[list[FormField], list[str]]:
    today = today or dt.date.today()
    fields, unfilled = [], []
    for f in template.fields:
        if f.property is not None:
            a = _attr(record, f.property)
            if a is None or a.value is None:
                unfilled.append(f.label)
                continue
            fields.append(FormField(label=f.label, source=f.property, value=a.value, masked=a.masked,
                                    source_system=a.source_system, source_record=a.source_record, rule=a.rule))
            continue
        derived = DERIVATIONS[f.derive](record, today)  # type: ignore[index]
        if derived is None or derived.value in (None, ""):
            unfilled.append(f.label)
            continue
        basis = derived.basis
        fields.append(FormField(label=f.label, source=f"derive:{f.derive}", value=derived.value,  # type: ignore
                                masked=False, source_system=basis.source_system if basis else None,
                                source_record=basis.source_record if basis else None,
                                rule=f"derived {derived.note}" if derived.note else "derived"))
    return fields, unfilled
