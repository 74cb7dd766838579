"""Any record shape Kafka can deliver is handled inside the worker's safety net, against the real
broker and a real worker process: a header without a value (the topics are compacted, so every
record has a key)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from linkage.database import index_engine
from linkage.views import record_view
from streams.kafka_probe import topic_partitions
from tests.support.kafka_env import clients
from tests.support.linkage_support import decoded_record, encode
from tests.support.registry_support import framed
from tests.support.stream_harness import Backbone, produce, wait_caught_up, worker

pytestmark = pytest.mark.kafka


async def _headers_on(bootstrap: str, topic: str) -> list[list[tuple[str, bytes | None]]]:
    partitions = await topic_partitions(clients(bootstrap), [topic])
    consumer = clients(bootstrap).consumer(enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: list[list[tuple[str, bytes | None]]] = []
        while len(found) < sum(ends.values()):
            for messages in (await consumer.getmany(timeout_ms=1000)).values():
                found.extend(list(m.headers) for m in messages)
        return found
    finally:
        await consumer.stop()


def test_a_header_without_a_value_neither_stops_the_worker_nor_is_lost(bootstrap_servers: str, tmp_path: Path) -> None:
    backbone = Backbone(
        bootstrap_servers, f"r{uuid.uuid4().hex[:8]}.", tmp_path / "state", f"sqlite:///{tmp_path / 'index.db'}"
    )
    assert backbone.gdx("topics", "apply").code == 0
    topic = f"{backbone.prefix}gdx.dlt.vehicle.v1"
    vehicle = framed(topic, encode("dlt.vehicle", decoded_record("dlt.vehicle")))
    null_header: list[tuple[str, bytes | None]] = [("traceparent", None), ("origin", b"test")]
    asyncio.run(
        produce(
            bootstrap_servers,
            topic,
            [
                (b"MR0FZ29G201234567", vehicle, [*null_header, *backbone.signed("dlt", vehicle)]),
                (b"garbage-key", b"garbage", [*null_header, *backbone.signed("dlt", b"garbage")]),
            ],
        )
    )
    with worker(backbone) as process:
        wait_caught_up(backbone, 120, process)
    assert record_view(index_engine(backbone.index_url), "dlt.vehicle", "MR0FZ29G201234567") is not None
    dead = asyncio.run(_headers_on(bootstrap_servers, f"{backbone.prefix}gdx.dlq.gdx.dlt.vehicle.v1"))
    assert len(dead) == 1 and dead[0][:2] == null_header
