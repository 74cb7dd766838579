"""Schemas are registered before they are used, as a Kafka serializer registers with its registry:
every producer of events puts the versions it writes on `gdx.schemas` before its first event with
them, so a consumer never meets a fingerprint the topic does not resolve."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aiokafka import AIOKafkaProducer

from schemas.catalog import KnownSchema, SchemaCatalog
from schemas.fingerprint import SINGLE_OBJECT_MAGIC
from schemas.schema_records import schema_record


async def send_schemas(producer: AIOKafkaProducer, topic: str, schemas: Iterable[KnownSchema]) -> int:
    """Send each schema as its topic record and wait until all in-sync replicas hold them all."""
    pending = []
    for known in sorted(schemas, key=lambda k: (k.name, k.version)):
        key, value, headers = schema_record(known)
        pending.append(await producer.send(topic, key=key, value=value, headers=headers))
    await asyncio.gather(*pending)
    return len(pending)


class SchemaAnnouncer:
    """Puts the schema of every event a producer is about to send on the schema topic first.

    The producer hands each batch's values over before it sends them; the first time a
    fingerprint appears, its schema is written (acks=all) and acknowledged before the batch goes,
    afterwards it costs one set lookup per value. A value whose fingerprint the catalog does not
    know (a malformed event, on purpose or not) is left to the consumer's dead-letter path: there
    is no schema to announce for it.
    """

    def __init__(self, catalog: SchemaCatalog, topic: str) -> None:
        self.catalog = catalog
        self.topic = topic
        self._settled: set[bytes] = set()

    async def before_send(self, producer: AIOKafkaProducer, values: Iterable[bytes]) -> int:
        """Announce what `values` need and is not on the topic yet; returns how many schemas were written."""
        settled = self._settled
        fresh = {value[2:10] for value in values if value[2:10] not in settled and value[:2] == SINGLE_OBJECT_MAGIC}
        if not fresh:
            return 0
        known = [self.catalog.by_fingerprint[fp] for fp in fresh if fp in self.catalog.by_fingerprint]
        written = await send_schemas(producer, self.topic, known) if known else 0
        settled.update(fresh)
        return written
