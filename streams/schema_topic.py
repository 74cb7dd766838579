"""Reading and writing `gdx.schemas` (its record format is the contract's, `schemas.schema_records`)."""

from __future__ import annotations

import asyncio

from aiokafka import TopicPartition

from agencies.schema_announcer import send_schemas
from foundation.kafka_clients import KafkaClients
from schemas.catalog import KnownSchema, SchemaCatalog
from schemas.schema_records import SchemaTopicError, known_from_record


async def publish_schemas(kafka: KafkaClients, topic: str, catalog: SchemaCatalog, timeout_s: float = 15.0) -> int:
    """Write every schema of `catalog` (all versions); returns how many were acknowledged by all in-sync replicas."""
    producer = kafka.producer(enable_idempotence=True, acks="all", request_timeout_ms=int(timeout_s * 1000))
    try:
        await producer.start()
        return await send_schemas(producer, topic, catalog.by_fingerprint.values())
    finally:
        await producer.stop()


async def _partitions(kafka: KafkaClients, topic: str, timeout_s: float) -> list[int]:
    admin = kafka.admin(request_timeout_ms=int(timeout_s * 1000))
    try:
        await admin.start()
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if described["error_code"] != 0 or not described["partitions"]:
        raise SchemaTopicError(f"topic {topic} does not exist (error code {described['error_code']})")
    return sorted(p["partition"] for p in described["partitions"])


async def load_schemas(kafka: KafkaClients, topic: str, timeout_s: float = 15.0) -> SchemaCatalog:
    """Read the whole topic (up to its end offsets at start) into a catalog keyed by fingerprint."""
    assigned = [TopicPartition(topic, p) for p in await _partitions(kafka, topic, timeout_s)]
    consumer = kafka.consumer(
        enable_auto_commit=False, auto_offset_reset="earliest", request_timeout_ms=int(timeout_s * 1000)
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
                        latest[record.key] = known_from_record(record.key, record.value, dict(record.headers))
        return SchemaCatalog(k for k in latest.values() if k is not None)
    except TimeoutError:
        raise SchemaTopicError(f"could not read {topic} to its end within {timeout_s:g}s") from None
    finally:
        await consumer.stop()
