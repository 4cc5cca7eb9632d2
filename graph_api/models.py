"""Response models (request models join them as endpoints that take bodies arrive)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field


class Attribute(BaseModel):
    property: str = Field(description="Ontology property (graph name)")
    label_zh: str
    label_en: str
    category: str
    value: str | int | float | bool | None
    masked: bool = Field(description="True when the caller's role may not see the value unmasked")


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


class PersonRecord(BaseModel):
    master_id: str
    attributes: list[Attribute]
    memberships: list[Membership]
    source_records: list[SourceRecordRef]


class Health(BaseModel):
    status: str
    graph_build: str | None
