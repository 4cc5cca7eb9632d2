"""Request and response models: requests say what a caller may send, responses what they get back."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, model_validator

from graph_api.errors import SURROGATE, printable

Value = str | int | float | bool | dt.date | dt.datetime | None


# ---- what every request may carry -----------------------------------------------------------------
def _lone_surrogate_at(value: Any) -> str | None:
    """The path (`reason`, `parameters.name`, `ids[1]`) of a text holding a lone surrogate, if any.
    Iterative: a body may nest as deep as the JSON parser allows."""
    pending: list[tuple[Any, str]] = [(value, "")]
    while pending:
        item, where = pending.pop()
        if isinstance(item, str):
            if SURROGATE.search(item):
                return where
        elif isinstance(item, dict):
            for key, child in item.items():
                path = f"{where}.{key!s}".lstrip(".")
                pending += [(child, path), (key, path)]
        elif isinstance(item, list):
            pending += [(child, f"{where}[{i}]") for i, child in enumerate(item)]
    return None


class RequestBody(BaseModel):
    """A JSON request body. JSON may spell half a UTF-16 pair (`"\\ud800"`), which no UTF-8 text
    can hold: refused here (422) for every field at any depth, before it reaches the state
    database or the graph, where it could only fail."""

    @model_validator(mode="before")
    @classmethod
    def valid_unicode(cls, data: Any) -> Any:
        if (where := _lone_surrogate_at(data)) is not None:  # (a key may hold it: the path is made printable)
            raise ValueError(f"{printable(where) or 'body'}: contains a lone UTF-16 surrogate (such as \\ud800), "
                             "which is not valid Unicode text")
        return data


def _naive_utc(value: dt.datetime) -> dt.datetime:
    """The store and the graph keep UTC without a zone; a zoned time is converted, and one that
    falls outside years 1–9999 once in UTC (9999-12-31T23:00-14:00) is refused, not a 500."""
    if value.tzinfo is None:
        return value
    try:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    except OverflowError:
        raise ValueError("outside years 1–9999 once converted to UTC") from None


UtcDateTime = Annotated[dt.datetime, AfterValidator(_naive_utc)]


# ---- responses: persons -------------------------------------------------------------------------
class Candidate(BaseModel):
    value: Value
    system: str | None
    system_name: str | None
    record_id: str | None


class AttributeValue(BaseModel):
    property: str = Field(description="Ontology property (graph name)")
    label_zh: str
    label_en: str
    value: Value
    masked: bool = Field(description="True when the caller's role may not see the value unmasked")
    source_system: str | None = Field(description="The system the chosen value came from")
    source_system_name: str | None
    source_record: str | None
    authority: int | None = Field(description="Authority rank of that source for this property (1: 一数一源)")
    last_updated: dt.datetime | None = Field(description="When the chosen value was last seen in its source")
    rule: str | None = Field(description="Survivorship rule, or `correction:<request>` for an approved correction")
    conflict: list[Candidate] | None = Field(
        description="Other current values the sources hold (an open conflict), or null when they agree")


class Category(BaseModel):
    category: str
    label_zh: str
    label_en: str
    attributes: list[AttributeValue]


class SourceRecordRef(BaseModel):
    record_id: str
    system: str
    system_name: str | None
    department: str | None
    table: str | None
    record_key: str
    rule: str | None = Field(description="The resolution rule that linked this record to the master")


class Membership(BaseModel):
    """A dated position or membership (org:Membership, vivo:Position)."""

    org_id: str
    org_name: str | None
    role: str | None
    start_date: dt.date | None = None
    end_date: dt.date | None = None


class Related(BaseModel):
    relation: str = Field(description="Relationship type, e.g. AUTHOR_OF, LEADS, CUSTODIAN_OF, ADVISES")
    direction: Literal["out", "in"]
    label_zh: str
    label_en: str
    id: str
    title: str | None
    properties: dict[str, Value] = Field(default_factory=dict)


class PersonRecord(BaseModel):
    master_id: str
    requested_id: str = Field(description="The ID asked for: a former ID answers with the entity it was merged into")
    status: Literal["active", "merged"]
    categories: list[Category]
    memberships: list[Membership]
    related: list[Related]
    source_records: list[SourceRecordRef]


class Health(BaseModel):
    status: str
    graph_build: str | None


# ---- corrections --------------------------------------------------------------------------------
class CorrectionRequest(RequestBody):
    property: str = Field(description="The ontology property to correct, e.g. phone", examples=["phone"])
    proposed_value: str = Field(min_length=1, max_length=500)
    reason: str = Field(min_length=1, max_length=2000)
    evidence: str | None = Field(default=None, max_length=2000,
                                 description="A reference to supporting evidence (document number, file link)")


class Correction(BaseModel):
    request_id: str
    person_id: str
    property: str
    current_value: str | None
    proposed_value: str
    reason: str
    evidence: str | None
    status: Literal["open", "approved", "refused"]
    requested_at: dt.datetime
    decided_at: dt.datetime | None
    decided_by: str | None
    note: str | None = Field(description="The steward's reason for approving or refusing")


class CorrectionDecision(RequestBody):
    status: Literal["approved", "refused"]
    note: str = Field(min_length=1, max_length=2000, description="Why: told to the person (PIPL art. 50)")


# ---- forms --------------------------------------------------------------------------------------
class PrefillRequest(RequestBody):
    person_id: str | None = Field(default=None, description="Master person; a `self` caller's own by default")


class FormField(BaseModel):
    label: str
    source: str = Field(description="The ontology property or derivation that fills it")
    value: Value
    masked: bool
    source_system: str | None
    source_record: str | None
    rule: str | None


class FormTemplateInfo(BaseModel):
    name: str
    title_zh: str
    title_en: str
    audience: str
    fields: list[str]


class Prefill(BaseModel):
    template: str
    title_zh: str
    title_en: str
    person_id: str
    fields: list[FormField]
    unfilled: list[str] = Field(description="Labels the graph could not fill: the person fills these by hand")


# ---- review -------------------------------------------------------------------------------------
class ReviewItem(BaseModel):
    item_id: str
    entity_type: str
    record_a: str
    record_b: str
    master_a: str | None
    master_b: str | None
    match_probability: float | None
    match_weight: float | None
    # what a decision teaches the model, 0 … 1 (resolution/review_priority.py); the queue's order
    priority: float | None = None
    reason: str | None
    departments: list[str]
    status: Literal["open", "decided"]
    judgement: str | None


class ReviewPage(BaseModel):
    total: int
    page: int
    page_size: int
    items: list[ReviewItem]


class Comparison(BaseModel):
    comparison: str
    match_weight: float | None
    value_a: Value = None
    value_b: Value = None


class RecordSide(BaseModel):
    record_id: str
    system: str | None
    system_name: str | None
    master_id: str | None
    values: dict[str, Value]


class ReviewItemDetail(BaseModel):
    item: ReviewItem
    records: list[RecordSide]
    comparisons: list[Comparison]
    decisions: list[dict[str, Any]]


class Judgement(RequestBody):
    judgement: Literal["same", "not_same", "unsure"]
    reason: str = Field(min_length=1, max_length=2000)


class MergeRequest(RequestBody):
    entity_type: Literal["Person"] = "Person"
    ids: list[str] = Field(min_length=2, max_length=20, description="Master IDs that are one entity")
    reason: str = Field(min_length=1, max_length=2000)


class SplitRequest(RequestBody):
    groups: list[list[str]] = Field(min_length=2, max_length=10,
                                    description="Source record IDs of the entity, one list per separate entity")
    reason: str = Field(min_length=1, max_length=2000)


class UnmergeRequest(RequestBody):
    reason: str = Field(min_length=1, max_length=2000)


class Accepted(BaseModel):
    """A decision recorded; the graph follows when the apply pass `job` finishes (GET /jobs/apply)."""

    decisions: list[int]
    job: int
    detail: str


class ApplyJob(BaseModel):
    state: str
    requested: int
    completed: int
    last_started: dt.datetime | None
    last_finished: dt.datetime | None
    last_build: str | None
    last_mode: str | None
    last_error: str | None
    reasons: list[str]


# ---- analysts -----------------------------------------------------------------------------------
class CypherRequest(RequestBody):
    query: str = Field(min_length=1, max_length=20_000, examples=["MATCH (o:Organisation) RETURN o.name LIMIT 5"])
    parameters: dict[str, Any] = Field(default_factory=dict)


class SavedQueryRequest(RequestBody):
    parameters: dict[str, Any] = Field(default_factory=dict)
    entity: str | None = Field(default=None, description="The master class for queries that take one (`:Entity`)",
                               examples=["Person"])


class CypherResult(BaseModel):
    columns: list[str]
    rows: list[dict[str, Any]]
    row_count: int
    truncated: bool = Field(description="True when the row cap cut the answer")
    masked: bool = Field(description="True when sensitive values were masked for the caller's role")


class SavedQuery(BaseModel):
    name: str
    description: str
    parameters: list[str]
    needs_entity: bool = Field(description="True when the query's `:Entity` label must be named (`entity`)")
    text: str


# ---- auditors -----------------------------------------------------------------------------------
class LineageStatement(BaseModel):
    statement_id: str
    value: Value
    written_value: Value
    chosen: bool | None
    rule: str | None
    authority: int | None
    first_seen: dt.datetime | None
    last_seen: dt.datetime | None
    retired_at: dt.datetime | None
    record_id: str | None
    record_key: str | None
    table_name: str | None
    system: str | None
    system_name: str | None
    run_id: str | None


class Lineage(BaseModel):
    entity_id: str
    property: str
    value: Value = Field(description="The value the graph holds now")
    rule: str | None
    masked: bool
    as_of: str | None = None
    value_as_of: Value = None
    statements: list[LineageStatement]
    decisions: list[dict[str, Any]] = Field(description="Steward judgements on the entity's records")
    corrections: list[Correction]


class FormerIdRef(BaseModel):
    former_id: str
    entity_type: str | None
    status: str | None
    changed_at: dt.datetime | None
    merged_into: str | None


class EntityHistory(BaseModel):
    id: str
    status: str
    merged_into: str | None
    changed_at: dt.datetime | None
    absorbed: list[FormerIdRef]
    decisions: list[dict[str, Any]]


class AccessEntry(BaseModel):
    id: int
    at: dt.datetime
    actor: str
    role: str
    person_id: str | None
    endpoint: str
    fields: list[str]
    client: str | None


class AuditEntry(BaseModel):
    id: int
    at: dt.datetime
    actor: str
    role: str
    action: str
    target: str | None
    detail: dict[str, Any]


# ---- portraits ----------------------------------------------------------------------------------
class Section(BaseModel):
    available: bool = Field(description="False when no source system feeds this section yet")
    note: str | None = None
    rows: list[dict[str, Any]] = Field(default_factory=list)


class Portrait(BaseModel):
    person_id: str
    name: str | None
    sections: dict[str, Section]


class ResearchPortrait(BaseModel):
    org: str | None
    org_name: str | None
    by_year: list[dict[str, Any]]
    by_org: list[dict[str, Any]]
