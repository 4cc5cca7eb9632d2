"""The mapping file: how a university declares its exports without writing code (docs/mapping.md)."""

from __future__ import annotations

import codecs
import hashlib
import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator,
                      model_validator)

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
    split: str | None = Field(default=None, description="regex separator: one cell holds several values")
    optional: bool = False  # legitimately empty for many records: not counted against completeness

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
    # Edge property -> the column that holds it, or `@position`: the place in a split list (author rank).
    properties: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_terms(self) -> RelationshipRule:
        ont = load_ontology()
        try:
            rel = ont.rel(self.type)
            ont.cls(self.target)
            ont.prop(self.match_on)
        except OntologyError as exc:
            raise ValueError(str(exc)) from None
        for name in self.properties:
            if name not in rel.properties:
                raise ValueError(f"{self.type} has no edge property {name!r} in the ontology "
                                 f"(it has: {', '.join(rel.properties) or 'none'})")
        ends = rel.targets if self.direction == "out" else rel.sources
        if self.target not in ends:
            raise ValueError(f"{self.type} cannot have {self.target} at that end (direction {self.direction})")
        return self


# Person identifiers a mention's context may carry: matched like an identifier relationship, and
# when present it decides (the name is then only what the row says).
MENTION_IDENTIFIERS = ("staff_no", "student_no", "id_number")


class ParentRef(_Strict):
    """The record a mention row belongs to: the parent source's record whose record key is `key`."""

    source: str
    key: list[str] = Field(min_length=1)


