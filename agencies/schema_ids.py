"""From the outbox's self-describing events to the Kafka world's wire format, at send time.

An agency's store keeps each event as Avro single-object encoding (`C3 01`, the schema's
fingerprint, the body), so the outbox is readable without any registry. On the wire an event is in
the Confluent format every Kafka tool reads (`00`, the registry's 4-byte schema id, the same body),
under the subject of its topic (`<topic>-value`). The id of each (topic, schema) is asked of the
registry once and cached; a producer under the development profile registers a schema the subject
does not hold yet, as Confluent's serializers do with `auto.register.schemas`, while one under the
production profile only looks ids up, so that only `gdx schemas publish` changes what a subject
accepts. A value that is not a well-formed stored event (an injected malformed record) goes out as
it is, for the consumer's dead-letter path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from foundation.errors import GdxError
from foundation.schema_registry import SchemaRegistry
from schemas.catalog import SchemaCatalog
from schemas.codec import HEADER_SIZE, wire_header
from schemas.fingerprint import SINGLE_OBJECT_MAGIC, schema_json


def value_subject(topic: str) -> str:
    """The registry subject of a topic's record values (Confluent's TopicNameStrategy)."""
    return f"{topic}-value"


class SchemaNotRegistered(GdxError):
    """A producer that may not register met a schema its topic's subject does not hold."""


class SchemaIds:
    """(topic, fingerprint) -> the wire header carrying the registry's id, asked for once."""

    def __init__(self, catalog: SchemaCatalog, registry: SchemaRegistry, register: bool) -> None:
        self.catalog = catalog
        self.registry = registry
        self.register = register
        self._headers: dict[tuple[str, bytes], bytes] = {}

    async def settle(self, pairs: Iterable[tuple[str, bytes]]) -> int:
        """Make sure every (topic, stored value) about to be sent has its id; returns how many were
        asked of the registry. Registry calls block, so they run off the event loop."""
        fresh = {
            (topic, value[2:HEADER_SIZE])
            for topic, value in pairs
            if (topic, value[2:HEADER_SIZE]) not in self._headers and value[:2] == SINGLE_OBJECT_MAGIC
        }
        asked = 0
        for topic, fp in sorted(fresh):
            known = self.catalog.by_fingerprint.get(fp)
            if known is None:
                continue  # not one of our schemas: sent as it is, dead-lettered by the consumer
            self._headers[(topic, fp)] = wire_header(await asyncio.to_thread(self._id, topic, known.name, known.schema))
            asked += 1
        return asked

    def _id(self, topic: str, name: str, schema: object) -> int:
        subject, text = value_subject(topic), schema_json(schema)
        if self.register:
            return self.registry.register(subject, text)
        schema_id = self.registry.lookup(subject, text)
        if schema_id is None:
            raise SchemaNotRegistered(
                f"{name} is not registered under the subject {subject}, and this profile does not register",
                "register the released schemas with `gdx schemas publish` (the operator's)",
            )
        return schema_id

    def framed(self, topic: str, value: bytes) -> bytes:
        """The wire form of a stored value whose id `settle` fetched; anything else unchanged."""
        header = self._headers.get((topic, value[2:HEADER_SIZE]))
        if header is None or value[:2] != SINGLE_OBJECT_MAGIC:
            return value
        return header + value[HEADER_SIZE:]
