"""Schemas are registered before they are used: a consumer that knows only the bootstrap servers
reads `gdx.schemas` and decodes every event the simulated agencies published, though nobody ran a
schema command. The consumer here imports nothing of this repository's schemas: only the Kafka client factory,
fastavro and the topic names it lists from the cluster."""

from __future__ import annotations

import asyncio
import io
import json
import re
from typing import Any

import fastavro
import pytest
from aiokafka import TopicPartition

from streams.settings import Settings
from streams.topic_admin import apply_topics
from streams.topic_catalog import load_catalog
from tests.support.cli_run import run_gdx
from tests.support.kafka_env import clients

pytestmark = pytest.mark.kafka

CHANGE_TOPIC = re.compile(r"^gdx\.(dopa|dbd|dol|dlt)\.[a-z_-]+\.v\d+$")


async def read_all(bootstrap: str, partitions: list[TopicPartition]) -> dict[str, list[Any]]:
    """Every record of `partitions` up to their end offsets now."""
    consumer = clients(bootstrap).consumer(enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: dict[str, list[Any]] = {tp.topic: [] for tp in partitions}
        async with asyncio.timeout(60):
            while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
                for tp, batch in (await consumer.getmany(timeout_ms=500)).items():
                    records[tp.topic].extend(batch)
        return records
    finally:
        await consumer.stop()


async def foreign_consumer(bootstrap: str, prefix: str) -> tuple[dict[str, int], dict[str, list[int]], dict[str, int]]:
    """Decode every change event with schemas from `gdx.schemas` alone: (events per topic, the
    versions each topic's events were written with, when each schema record was written)."""
    admin = clients(bootstrap).admin()
    await admin.start()
    try:
        names = [n for n in await admin.list_topics() if n.startswith(prefix)]
        wanted = [prefix + "gdx.schemas", *sorted(n for n in names if CHANGE_TOPIC.match(n.removeprefix(prefix)))]
        partitions = [
            TopicPartition(t["topic"], p["partition"])
            for t in await admin.describe_topics(wanted)
            for p in t["partitions"]
        ]
    finally:
        await admin.close()
    records = await read_all(bootstrap, partitions)
    schemas, written_at, versions = {}, {}, {}
    for record in records.pop(prefix + "gdx.schemas"):
        fp = bytes.fromhex(record.key.decode())
        schemas[fp] = fastavro.parse_schema(json.loads(record.value), named_schemas={})
        written_at[fp.hex()] = min(written_at.get(fp.hex(), record.timestamp), record.timestamp)
        versions[fp] = int(dict(record.headers)["gdx-schema-version"])
    decoded: dict[str, int] = {}
    seen_versions: dict[str, list[int]] = {}
    first_use: dict[str, int] = {}
    for topic, batch in records.items():
        for record in batch:
            assert record.value[:2] == b"\xc3\x01", f"{topic}@{record.offset} is not single-object encoded"
            fp = record.value[2:10]
            assert fp in schemas, f"{topic}@{record.offset}: fingerprint {fp.hex()} is not on gdx.schemas"
            event = fastavro.schemaless_reader(io.BytesIO(record.value[10:]), schemas[fp], None)
            assert event["entity_key"] == record.key.decode()
            decoded[topic] = decoded.get(topic, 0) + 1
            seen_versions.setdefault(topic, []).append(versions[fp])
            first_use[fp.hex()] = min(first_use.get(fp.hex(), record.timestamp), record.timestamp)
    for fp, used_at in first_use.items():
        assert written_at[fp] <= used_at, f"schema {fp} reached gdx.schemas after its first event"
    return decoded, seen_versions, written_at


def test_a_consumer_with_only_the_bootstrap_servers_decodes_every_published_event(settings: Settings) -> None:
    apply_topics(settings, load_catalog())  # the operator's step: on a secured cluster agencies create no topic
    env = {"KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers, "GDX_TOPIC_PREFIX": settings.topic_prefix}
    report = settings.state_dir / "report.json"
    done = run_gdx(
        "simulate",
        "--scale",
        "1000",
        "--count",
        "300",
        "--rate",
        "10000",
        "--fault-old-schema",
        "0.3",
        "--store-dir",
        str(settings.state_dir / "agencies"),
        "--report",
        str(report),
        env=env,
    )
    assert done.code == 0, done.err
    published = sum(agency["sent_through"] for agency in json.loads(report.read_text())["agencies"])
    decoded, versions, schemas = asyncio.run(foreign_consumer(settings.bootstrap_servers, settings.topic_prefix))
    assert sum(decoded.values()) == published >= 4_000, "every published event was decoded"
    assert len(decoded) >= 10, f"events on only {sorted(decoded)}"
    assert any(min(v) < max(v) for v in versions.values()), "no event was written with an older schema version"
    assert len(schemas) < 40, "only the versions the agencies wrote are registered, not the whole catalog"
