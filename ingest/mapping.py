"""The mapping file: how a university declares its exports without writing code (docs/mapping.md)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ontology.model import OntologyError, load_ontology


class MappingError(ValueError):
    pass


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FieldRule(_Strict):
    """One column -> one ontology property, with the transforms applied in this order."""

    property: str
    strip_prefix: str | None = None
    regex: str | None = Field(default=None, description="keep the first group (or the whole match); no match: no value")
    codes: dict[str, str] | None = None
    date_formats: list[str] | None = None
    constant: str | None = None

    @field_validator("property")
    @classmethod
    def _known_property(cls, v: str) -> str:
        try:
            load_ontology().prop(v)
        except OntologyError as exc:
            raise ValueError(str(exc)) from None
        return v


class RelationshipRule(_Strict):
    """A relationship the source implies, e.g. 所在单位 -> MEMBER_OF an Organisation found by name."""

    type: str
    column: str
    target: str
    match_on: str
    direction: Literal["out", "in"] = "out"  # in: the target is the relationship's start node
    split: str | None = None  # for lists in one cell (author lists)
    strip_prefix: str | None = None

    @model_validator(mode="after")
    def _known_terms(self) -> RelationshipRule:
        ont = load_ontology()
        try:
            rel = ont.rel(self.type)
            ont.cls(self.target)
            ont.prop(self.match_on)
        except OntologyError as exc:
            raise ValueError(str(exc)) from None
        ends = rel.targets if self.direction == "out" else rel.sources
        if self.target not in ends:
            raise ValueError(f"{self.type} cannot have {self.target} at that end (direction {self.direction})")
        return self


class Source(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    path: Path
    format: Literal["csv", "tsv"] = "csv"
    encoding: str = "utf-8"
    system: str
    system_name: str
    department: str
    table: str
    entity_type: str
    record_key: list[str]
    fields: dict[str, FieldRule | list[FieldRule]]
    relationships: list[RelationshipRule] = []
    authority: dict[str, int] = {}  # property -> rank (1 = the authoritative source, 一数一源)

    @field_validator("entity_type")
    @classmethod
    def _master_class(cls, v: str) -> str:
        ont = load_ontology()
        if v not in {c.name for c in ont.master_classes()}:
            raise ValueError(f"entity_type {v!r} is not a master entity class of the ontology")
        return v

    @field_validator("record_key")
    @classmethod
    def _non_empty(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("record_key needs at least one column")
        return v

    def rules(self) -> list[tuple[str, FieldRule]]:
        out = []
        for column, rule in self.fields.items():
            for r in rule if isinstance(rule, list) else [rule]:
                out.append((column, r))
        return out

    def rank(self, prop: str) -> int:
        return self.authority.get(prop, 9)


class Mapping(_Strict):
    version: Literal[1] = 1
    university: str | None = None
    sources: list[Source]
    base_dir: Path = Path(".")
    sha256: str = ""

    @model_validator(mode="after")
    def _unique_names(self) -> Mapping:
        names = [s.name for s in self.sources]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"source names must be unique: {sorted(dupes)}")
        return self

    def source_path(self, source: Source) -> Path:
        return source.path if source.path.is_absolute() else (self.base_dir / source.path)


def load_mapping(path: Path | str) -> Mapping:
    path = Path(path)
    raw_bytes = path.read_bytes()
    try:
        data = yaml.safe_load(raw_bytes.decode("utf-8"))
    except yaml.YAMLError as exc:
        raise MappingError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise MappingError(f"{path}: the mapping must be a YAML mapping with a 'sources' list")
    try:
        mapping = Mapping.model_validate({**data, "base_dir": path.parent.resolve()})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise MappingError(f"{path}: {problems}") from None
    mapping.sha256 = hashlib.sha256(raw_bytes).hexdigest()
    return mapping
