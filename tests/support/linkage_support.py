"""Building index events for tests: the schemas' example events, encoded and decoded for real."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from linkage.index_event import IndexEvent
from schemas.catalog import load_schema_catalog
from schemas.codec import Codec
from schemas.examples import example_events
from schemas.validation import validate_event
from tests.support.schema_helpers import schema_by_id, wire

CATALOG = load_schema_catalog()
CODEC = Codec(CATALOG, schema_by_id)
DATASET_OF = {name: f"{agency}.{dataset}" for (agency, dataset), name in CATALOG.datasets.items()}
SCHEMA_OF = {dataset: name for name, dataset in DATASET_OF.items()}


def citizen_party(citizen_id: str, name: str = "ทดสอบ") -> dict[str, str]:
    """A payload's party field naming a citizen."""
    return {"kind": "CITIZEN", "id": citizen_id, "name": name}


def encode(dataset: str, record: dict[str, Any]) -> bytes:
    """The event as an agency's outbox stores it (single-object encoding)."""
    return CODEC.encode(SCHEMA_OF[dataset], record)


def on_wire(dataset: str, record: dict[str, Any]) -> bytes:
    """The event in the wire format under the catalog's own ids (`schema_helpers.schema_by_id`)."""
    return wire(encode(dataset, record))


def index_event(
    dataset: str,
    version: int = 1,
    change_type: str = "CREATE",
    event_id: str | None = None,
    source_ms: int | None = None,
    **payload_changes: Any,
) -> IndexEvent:
    """An example event of `dataset` at `version`, passed through the real codec and validation.

    The envelope's key and references are recomputed from the changed payload, as a publisher does.
    """
    return IndexEvent.from_record(
        dataset, decoded_record(dataset, version, change_type, event_id, source_ms, **payload_changes)
    )


def decoded_record(
    dataset: str,
    version: int = 1,
    change_type: str = "CREATE",
    event_id: str | None = None,
    source_ms: int | None = None,
    **payload_changes: Any,
) -> dict[str, Any]:
    event = example_events()[SCHEMA_OF[dataset]]
    payload = type(event.payload).model_validate({**event.payload.model_dump(), **payload_changes})
    envelope = event.model_dump()
    if source_ms is not None:
        envelope["source_time"] = envelope["published_time"] = datetime.fromtimestamp(source_ms / 1000, UTC)
    record = (
        type(event)
        .model_validate(
            {
                **envelope,
                "entity_key": payload.entity_key(),
                "entity_version": version,
                "change_type": change_type,
                "event_id": event_id or str(uuid.uuid4()),
                "payload": None if change_type == "DELETE" else payload.model_dump(),
                "references": {
                    "citizen_ids": sorted(payload.citizen_ids()),
                    "juristic_ids": sorted(payload.juristic_ids()),
                },
            }
        )
        .to_avro()
    )
    decoded = CODEC.decode_stored(encode(dataset, record))
    validate_event(decoded)
    return decoded.record
