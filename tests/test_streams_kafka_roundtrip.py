"""An idempotent, acks=all producer and a consumer group that resumes from its committed offsets.

Runs against the session's single broker and against a 3-broker cluster (replication 3,
min.insync.replicas 2), both real Kafka started by the project's launcher.
"""

from __future__ import annotations

import uuid

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import NewTopic

from tests.support.kafka_env import clients

MESSAGES = 120
FIRST_BATCH = 50


async def _create_topic(bootstrap: str, topic: str, partitions: int) -> int:
    admin = clients(bootstrap).admin()
    await admin.start()
    try:
        brokers = len((await admin.describe_cluster())["brokers"])
        replication = min(3, brokers)
        configs = {"min.insync.replicas": str(2 if replication >= 3 else 1)}
        await admin.create_topics([NewTopic(topic, partitions, replication, topic_configs=configs)])
        return replication
    finally:
        await admin.close()


async def _consume(bootstrap: str, topic: str, group: str, limit: int) -> list[tuple[int, int, bytes]]:
    """Read up to `limit` records, commit exactly those, and leave the group."""
    consumer = clients(bootstrap).consumer(
        topic,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=7,
    )
    await consumer.start()
    seen: list[tuple[int, int, bytes]] = []
    try:
        while len(seen) < limit:
            batches = await consumer.getmany(timeout_ms=10_000)
            assert batches, f"no records within 10 s after {len(seen)} of {limit}"
            processed: dict[TopicPartition, int] = {}
            for tp, records in batches.items():
                for record in records:
                    if len(seen) == limit:
                        break
                    seen.append((record.partition, record.offset, record.value))
                    processed[tp] = record.offset + 1
            await consumer.commit(processed)
    finally:
        await consumer.stop()
    return seen


@pytest.fixture(params=["1-broker", "3-broker"])
def cluster_bootstrap(request: pytest.FixtureRequest) -> str:
    name = "bootstrap_servers" if request.param == "1-broker" else "three_broker_bootstrap"
    return request.getfixturevalue(name)


@pytest.mark.kafka
async def test_idempotent_producer_round_trip_resumes_from_committed_offsets(cluster_bootstrap: str) -> None:
    topic = f"t{uuid.uuid4().hex[:10]}.roundtrip"
    replication = await _create_topic(cluster_bootstrap, topic, partitions=3)
    producer = clients(cluster_bootstrap).producer(enable_idempotence=True, acks="all", linger_ms=5)
    await producer.start()
    try:
        sent = [f"event-{i}".encode() for i in range(MESSAGES)]
        futures = [await producer.send(topic, value, key=str(i % 17).encode()) for i, value in enumerate(sent)]
        metadata = [await f for f in futures]
    finally:
        await producer.stop()
    assert all(m.offset >= 0 for m in metadata)

    group = f"g-{uuid.uuid4().hex[:8]}"
    first = await _consume(cluster_bootstrap, topic, group, FIRST_BATCH)
    rest = await _consume(cluster_bootstrap, topic, group, MESSAGES - FIRST_BATCH)

    assert len(first) == FIRST_BATCH
    assert {v for *_, v in first}.isdisjoint({v for *_, v in rest}), "a committed record was delivered again"
    assert sorted(v for *_, v in first + rest) == sorted(sent), "records lost or duplicated"
    for partition in range(3):
        first_offsets = [o for p, o, _ in first if p == partition]
        rest_offsets = [o for p, o, _ in rest if p == partition]
        if first_offsets and rest_offsets:
            assert min(rest_offsets) == max(first_offsets) + 1, "the restarted consumer did not resume at the commit"
    assert replication == (3 if cluster_bootstrap.count(",") == 2 else 1)
