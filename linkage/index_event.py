"""A change event as the index applies it: the envelope's fields, flattened, and the payload."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from linkage.link_rules import Link, links_of

CHANGE_TYPES = ("CREATE", "UPDATE", "DELETE", "SNAPSHOT")


def epoch_ms(moment: datetime | int) -> int:
    return moment if isinstance(moment, int) else int(moment.timestamp() * 1000)


@dataclass(slots=True)
class IndexEvent:
    """Not frozen, though nothing changes one once built: a frozen dataclass sets each field through
    object.__setattr__, which made building one cost more than validating the event."""

    dataset: str
    agency: str
    dataset_code: int
    entity_key: str
    entity_version: int
    change_type: str
    event_id: str
    trace_id: str
    source_ms: int
    published_ms: int
    citizen_ids: tuple[str, ...]
    juristic_ids: tuple[str, ...]
    payload: dict[str, Any] | None
    signed_by: str | None = None
    """The id of the agency key whose signature the worker verified; None: accepted unsigned."""
    key: tuple[str, str] = field(init=False, repr=False, compare=False)
    links: tuple[Link, ...] = field(init=False, repr=False, compare=False)
    """Computed once: a batch asks for them to write the links, the link history and the notices."""

    def __post_init__(self) -> None:
        self.key = (self.dataset, self.entity_key)
        self.links = tuple(
            links_of(self.dataset, self.entity_key, self.payload, list(self.citizen_ids), list(self.juristic_ids))
        )

    @classmethod
    def from_record(cls, dataset: str, record: dict[str, Any], signed_by: str | None = None) -> IndexEvent:
        """Build from a decoded (and validated) Avro record of `dataset` (`<agency>.<dataset>`)."""
        references = record["references"]
        payload = record["payload"]
        return cls(
            dataset=dataset,
            agency=str(record["source_agency"]),
            dataset_code=int(record["dataset_code"]),
            entity_key=record["entity_key"],
            entity_version=int(record["entity_version"]),
            change_type=str(record["change_type"]),
            event_id=str(record["event_id"]),
            trace_id=record["trace_id"],
            source_ms=epoch_ms(record["source_time"]),
            published_ms=epoch_ms(record["published_time"]),
            citizen_ids=tuple(references["citizen_ids"]),
            juristic_ids=tuple(references["juristic_ids"]),
            payload=None if record["change_type"] == "DELETE" else payload,
            signed_by=signed_by,
        )