class MentionRule(_Strict):
    """A source whose rows mention a person on a record of another source (docs/mapping.md,
    "Mention sources"): an author table, one row per author of a publication, with that author's own
    unit. Each row becomes a relationship of the parent's entity, not a record of an entity."""

    parent: ParentRef
    relationship: str
    direction: Literal["out", "in"] | None = None  # worked out from the relationship unless both ends fit
    name: str | None = None  # the column naming the mentioned person
    position: str | None = None  # the column with the mention's place among its parent's (author order)
    # Edge property -> the column that holds it, or `@position`, as in a relationship rule.
    properties: dict[str, str] = Field(default_factory=dict)
    # Person property -> column: what the row says about the mentioned person. org_name is the unit
    # the mention is linked with; an identifier (staff_no, student_no, id_number) decides when present.
    context: dict[str, str] = Field(default_factory=dict)

    @field_validator("relationship")
    @classmethod
    def _person_relationship(cls, v: str) -> str:
        try:
            rel = load_ontology().rel(v)
        except OntologyError as exc:
            raise ValueError(str(exc)) from None
        if "Person" not in (*rel.sources, *rel.targets):
            raise ValueError(f"{v} has no Person at either end; a mention names a person")
        return v

    @field_validator("properties")
    @classmethod
    def _edge_properties(cls, v: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        if "relationship" not in info.data:  # refused above
            return v
        rel = load_ontology().rel(info.data["relationship"])
        for name in v:
            if name not in rel.properties:
                raise ValueError(f"{rel.name} has no edge property {name!r} in the ontology "
                                 f"(it has: {', '.join(rel.properties) or 'none'})")
        return v

    @field_validator("context")
    @classmethod
    def _person_properties(cls, v: dict[str, str]) -> dict[str, str]:
        person = {p.name for p in load_ontology().class_properties("Person")}
        wrong = sorted(p for p in v if p not in person)
        if wrong:
            raise ValueError(f"not properties of Person: {', '.join(wrong)}")
        return v

    @model_validator(mode="after")
    def _names_someone(self) -> MentionRule:
        if self.name is None and not set(self.context) & set(MENTION_IDENTIFIERS):
            raise ValueError("a mention needs `name` (the column naming the person) or an identifier in `context` "
                             f"({', '.join(MENTION_IDENTIFIERS)})")
        return self

    def identifiers(self) -> list[tuple[str, str]]:
        """(property, column) of the identifiers the context carries, strongest first."""
        return [(p, self.context[p]) for p in MENTION_IDENTIFIERS if p in self.context]

    def columns(self) -> list[str]:
        columns = [*self.parent.key, *(c for c in (self.name, self.position) if c)]
        columns += [c for c in self.properties.values() if not c.startswith("@")]
        return [*columns, *self.context.values()]


class _SourceProblems(ValueError):
    """Problems found across sources, each with its location, so load_mapping can name the line."""

    def __init__(self, problems: list[tuple[tuple, str]]):
        super().__init__("; ".join(f"{'.'.join(map(str, loc))}: {msg}" for loc, msg in problems))
        self.problems = problems


class Source(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    format: Literal["csv", "tsv", "xlsx", "json", "jsonl", "sql"] = "csv"
    path: Path | None = None  # file formats
    encoding: str = "auto"  # csv, tsv, jsonl: auto-detect (BOM, UTF-8, GB18030) unless declared
    sheet: str | None = None  # xlsx: the first sheet unless named
    records_path: str | None = None  # json: dotted path to the array of records, e.g. data.items
    url: str | None = None  # sql: any SQLAlchemy URL
    sql_table: str | None = None  # sql: a table to read whole ...
    query: str | None = None  # ... or a query
    max_cell_chars: int = Field(default=1_000_000, ge=1)
    updated_column: str | None = None  # a column with each record's last update (timeliness)
    system: str
    system_name: str
    department: str
    table: str
    entity_type: str | None = None  # a mention source has its parent's (may say so)
    record_key: list[str]
    fields: dict[str, FieldRule | list[FieldRule]] = Field(default_factory=dict)
    relationships: list[RelationshipRule] = []
    mentions: MentionRule | None = None  # a mention source (docs/mapping.md): rows mention persons on a parent
    # property -> rank (1 = the authoritative source, 一数一源); survivorship sorts on it as 4 digits
    authority: dict[str, Annotated[int, Field(ge=1, le=999)]] = {}
    # A load may delete more than `ingest_max_delete_share` of this source's records (a source that
    # really shrinks, e.g. a yearly student export); otherwise such a load is held back.
    allow_deletions: bool = False

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

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, v: str) -> str:
        if v.lower() != "auto":
            try:
                codecs.lookup(v)
            except LookupError:
                raise ValueError(f"unknown encoding {v!r}; use auto, utf-8, gbk, gb18030 ...") from None
        return v

    @model_validator(mode="after")
    def _entity_or_mentions(self) -> Source:
        if self.mentions is None:
            if self.entity_type is None:
                raise ValueError("a source needs `entity_type` (or a `mentions` block: a mention source)")
            if "fields" not in self.model_fields_set:
                raise ValueError("a source needs `fields` (or a `mentions` block: a mention source)")
            return self
        extra = [k for k in ("fields", "relationships", "authority") if k in self.model_fields_set]
        if extra:
            raise ValueError(f"a mention source states no fields of its own entity: remove {', '.join(extra)} "
                             "(what the row says about the person goes under mentions.context)")
        return self

    @model_validator(mode="after")
    def _properties_of_the_entity(self) -> Source:
        if self.entity_type is None:
            return self
        ont = load_ontology()
        allowed = {p.name for p in ont.class_properties(self.entity_type)}
        wrong = sorted({f"{column} → {rule.property}" for column, rule in self.rules() if rule.property not in allowed})
        if wrong:
            raise ValueError(f"not properties of {self.entity_type}: {', '.join(wrong)}; "
                             f"{self.entity_type} has {', '.join(sorted(allowed))}")
        return self

    @model_validator(mode="after")
    def _where_to_read(self) -> Source:
        if self.format == "sql":
            if not self.url:
                raise ValueError("a sql source needs `url` (a SQLAlchemy URL)")
            if (self.sql_table is None) == (self.query is None):
                raise ValueError("a sql source needs exactly one of `sql_table` or `query`")
        elif self.path is None:
            raise ValueError(f"a {self.format} source needs `path`")
        return self

    @property
    def location(self) -> str:
        return self.url.split("@")[-1] if self.format == "sql" else str(self.path)  # never print a password

    def rules(self) -> list[tuple[str, FieldRule]]:
        out = []
        for column, rule in self.fields.items():
            for r in rule if isinstance(rule, list) else [rule]:
                out.append((column, r))
        return out

    def rank(self, prop: str) -> int:
        return self.authority.get(prop, 9)

    def required_columns(self) -> list[str]:
        """Columns the export must have: the record key, every field that is not optional or a
        constant, and the relationships' columns. Without them the file is not the export the
        mapping describes, and loading it would quarantine every row and delete every record."""
        columns = list(self.record_key)
        columns += [c for c, r in self.rules() if not r.optional and r.constant is None]
        for rel in self.relationships:
            columns += [rel.column, *(c for c in rel.properties.values() if not c.startswith("@"))]
        if self.mentions is not None:
            columns += self.mentions.columns()
        return list(dict.fromkeys(columns))


class Mapping(_Strict):
    version: Literal[1] = 1
    university: str | None = None
    sources: list[Source]
    # organisation name (as any system writes it) -> the canonical name, after normalisation
    organisation_aliases: dict[str, str] = {}
    # Sources may read files outside the mapping's folder (by default they may not: a mapping is
    # often written by someone else, and `path: ../../../etc/passwd` would land in the quarantine table).
    allow_paths_outside: bool = False
    base_dir: Path = Path(".")
    sha256: str = ""

    @model_validator(mode="after")
    def _unique_names(self) -> Mapping:
        names = [s.name for s in self.sources]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"source names must be unique: {sorted(dupes)}")
        return self

    @model_validator(mode="after")
    def _mention_parents(self) -> Mapping:
        """A mention source's parent is another source of this mapping, itself no mention source; the
        mention source takes its entity type, and the relationship's direction follows from the two ends."""
        by_name = {s.name: s for s in self.sources}
        problems: list[tuple[tuple, str]] = []
        for i, source in enumerate(self.sources):
            rule = source.mentions
            if rule is None:
                continue
            where = ("sources", i, "mentions")
            parent = by_name.get(rule.parent.source)
            if parent is None or parent is source or parent.mentions is not None:
                why = ("is this source itself" if parent is source else "is a mention source itself"
                       if parent is not None else "is not a source of this mapping")
                entity_sources = [s.name for s in self.sources if s.mentions is None]
                problems.append(((*where, "parent", "source"), f"{rule.parent.source!r} {why}; the parent is one of "
                                 f"the entity sources: {', '.join(entity_sources)}"))
                continue
            if len(rule.parent.key) != len(parent.record_key):
                problems.append(((*where, "parent", "key"), f"{parent.name}'s record key has "
                                 f"{len(parent.record_key)} column(s) ({', '.join(parent.record_key)}); name as many, "
                                 "in that order"))
                continue
            if source.entity_type not in (None, parent.entity_type):
                problems.append(((*where[:2], "entity_type"), f"a mention source is about its parent's "
                                 f"{parent.entity_type} records ({parent.name}), not {source.entity_type}"))
                continue
            source.entity_type = parent.entity_type
            rel = load_ontology().rel(rule.relationship)
            fits = {d for d, own, other in (("out", rel.sources, rel.targets), ("in", rel.targets, rel.sources))
                    if parent.entity_type in own and "Person" in other}
            if rule.direction is not None and rule.direction not in fits or not fits:
                problems.append(((*where, "relationship"), f"{rule.relationship} cannot join a Person to "
                                 f"{parent.entity_type} (parent {parent.name})"
                                 + (f" in direction {rule.direction}" if rule.direction and fits else "")))
            elif rule.direction is None and len(fits) > 1:
                problems.append(((*where, "direction"), f"{rule.relationship} fits both ways between Person and "
                                 f"{parent.entity_type}: say `direction: in` (the person starts it) or `out`"))
            elif rule.direction is None:
                rule.direction = fits.pop()
        if problems:
            raise _SourceProblems(problems)
        return self

    def source_path(self, source: Source) -> Path:
        assert source.path is not None
        return source.path if source.path.is_absolute() else (self.base_dir / source.path)

    def source_location(self, source: Source) -> str:
        return source.location if source.format == "sql" else str(self.source_path(source))

    def outside_folder(self, source: Source) -> Path | None:
        """Where a file source really points (symlinks resolved) when that is outside the mapping's
        folder and the mapping does not allow it; None when the path is fine."""
        if source.format == "sql" or self.allow_paths_outside:
            return None
        real = self.source_path(source).resolve()
        return None if real.is_relative_to(self.base_dir.resolve()) else real


