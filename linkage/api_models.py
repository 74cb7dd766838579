"""The lookup API's request and answer shapes: what the OpenAPI document promises."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, Field


class Provenance(BaseModel):
    """Where a record comes from and how fresh it is."""

    agency: str
    dataset: str
    dataset_code: int
    entity_version: int
    change_type: str
    event_id: str
    signed_by: str | None = Field(
        description="id of the owning agency's key whose signature over this version's event was verified "
        "(null: accepted unsigned under a migration policy); check it against the published trust list"
    )
    source_time: str = Field(description="when the owning agency committed this version (UTC, ISO 8601)")
    as_of: str = Field(description="when the index applied it: the answer is current as of this time")


class Party(BaseModel):
    relation: str
    kind: str
    id: str
    share: str | None
    status: str | None


class RecordOut(BaseModel):
    dataset: str
    entity_key: str | None = Field(default=None, description="the record's own key; only where the purpose lists it")
    relation: str | None = Field(
        default=None, description="how the record names the person (linked records); only where the purpose lists it"
    )
    share: str | None = Field(default=None, description="the person's share; only where the purpose lists it")
    fields: dict[str, Any] = Field(description="only the fields the purpose may see")
    provenance: Provenance
    parties: list[Party] | None = Field(
        default=None, description="other parties named; only where the purpose lists them"
    )


class Answer(BaseModel):
    request_id: str
    consumer: str
    purpose: str
    basis: str = Field(description="the legal mandate or the consent that allowed the request")
    answered_at: str


class PartyAnswer(Answer):
    kind: str
    id: str
    status: str | None = Field(description="ACTIVE, DECEASED, DISSOLVED, ...; only where the registry is permitted")
    record: RecordOut | None
    linked: list[RecordOut]


class VerifyRequest(BaseModel):
    citizen_id: str = Field(description="13-digit citizen ID")
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    date_of_birth: date | None = None


class VerifyAnswer(Answer):
    citizen_id: str
    exists: bool
    alive: bool | None = Field(description="null when the ID does not exist")
    name_matches: bool | None = Field(description="null when no name was given or the ID does not exist")
    date_of_birth_matches: bool | None = Field(description="null when no date was given or the ID does not exist")
    provenance: Provenance | None


class AccessEntry(BaseModel):
    time: str
    consumer: str
    consumer_name: str
    purpose: str
    operation: str
    datasets: list[str]
    decision: str
    reason: str | None
    request_id: str


class AccessLogAnswer(Answer):
    citizen_id: str
    accesses: list[AccessEntry]


class Problem(BaseModel):
    """Every refusal: the HTTP status, a stable reason word, and what went wrong."""

    status: int
    reason: str
    detail: str
    request_id: str
    consent_reason: str | None = None
