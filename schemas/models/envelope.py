"""The change-event envelope as a model, with the rules that tie it to its payload."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, ClassVar
from uuid import UUID

from pydantic import AfterValidator, Field, StringConstraints, create_model, model_validator

from schemas.models.common import KeyText, Payload, Record, UtcMillis, require


class Agency(StrEnum):
    DOPA = "DOPA"
    DBD = "DBD"
    DOL = "DOL"
    DLT = "DLT"


class ChangeType(StrEnum):
    CREATE = "CREATE"
    UPDATE = "UPDATE"
    DELETE = "DELETE"
    SNAPSHOT = "SNAPSHOT"


class References(Record):
    citizen_ids: list[str]
    juristic_ids: list[str]


def _non_zero_trace(value: str) -> str:
    if value == "0" * 32:
        raise ValueError("the all-zero trace id is invalid in W3C trace-context")
    return value


TraceId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$"), AfterValidator(_non_zero_trace)]


class ChangeEvent(Record):
    """Envelope fields; a dataset's event model adds `payload` of its own type (see event_model)."""

    PAYLOAD: ClassVar[type[Payload]]

    event_id: UUID
    dataset_code: int
    source_agency: Agency
    entity_key: KeyText
    entity_version: Annotated[int, Field(ge=1)]
    change_type: ChangeType
    source_time: UtcMillis
    published_time: UtcMillis
    trace_id: TraceId
    references: References
    payload: Any = None

    @classmethod
    def avro_name(cls) -> str:
        return cls.PAYLOAD.AVRO_NAME + "Event"

    @model_validator(mode="after")
    def _consistent(self) -> ChangeEvent:
        kind = self.PAYLOAD
        require(
            self.dataset_code in kind.CODES,
            f"dataset_code {self.dataset_code} is not a {kind.DATASET} code {list(kind.CODES)}",
        )
        require(
            self.source_agency == kind.AGENCY.upper(),
            f"{kind.DATASET} is owned by {kind.AGENCY.upper()}, not {self.source_agency}",
        )
        require(self.published_time >= self.source_time, "published_time is before source_time")
        for field in ("citizen_ids", "juristic_ids"):
            listed = getattr(self.references, field)
            require(len(listed) == len(set(listed)), f"references.{field} lists an ID twice")
        if self.change_type is ChangeType.DELETE:
            require(self.payload is None, "a DELETE carries no payload")
            return self
        require(self.payload is not None, f"a {self.change_type} carries the entity as payload")
        payload: Payload = self.payload
        require(
            self.entity_key == payload.entity_key(),
            f"entity_key {self.entity_key!r} does not match the payload's key {payload.entity_key()!r}",
        )
        for field, in_payload in (("citizen_ids", payload.citizen_ids()), ("juristic_ids", payload.juristic_ids())):
            listed = getattr(self.references, field)
            require(
                set(listed) == in_payload,
                f"references.{field} {sorted(listed)} != IDs in the payload {sorted(in_payload)}",
            )
        return self

    def to_avro(self) -> dict[str, Any]:
        """The record as the codec writes it (enums as symbols, logical types as Python values)."""
        return self.model_dump()


def event_model(payload: type[Payload]) -> type[ChangeEvent]:
    """The event model of one dataset: the envelope with `payload` typed as that dataset's record."""
    optional: Any = payload | None
    model = create_model(
        payload.__name__ + "Event",
        __base__=ChangeEvent,
        __module__=payload.__module__,
        payload=(optional, None),
    )
    model.PAYLOAD = payload
    return model