MAX_REPORTED_ERRORS = 20


class _MappingLoader(yaml.SafeLoader):
    """YAML 1.1 reads the words yes/no/on/off as booleans; here they are column names (a column
    called `NO` is common). Only true and false are booleans."""


_MappingLoader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_MappingLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                     list("tTfF"))


def _line_of(root: yaml.Node | None, loc: tuple) -> int | None:
    """The YAML line (1-based) of the deepest node a validation error's location reaches.
    Location parts that are not in the document (pydantic's union member names) are skipped."""
    node, line = root, (root.start_mark.line + 1 if root is not None else None)
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == str(part):
                    child = value
                    line = key.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is not None:
            node = child
    return line


def _plain(loc: tuple) -> tuple:
    """A location without pydantic's union member names (`FieldRule`, `list[FieldRule]`)."""
    return tuple(p for p in loc if not str(p).startswith(("FieldRule", "list[")))


def _describe(loc: tuple, data: dict) -> str:
    parts = []
    for i, p in enumerate(loc):
        if isinstance(p, int) and i > 0 and loc[i - 1] == "sources":
            name = (data.get("sources") or [{}])[p].get("name") if p < len(data.get("sources") or []) else None
            parts.append(f"sources[{p}]" + (f" ({name})" if name else ""))
        elif p != "sources" and not str(p).startswith(("FieldRule", "list[")):
            parts.append(str(p))
    return ".".join(parts) or "(top level)"


