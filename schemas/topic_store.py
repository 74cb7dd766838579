"""The schema catalog on Kafka: every known schema in the compacted topic `gdx.schemas`.

A consumer without this repository reads the topic once, builds a SchemaCatalog from it and can
then decode any event by its header fingerprint. Record key: the 8 fingerprint bytes as 16 hex
digits (wire order); value: the full schema JSON (logical types and defaults included, which the
Parsing Canonical Form would drop); headers: schema name and version. Publishing is idempotent:
the same schema always lands under the same key, so compaction keeps one record per schema.

Schemas are registered before they are used, as a Kafka serializer registers with its registry:
every producer of events puts the versions it writes on the topic before its first event with
them (`SchemaAnnouncer`), so a consumer never meets a fingerprint the topic does not resolve.
"""

from __future__ import annotations

import asyncio
import json

from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from schemas.catalog import KnownSchema, SchemaCatalog
from schemas.fingerprint import SINGLE_OBJECT_MAGIC, fingerprint, schema_json

SCHEMA_TOPIC = "gdx.schemas"
NAME_HEADER = "gdx-schema-name"
VERSION_HEADER = "gdx-schema-version"


class SchemaTopicError(Exception):
    """The topic holds a record that is not a schema under its own fingerprint, or cannot be read in time."""


async def _send_schemas(producer: AIOKafkaProducer, topic: str, schemas: Iterable[KnownSchema]) -> int:
    """Send each schema as its topic record and wait until all in-sync replicas hold them all."""
    pending = []
    for known in sorted(schemas, key=lambda k: (k.name, k.version)):
        pending.append(
            await producer.send(
                topic,
                key=known.fingerprint.hex().encode("ascii"),
                value=schema_json(known.schema).encode("utf-8"),
                headers=[
                    (NAME_HEADER, known.name.encode("utf-8")),
                    (VERSION_HEADER, str(known.version).encode("ascii")),
                ],
            )
        )
    await asyncio.gather(*pending)
    return len(pending)


async def publish_schemas(bootstrap_servers: str, topic: str, catalog: SchemaCatalog, timeout_s: float = 15.0) -> int:
    """Write every schema of `catalog` (all versions); returns how many were acknowledged by all in-sync replicas."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        enable_idempotence=True,
        acks="all",
        request_timeout_ms=int(timeout_s * 1000),
    )
    try:
        await producer.start()
        return await _send_schemas(producer, topic, catalog.by_fingerprint.values())
    finally:
        await producer.stop()


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
        written = await _send_schemas(producer, self.topic, known) if known else 0
        settled.update(fresh)
        return written


def _known_from_record(key: bytes | None, value: bytes, headers: dict[str, bytes]) -> KnownSchema:
    try:
        schema = json.loads(value)
        known = KnownSchema(headers[NAME_HEADER].decode(), int(headers[VERSION_HEADER]), True, schema)
    except (ValueError, KeyError, TypeError) as exc:
        raise SchemaTopicError(f"record with key {key!r} is not a schema document: {exc}") from None
    if key is None or key.decode("ascii", "replace") != fingerprint(schema).hex():
        raise SchemaTopicError(f"record with key {key!r} holds a schema whose fingerprint is {known.fingerprint.hex()}")
    return known


async def _partitions(bootstrap_servers: str, topic: str, timeout_s: float) -> list[int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout_s * 1000))
    try:
        await admin.start()
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if described["error_code"] != 0 or not described["partitions"]:
        raise SchemaTopicError(f"topic {topic} does not exist (error code {described['error_code']})")
    return sorted(p["partition"] for p in described["partitions"])


async def load_schemas(bootstrap_servers: str, topic: str, timeout_s: float = 15.0) -> SchemaCatalog:
    """Read the whole topic (up to its end offsets at start) into a catalog keyed by fingerprint."""
    assigned = [TopicPartition(topic, p) for p in await _partitions(bootstrap_servers, topic, timeout_s)]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=int(timeout_s * 1000),
    )
    try:
        await consumer.start()
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        latest: dict[bytes, KnownSchema | None] = {}
        async with asyncio.timeout(timeout_s):
            while [tp for tp in assigned if await consumer.position(tp) < ends[tp]]:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    for record in records:
                        if record.value is None:  # a tombstone retires a schema
                            latest[record.key] = None
                            continue
                        latest[record.key] = _known_from_record(record.key, record.value, dict(record.headers))
        return SchemaCatalog(k for k in latest.values() if k is not None)
    except TimeoutError:
        raise SchemaTopicError(f"could not read {topic} to its end within {timeout_s:g}s") from None
    finally:
        await consumer.stop()
