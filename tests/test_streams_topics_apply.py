"""`gdx topics apply` against the real broker: creates the catalog, is idempotent, repairs drift."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from aiokafka.admin import NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from agencies.schema_ids import value_subject
from foundation.errors import GdxError
from foundation.schema_registry import SchemaRegistry
from schemas.catalog import load_schema_catalog
from streams.security.principals import OPERATOR
from streams.settings import Settings
from streams.topic_admin import admin_client, apply_topics, list_topics
from streams.topic_catalog import Catalog, TopicSpec, load_catalog
from tests.support.cli_run import run_gdx

pytestmark = pytest.mark.kafka


def _env(settings: Settings) -> dict[str, str]:
    return {"KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers, "GDX_TOPIC_PREFIX": settings.topic_prefix}


def test_apply_twice_changes_nothing_the_second_time(settings: Settings) -> None:
    catalog = load_catalog()
    first = run_gdx("topics", "apply", env=_env(settings))
    assert first.code == 0, first.err
    assert f"{len(catalog.topics)} topics: {len(catalog.topics)} created, 0 updated" in first.out
    schemas = load_schema_catalog()
    registry = SchemaRegistry(settings.registry_for(OPERATOR))
    released = 0
    for d in catalog.datasets:  # every released version under its topic's subject, the level enforced
        name, subject = schemas.datasets[(d.agency, d.name)], value_subject(settings.topic(d.topic))
        released += len(schemas.released(name))
        assert registry.versions(subject) == list(range(1, len(schemas.released(name)) + 1)), subject
        assert registry.compatibility(subject) == "FULL_TRANSITIVE"
    assert f"registered the released schemas: {released} versions" in first.out

    second = run_gdx("topics", "apply", env=_env(settings))
    assert second.code == 0, second.err
    assert f"{len(catalog.topics)} topics: 0 created, 0 updated, {len(catalog.topics)} unchanged" in second.out

    rows = list_topics(settings, catalog)
    assert all(change.action == "unchanged" for *_, change in rows)
    by_name = {spec.name: live for spec, _, live, _ in rows}
    person = by_name["gdx.dopa.person.v1"]
    assert person is not None
    assert person.partitions == 6 and person.configs["cleanup.policy"] == "compact"
    assert by_name["gdx.dlq.gdx.dopa.person.v1"].configs["cleanup.policy"] == "delete"
    assert by_name["gdx.audit"].configs["retention.ms"] == "-1"

    listing = run_gdx("topics", "list", env=_env(settings))
    assert listing.code == 0 and f"{settings.topic('gdx.audit')}" in listing.out
    assert "missing" not in listing.out


def test_apply_repairs_config_drift_and_adds_partitions(settings: Settings) -> None:
    catalog = load_catalog()
    dlq = settings.topic("gdx.dlq.gdx.dlt.vehicle.v1")
    vehicles = settings.topic("gdx.dlt.vehicle.v1")

    async def too_few_partitions() -> None:
        async with admin_client(settings) as admin:
            await admin.create_topics([NewTopic(vehicles, 2, 1, topic_configs={"cleanup.policy": "compact"})])

    asyncio.run(too_few_partitions())
    first = {c.topic: c for c in apply_topics(settings, catalog)}
    assert first[vehicles].action == "update"
    assert "partitions 2 → 6" in first[vehicles].details

    async def drift() -> None:
        async with admin_client(settings) as admin:
            await admin.alter_configs(
                [
                    ConfigResource(
                        ConfigResourceType.TOPIC, dlq, configs={"cleanup.policy": "delete", "retention.ms": "1000"}
                    )
                ]
            )

    asyncio.run(drift())
    drifted = _wait_for(lambda: _live_configs(settings, catalog, dlq).get("retention.ms") == "1000")
    assert drifted, "the out-of-band change never became visible"
    changes = {c.topic: c for c in apply_topics(settings, catalog)}
    assert changes[dlq].action == "update"
    assert any("retention.ms 1000 → 1209600000" in d for d in changes[dlq].details)
    assert sum(1 for c in changes.values() if c.action != "unchanged") == 1

    live = {name: live for _, name, live, _ in list_topics(settings, catalog)}
    assert live[vehicles] is not None and live[vehicles].partitions == 6
    assert live[dlq] is not None and live[dlq].configs["retention.ms"] == "1209600000"


def _live_configs(settings: Settings, catalog: Catalog, topic: str) -> dict[str, str]:
    live = {name: live for _, name, live, _ in list_topics(settings, catalog)}[topic]
    return live.configs if live else {}


def _wait_for(condition: Callable[[], bool], timeout_s: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def test_list_reports_missing_topics_before_apply(settings: Settings) -> None:
    rows = list_topics(settings, load_catalog())
    assert rows and all(live is None for _, _, live, _ in rows)


def test_apply_on_three_brokers_keeps_the_catalog_replication(three_broker_bootstrap: str) -> None:
    settings = Settings(kafka_bootstrap_servers=three_broker_bootstrap, topic_prefix="three.")
    catalog = load_catalog()
    apply_topics(settings, catalog)
    rows = list_topics(settings, catalog)
    assert all(change.action == "unchanged" for *_, change in rows)
    for _spec, _, live, _ in rows:
        assert live is not None and live.replication_factor == 3
        assert live.configs["min.insync.replicas"] == "2"


def test_a_config_the_broker_refuses_fails_at_once_in_one_line(settings: Settings) -> None:
    """A refusal is final: no waiting out the bound, and the broker's own reason in the line."""
    bad = TopicSpec("gdx.bad", 1, 1, 1, "delete", configs={"retention.ms": "forever"})
    began = time.monotonic()
    with pytest.raises(GdxError) as refused:
        apply_topics(settings, Catalog(topics=(bad,), datasets=(), agencies={}))
    message = str(refused.value)
    assert time.monotonic() - began < settings.kafka_request_timeout_s, message
    assert "\n" not in message and f"creating {settings.topic('gdx.bad')} was refused" in message, message
    assert "retention.ms" in message and "streams/topics.toml" in message, message
