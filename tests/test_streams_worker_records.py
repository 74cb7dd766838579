"""Any record shape Kafka can deliver is handled inside the worker's safety net, against the real
broker, the real registry and a real worker process: a header without a value (the topics are
compacted, so every record has a key), a value without the wire format's header, a schema id the
registry does not hold, and a body its schema does not read."""

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
    bad = [  # one key, so one partition keeps their order in the dead-letter topic
        b"garbage",
        b"\x00" + (2**31 - 1).to_bytes(4, "big") + vehicle[5:],
        vehicle[:-9],
    ]
    asyncio.run(
        produce(
            bootstrap_servers,
            topic,
            [
                (b"MR0FZ29G201234567", vehicle, [*null_header, *backbone.signed("dlt", vehicle)]),
                *((b"garbage-key", value, [*null_header, *backbone.signed("dlt", value)]) for value in bad),
            ],
        )
    )
    with worker(backbone) as process:
        wait_caught_up(backbone, 120, process)
    assert record_view(index_engine(backbone.index_url), "dlt.vehicle", "MR0FZ29G201234567") is not None
    dead = asyncio.run(_headers_on(bootstrap_servers, f"{backbone.prefix}gdx.dlq.gdx.dlt.vehicle.v1"))
    assert len(dead) == len(bad) and all(headers[:2] == null_header for headers in dead)
    reasons = [dict(headers)["gdx-dlq-reason"] for headers in dead]
    assert reasons == [b"not-wire-framed", b"unknown-schema-id", b"body-mismatch"]