def load_mapping(path: Path | str, allow_paths_outside: bool = False) -> Mapping:
    """The validated mapping; `allow_paths_outside` (the CLI's --allow-paths-outside) lets sources
    read files outside the mapping's folder, as `allow_paths_outside: true` in the file does."""
    path = Path(path)
    try:
        raw_bytes = path.read_bytes()
    except OSError as exc:
        raise MappingError(f"{path}: cannot read the mapping file: {exc.strerror or exc}") from None
    try:
        text = raw_bytes.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MappingError(f"{path}: the mapping file must be UTF-8: {exc}") from None
    try:
        data = yaml.load(text, Loader=_MappingLoader)  # noqa: S506 - a SafeLoader subclass
        root = yaml.compose(text, Loader=_MappingLoader)
    except yaml.YAMLError as exc:
        raise MappingError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise MappingError(f"{path}: the mapping must be a YAML mapping with a 'sources' list")
    try:
        mapping = Mapping.model_validate({**data, "base_dir": path.parent.resolve()})
    except ValidationError as exc:
        errors = exc.errors()
        # A field may be one rule or a list of rules: drop "should be a list / a rule" noise for the
        # union branch that was not meant when the other branch has a real error below it.
        shape_errors = ("list_type", "model_type", "dict_type")
        deeper = [_plain(e["loc"]) for e in errors if e["type"] not in shape_errors]
        errors = [e for e in errors if e["type"] not in shape_errors
                  or not any(loc[: len(_plain(e["loc"]))] == _plain(e["loc"]) and len(loc) > len(_plain(e["loc"]))
                             for loc in deeper)]
        # Problems across sources (a mention's parent) come as one error with their own locations.
        errors = [{**e, "loc": loc, "msg": msg} for e in errors for loc, msg in (
            e["ctx"]["error"].problems if isinstance((e.get("ctx") or {}).get("error"), _SourceProblems)
            else [(e["loc"], e["msg"])])]
        problems = []
        for e in errors[:MAX_REPORTED_ERRORS]:
            line = _line_of(root, e["loc"])
            msg = e["msg"].removeprefix("Value error, ")
            problems.append(f"{path}:{line}: {_describe(e['loc'], data)}: {msg}")
        if len(errors) > MAX_REPORTED_ERRORS:
            problems.append(f"... and {len(errors) - MAX_REPORTED_ERRORS} more problems")
        raise MappingError("\n".join(problems)) from None
    mapping.sha256 = hashlib.sha256(raw_bytes).hexdigest()
    mapping.allow_paths_outside = mapping.allow_paths_outside or allow_paths_outside
    outside = [(i, s, mapping.outside_folder(s)) for i, s in enumerate(mapping.sources)]
    problems = [f"{path}:{_line_of(root, ('sources', i, 'path'))}: sources[{i}] ({s.name}).path: {s.path} is "
                f"{real}, outside the mapping's folder {mapping.base_dir}; move the export into that folder, or "
                "set `allow_paths_outside: true` in the mapping (or pass --allow-paths-outside)"
                for i, s, real in outside if real is not None]
    if problems:
        raise MappingError("\n".join(problems))
    return mapping
