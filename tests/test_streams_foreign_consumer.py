"""The Kafka world's wire format, proven by a client with nothing of this repository: Confluent's
consumer with its `AvroDeserializer` and `SchemaRegistryClient`, given only the bootstrap servers,
the registry URL and its TLS files, decodes every event the simulated agencies published on every
change topic, older schema versions included, though nobody ran a schema command: the agencies'
publishers registered what they wrote (the development profile)."""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from streams.settings import Settings
from streams.topic_admin import apply_topics
from streams.topic_catalog import load_catalog
from tests.support.cli_run import run_gdx

pytestmark = pytest.mark.kafka

CHANGE_TOPIC = re.compile(r"^gdx\.(dopa|dbd|dol|dlt)\.[a-z_-]+\.v\d+$")


def _tls(prefix: str) -> dict[str, str]:
    """A client's own TLS files, as its operators hand them over (here: the session's, from the
    environment the test session set)."""
    files = {
        "ssl.ca.location": os.environ.get(f"{prefix}CA") or os.environ.get(f"{prefix}CAFILE"),
        "ssl.certificate.location": os.environ.get(f"{prefix}CERTFILE"),
        "ssl.key.location": os.environ.get(f"{prefix}KEYFILE"),
    }
    return {key: path for key, path in files.items() if path}


def foreign_consumer(bootstrap: str, registry_url: str, prefix: str) -> dict[str, list[tuple[int, dict[str, Any]]]]:
    """Every change event of the cluster, decoded: topic -> [(schema id, event)]."""
    kafka = {"bootstrap.servers": bootstrap, **_tls("KAFKA_SSL_")}
    if "ssl.ca.location" in kafka:
        kafka["security.protocol"] = "SSL"
    registry = SchemaRegistryClient({"url": registry_url, **_tls("GDX_SCHEMA_REGISTRY_")})
    deserialize = AvroDeserializer(registry)
    topics = sorted(
        name
        for name in AdminClient(kafka).list_topics(timeout=30).topics
        if name.startswith(prefix) and CHANGE_TOPIC.match(name.removeprefix(prefix))
    )
    consumer = Consumer({**kafka, "group.id": f"{prefix}foreign", "enable.auto.commit": False})
    decoded: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    try:
        partitions = [
            TopicPartition(topic, p, 0)
            for topic in topics
            for p in consumer.list_topics(topic, timeout=30).topics[topic].partitions
        ]
        ends = {(tp.topic, tp.partition): consumer.get_watermark_offsets(tp, timeout=30)[1] for tp in partitions}
        consumer.assign(partitions)
        remaining = sum(ends.values())
        while remaining:
            message = consumer.poll(30)
            assert message is not None, f"{remaining} records did not arrive"
            assert message.error() is None, message.error()
            remaining -= 1
            if message.value() is None:
                continue  # a tombstone after a DELETE
            event = deserialize(message.value(), SerializationContext(message.topic(), MessageField.VALUE))
            assert event["entity_key"] == message.key().decode()
            schema_id = int.from_bytes(message.value()[1:5], "big")
            decoded[message.topic().removeprefix(prefix)].append((schema_id, event))
    finally:
        consumer.close()
    return decoded


def test_confluents_deserializer_decodes_every_published_event(settings: Settings) -> None:
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
    registry_url = settings.registry_for("gdx-operator").url
    decoded = foreign_consumer(settings.bootstrap_servers, registry_url, settings.topic_prefix)
    assert sum(len(events) for events in decoded.values()) == published >= 4_000, "every published event decoded"
    assert len(decoded) >= 10, f"events on only {sorted(decoded)}"
    assert any(len({schema_id for schema_id, _ in events}) > 1 for events in decoded.values()), (
        "no event was written with an older schema version"
    )
