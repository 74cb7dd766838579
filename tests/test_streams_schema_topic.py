"""`gdx.schemas` on a real broker: published by fingerprint, read back by a consumer that has
nothing but the topic, and enough to decode every dataset's events, old versions included."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import NewTopic

from schemas.codec import Codec
from schemas.schema_records import NAME_HEADER, SCHEMA_TOPIC, VERSION_HEADER, SchemaTopicError
from streams.cli import main
from streams.schema_topic import load_schemas, publish_schemas
from streams.settings import Settings
from tests.support.schema_helpers import SCHEMA_NAMES, catalog, codec, example_record

pytestmark = pytest.mark.kafka


async def create_schema_topic(settings: Settings) -> str:
    topic = settings.topic(SCHEMA_TOPIC)
    admin = settings.kafka.admin()
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1, topic_configs={"cleanup.policy": "compact"})])
    finally:
        await admin.close()
    return topic


async def produce(
    settings: Settings, topic: str, key: bytes, value: bytes | None, headers: list[tuple[str, bytes]]
) -> None:
    producer = settings.kafka.producer(acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, key=key, value=value, headers=headers)
    finally:
        await producer.stop()


async def test_a_consumer_with_only_the_topic_decodes_every_dataset(settings: Settings) -> None:
    topic = await create_schema_topic(settings)
    expected = len(catalog().by_fingerprint)
    assert await publish_schemas(settings.kafka, topic, catalog()) == expected
    assert await publish_schemas(settings.kafka, topic, catalog()) == expected  # idempotent by key

    remote = Codec(await load_schemas(settings.kafka, topic))
    assert set(remote.catalog.by_fingerprint) == set(catalog().by_fingerprint)
    for name in SCHEMA_NAMES:
        data = codec().encode(name, example_record(name))
        assert remote.decode(data).record == codec().decode(data).record

    old = example_record("th.go.gdx.dlt.VehicleEvent")
    del old["payload"]["engine_number"]
    decoded = remote.decode(codec().encode_version("th.go.gdx.dlt.VehicleEvent", 1, old))
    assert decoded.writer_version == 1 and decoded.record["payload"]["engine_number"] is None


async def test_a_tombstone_retires_a_schema_and_a_forged_record_is_refused(settings: Settings) -> None:
    topic = await create_schema_topic(settings)
    await publish_schemas(settings.kafka, topic, catalog())
    retired = catalog().current[SCHEMA_NAMES[0]]
    await produce(settings, topic, retired.fingerprint.hex().encode(), None, [])
    loaded = await load_schemas(settings.kafka, topic)
    assert retired.fingerprint not in loaded.by_fingerprint
    assert len(loaded.by_fingerprint) == len(catalog().by_fingerprint) - 1

    other = catalog().current[SCHEMA_NAMES[1]]
    forged = [(NAME_HEADER, other.name.encode()), (VERSION_HEADER, b"1")]
    await produce(settings, topic, b"0123456789abcdef", other.canonical.encode(), forged)
    with pytest.raises(SchemaTopicError, match="0123456789abcdef"):
        await load_schemas(settings.kafka, topic)


async def test_loading_a_missing_topic_is_a_clear_error(settings: Settings) -> None:
    with pytest.raises(SchemaTopicError, match="does not exist"):
        await load_schemas(settings.kafka, settings.topic("gdx.no-such-topic"), timeout_s=5)


def test_cli_publish_writes_every_version(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    topic = asyncio.run(create_schema_topic(settings))
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", settings.bootstrap_servers)
    monkeypatch.setenv("GDX_TOPIC_PREFIX", settings.topic_prefix)
    assert main(["schemas", "publish"]) == 0
    assert f"published {len(catalog().by_fingerprint)} schema versions to {topic}" in capsys.readouterr().out
    loaded = asyncio.run(load_schemas(settings.kafka, topic))
    assert set(loaded.by_fingerprint) == set(catalog().by_fingerprint)
