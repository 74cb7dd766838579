"""Least privilege for real: the launcher's mtls broker with the catalog's topics and `gdx acl apply`
done, each process of the stack connecting as its own principal, and the broker refusing what
the table does not allow — the faults of the security issue, and the stack working under them.

One broker for the module (small scale); the fixtures apply topics and ACLs as the operator, as
`gdx up` does, and the processes under test connect as themselves (`Settings.kafka_for`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    GroupCoordinatorNotAvailableError,
    KafkaError,
    TopicAuthorizationFailedError,
)
from confluent_kafka import KafkaException
from confluent_kafka import TopicPartition as RdTopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from agencies.events import NO_STAMP, OutboxEvent
from agencies.outbox import ProducerConfig, Publisher
from agencies.simulation import store_path
from agencies.store import AgencyStore
from foundation.kafka_clients import KafkaClients
from linkage.audit import AUDIT_TOPIC
from monitoring.consumer_lag import LagProbe
from streams.commands.acl import apply_table
from streams.commands.up import _child_env, _issue_principals
from streams.kafka_probe import topic_partitions
from streams.schema_publish import publish_repository
from streams.security.pki import Pki
from streams.security.principals import LOOKUP, MONITOR, OPERATOR, WORKER, agency_principal
from streams.settings import Settings
from streams.topic_admin import apply_topics
from streams.topic_catalog import INDEX_GROUP, dead_letter_topic, load_catalog, notify_topic
from tests.support.agencies_support import schema_ids, simulate
from tests.support.cli_run import clean_env, run_gdx
from tests.support.kafka_env import secured_cluster
from tests.support.lookup_support import audited, get, lookup_client, wait_until
from tests.support.registry_env import running_registry, without_registry_environment

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.skipif(
        bool(os.environ.get("KAFKA_BOOTSTRAP_SERVERS")),
        reason="starts its own secured broker; an external cluster's ACLs are not ours to test on",
    ),
]

PREFIX = "sp."
TIMEOUT_S = 20.0
CATALOG = load_catalog()
REPO = Path(__file__).resolve().parents[1]
CHILD_KEYS = (
    "GDX_KAFKA_PORT",
    "GDX_KAFKA_BROKERS",
    "GDX_KAFKA_SECURITY",
    "GDX_KAFKA_INTERNAL_PORT",
    "GDX_STATE_DIR",
    "GDX_TOPIC_PREFIX",
    "GDX_SCHEMA_REGISTRY_PORT",
)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The secured broker with the catalog's topics, the schemas and the derived ACLs on it."""
    state = tmp_path_factory.mktemp("kafka-principals")
    with (
        secured_cluster(state, brokers=1, prefix=PREFIX) as settings,
        running_registry(state) as registry,  # its own, in the same PKI: no child inherits the session's
        without_registry_environment(),
    ):
        settings = settings.model_copy(
            update={
                "index_url": f"sqlite:///{state / 'index.db'}",
                "schema_registry_url": None,
                "schema_registry_port": registry.schema_registry_port,
            }
        )
        apply_topics(settings, CATALOG)
        publish_repository(settings)
        apply_table(settings)
        yield settings


@pytest.fixture(scope="module")
def population(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The four agencies' stores after an initial load, nothing published yet."""
    store_dir = tmp_path_factory.mktemp("stores")
    simulate(store_dir, scale=1_000, seed=11)
    return store_dir


def child_env(settings: Settings) -> dict[str, str]:
    """What `gdx up` gives each child, plus the test's index."""
    given = _child_env(settings)
    return {**{key: given[key] for key in CHILD_KEYS}, "GDX_INDEX_URL": settings.index_database_url}


def without_the_operator(settings: Settings, state_dir: Path) -> Settings:
    """The stack's settings over a state directory whose PKI holds the stack principals'
    certificates (issued first, as `gdx up` does) but neither the operator's nor the CA's key: a
    process that connected as the operator, or issued itself a certificate, would fail."""
    _issue_principals(settings)
    shutil.copytree(Pki.of(settings.state_dir.resolve()).root, Pki.of(state_dir).root)
    pki = Pki.of(state_dir)
    for gone in (pki.ca_key, pki.paths(OPERATOR).cert, pki.paths(OPERATOR).key):
        gone.unlink()
    return settings.model_copy(update={"state_dir": state_dir})


# --- the faults --------------------------------------------------------------------------------


async def test_the_dlt_publisher_is_refused_on_dopa_person_and_its_outbox_keeps_the_events(
    cluster: Settings, population: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dopa = AgencyStore(store_path(population, "dopa"))
    rows = [row for row in dopa.outbox_rows() if row[2] == "gdx.dopa.person.v1"][:5]
    dopa.close()
    path = store_path(tmp_path, "dlt")
    routed = AgencyStore(path)
    with routed.transaction() as tx:  # a dopa event routed into the DLT's outbox
        tx.emit([OutboxEvent(event_id, topic, key, value, NO_STAMP) for _, event_id, topic, key, value, _ in rows])
    routed.close()
    config = ProducerConfig(cluster.kafka_for(agency_principal("dlt")), request_timeout_ms=10_000)
    publisher = Publisher(
        path,
        config,
        schema_ids(cluster.registry_for(agency_principal("dlt"))),
        PREFIX,
        signer=None,
        backoff_initial_s=0.1,
        backoff_max_s=0.3,
    )
    stop = asyncio.Event()
    caplog.set_level(logging.WARNING, logger="gdx.agencies.outbox")
    try:
        running = asyncio.create_task(publisher.run(stop))
        deadline = time.monotonic() + 60
        while publisher.stats.retries < 3 and time.monotonic() < deadline and not running.done():
            await asyncio.sleep(0.1)
        stop.set()
        stats = await asyncio.wait_for(running, 60)
    finally:
        publisher.close()
    assert stats.retries >= 3, stats
    assert stats.last_error.startswith("TopicAuthorizationFailedError"), stats.last_error
    assert stats.sent == 0 and stats.backlog == len(rows) == 5
    lines = [r for r in caplog.records if r.name == "gdx.agencies.outbox"]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert "refused by the broker's ACLs" in lines[0].getMessage()
    kept = AgencyStore(path)
    try:
        assert kept.sent_through() == 0 and kept.backlog() == 5, "nothing is marked sent"
    finally:
        kept.close()


async def _commit_refused(kafka: KafkaClients, group: str, topic: str) -> BaseException | None:
    """Join `group` on `topic` (and commit an offset in it) as `kafka`'s principal; the refusal."""
    consumer = kafka.consumer(topic, group_id=group, enable_auto_commit=False, request_timeout_ms=10_000)
    try:
        await asyncio.wait_for(consumer.start(), TIMEOUT_S)
        await asyncio.wait_for(consumer.getmany(timeout_ms=2000), TIMEOUT_S)
    except (KafkaError, TimeoutError) as exc:
        return exc
    finally:
        await consumer.stop()
    return None


async def _offsets_commit_refused(kafka: KafkaClients, group: str, topic: str) -> BaseException | None:
    """Commit offsets for `group` without joining it (an assigned consumer); the refusal."""
    consumer = kafka.consumer(group_id=group, enable_auto_commit=False, request_timeout_ms=10_000)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await asyncio.wait_for(consumer.commit({tp: 1_000_000}), TIMEOUT_S)
    except (KafkaError, TimeoutError) as exc:
        return exc
    finally:
        await consumer.stop()
    return None


async def test_a_rogue_principal_cannot_join_gdx_index_or_commit_its_offsets(cluster: Settings) -> None:
    group = cluster.topic_prefix + INDEX_GROUP
    person = cluster.topic("gdx.dopa.person.v1")
    rogue = cluster.kafka_as("rogue")  # a certificate from our CA, a principal the table does not name
    joined = await _commit_refused(rogue, group, person)
    assert isinstance(joined, (GroupAuthorizationFailedError, TopicAuthorizationFailedError)), repr(joined)
    committed = await _offsets_commit_refused(rogue, group, person)
    assert isinstance(committed, GroupAuthorizationFailedError), repr(committed)
    # A member with rights of its own (READ on its notify topic) may not commit in gdx-index either.
    member = await _offsets_commit_refused(cluster.kafka_as("consumer-revenue"), group, person)
    assert isinstance(member, GroupAuthorizationFailedError), repr(member)


def test_the_lookup_principal_cannot_alter_or_delete_the_audit_trail(cluster: Settings) -> None:
    lookup = AdminClient({**cluster.kafka_for(LOOKUP).librdkafka_config(), "socket.timeout.ms": 10_000})
    audit = cluster.topic(AUDIT_TOPIC)
    compact = ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.SET)
    with pytest.raises(KafkaException, match="(?i)authoriz"):
        resource = ConfigResource("TOPIC", audit, incremental_configs=[compact])
        for future in lookup.incremental_alter_configs([resource], request_timeout=TIMEOUT_S).values():
            future.result(TIMEOUT_S)
    with pytest.raises(KafkaException, match="(?i)authoriz"):
        for future in lookup.delete_records([RdTopicPartition(audit, 0, 0)], request_timeout=TIMEOUT_S).values():
            future.result(TIMEOUT_S)
    with pytest.raises(KafkaException, match="(?i)authoriz"):
        for future in lookup.delete_topics([audit], request_timeout=TIMEOUT_S).values():
            future.result(TIMEOUT_S)


async def _read_refused(kafka: KafkaClients, topic: str, group: str) -> BaseException | None:
    """Subscribe to `topic` in `group` (one the principal may use) and read from its start as
    `kafka`'s principal; the broker's refusal, or None once a record arrived."""
    consumer = kafka.consumer(
        topic, group_id=group, enable_auto_commit=False, auto_offset_reset="earliest", request_timeout_ms=10_000
    )
    try:
        await asyncio.wait_for(consumer.start(), TIMEOUT_S)
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            if any(batches.values()):
                return None
    except KafkaError as exc:
        return exc
    finally:
        await consumer.stop()
    raise AssertionError(f"{topic}: neither a record nor a refusal within {TIMEOUT_S} s")


async def _notify(settings: Settings, topic: str) -> None:
    """One notification, written as the worker writes them (gdx-worker holds WRITE on notify topics)."""
    producer = settings.kafka_for(WORKER).producer(acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"{}", key=b"k")
    finally:
        await producer.stop()


async def test_a_consumer_agency_reads_only_its_own_notify_topic(cluster: Settings) -> None:
    revenue = cluster.kafka_as("consumer-revenue")
    await _notify(cluster, cluster.topic(notify_topic("revenue")))
    assert await _read_refused(revenue, cluster.topic(notify_topic("revenue")), PREFIX + "consumer-revenue.tax") is None
    refused = [cluster.topic(notify_topic("social-security"))]
    refused += [cluster.topic(d.topic) for d in CATALOG.datasets]
    refused += [cluster.topic(dead_letter_topic(d.topic)) for d in CATALOG.datasets[:2]]
    for topic in refused:
        found = await _read_refused(revenue, topic, PREFIX + "consumer-revenue.tax")
        assert isinstance(found, TopicAuthorizationFailedError), (topic, repr(found))


def test_a_revoked_certificate_is_refused_after_acl_apply(cluster: Settings) -> None:
    """`gdx pki revoke` then `gdx acl apply`: the certificate still passes the TLS handshake (no
    revocation list), but the principal holds no binding any more."""
    name, notify = "consumer-social-security", cluster.topic(notify_topic("social-security"))
    member = cluster.kafka_as(name)
    asyncio.run(_notify(cluster, notify))
    assert asyncio.run(_read_refused(member, notify, f"{PREFIX}{name}.benefits")) is None
    env = child_env(cluster)
    revoked = run_gdx("pki", "revoke", name, env=env, timeout=60)
    assert revoked.code == 0, revoked.err
    applied = run_gdx("acl", "apply", env=env, timeout=120)
    assert applied.code == 0, applied.err
    assert f"revoked, no rights: {name}" in applied.out and "deleted" in applied.out, applied.out
    found = asyncio.run(_read_refused(member, notify, f"{PREFIX}{name}.benefits"))
    assert isinstance(found, (TopicAuthorizationFailedError, GroupAuthorizationFailedError)), repr(found)


async def test_the_lag_monitor_measures_lag_in_messages_and_seconds_with_describe_only(
    cluster: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """gdx-monitor may read no record (a read of it is refused), yet measures lag in messages and,
    from the broker's time index, in seconds."""
    group, topic = f"{PREFIX}probe-group", cluster.topic(notify_topic("revenue"))  # no change topic: no dead letter
    operator = cluster.kafka
    producer = operator.producer(acks="all")
    await producer.start()
    try:
        for _ in range(3):
            await producer.send_and_wait(topic, b"{}", key=b"k", partition=0)
    finally:
        await producer.stop()
    committer = operator.consumer(group_id=group, enable_auto_commit=False)
    await committer.start()
    try:
        committer.assign([TopicPartition(topic, 0)])
        await committer.commit({TopicPartition(topic, 0): 1})
    finally:
        await committer.stop()
    caplog.set_level(logging.WARNING, logger="gdx.lag")
    async with LagProbe(cluster.kafka_for(MONITOR), PREFIX + "gdx.", TIMEOUT_S) as probe:
        first = [lag for lag in await probe.measure() if lag.group == group]
        again = [lag for lag in await probe.measure() if lag.group == group]
    assert [(lag.topic, lag.committed, lag.lag) for lag in first] == [(topic, 1, lag.end - 1) for lag in first]
    assert first and first[0].lag >= 2 and again[0].lag == first[0].lag
    seconds = first[0].lag_seconds
    assert seconds is not None and 0.0 <= seconds < 120, "lag in seconds from the time index, no record read"
    assert not [r.getMessage() for r in caplog.records if r.name == "gdx.lag"], "nothing refused, nothing to say"
    peek = cluster.kafka_for(MONITOR).consumer(group_id=None, enable_auto_commit=False, request_timeout_ms=10_000)
    await peek.start()
    try:
        peek.assign([TopicPartition(topic, 0)])
        peek.seek(TopicPartition(topic, 0), 0)
        with pytest.raises(TopicAuthorizationFailedError):
            await asyncio.wait_for(peek.getmany(timeout_ms=int(TIMEOUT_S * 1000)), TIMEOUT_S * 2)
    finally:
        await peek.stop()


# --- the stack's own processes, each as its principal --------------------------------------------


def _group_behind(settings: Settings) -> tuple[int, int]:
    """(committed, ends) of the worker group over the change topics, summed, read as the operator."""

    async def read() -> tuple[int, int]:
        kafka = settings.kafka
        partitions = await topic_partitions(kafka, [settings.topic(d.topic) for d in CATALOG.datasets])
        admin, consumer = kafka.admin(), kafka.consumer()
        await admin.start()
        await consumer.start()
        try:
            ends = await consumer.end_offsets(partitions)
            try:
                offsets = await admin.list_consumer_group_offsets(settings.topic_prefix + INDEX_GROUP)
            except GroupCoordinatorNotAvailableError:  # the worker has not joined yet
                offsets = {}
        finally:
            await consumer.stop()
            await admin.close()
        committed = {tp: meta.offset for tp, meta in offsets.items()}
        return sum(max(committed.get(tp, 0), 0) for tp in ends), sum(ends.values())

    return asyncio.run(read())


def _dead_letters(settings: Settings) -> int:
    async def count() -> int:
        kafka = settings.kafka
        partitions = await topic_partitions(
            kafka, [settings.topic(dead_letter_topic(d.topic)) for d in CATALOG.datasets]
        )
        consumer = kafka.consumer()
        await consumer.start()
        try:
            return sum((await consumer.end_offsets(partitions)).values())
        finally:
            await consumer.stop()

    return asyncio.run(count())


def _a_person(population: Path) -> str:
    store = AgencyStore(store_path(population, "dopa"))
    try:
        return next(e.key for e in store.entities("person") if e.state.get("status") == "ACTIVE")
    finally:
        store.close()


def test_the_stack_runs_under_mtls_with_each_process_as_its_own_principal(
    cluster: Settings, population: Path, tmp_path: Path
) -> None:
    assert not any(OPERATOR in value for value in _child_env(cluster).values()), "no child is given the operator"
    stack = without_the_operator(cluster, tmp_path / "stack-state")
    env = child_env(stack)
    published = run_gdx(
        "simulate", "--store-dir", str(population), "--scale", "1000", "--seed", "11", "--publish-only", env=env
    )
    assert published.code == 0, published.err[-3000:]
    assert "topics are the operator's" in published.out, published.out
    log = stack.state_dir / "worker.log"
    with log.open("ab") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"],
            cwd=REPO,
            env=clean_env(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 180
        committed, ends = _group_behind(cluster)
        while (committed < ends or ends == 0) and time.monotonic() < deadline:
            assert worker.poll() is None, log.read_text(errors="replace")[-3000:]
            time.sleep(1.0)
            committed, ends = _group_behind(cluster)
        assert ends > 0 and committed == ends, (committed, ends, log.read_text(errors="replace")[-3000:])
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=90)
    assert _dead_letters(cluster) == 0

    citizen = _a_person(population)
    granted = run_gdx(
        "consent", "grant", "--subject", citizen, "--consumer", "dlt", "--purpose", "licence-application",
        "--datasets", "dopa.person", "--auth-event-id", "thaid-4711", env=env, timeout=60,
    )  # fmt: skip
    assert granted.code == 0, granted.err
    with lookup_client(stack) as client:  # in this process, as gdx-lookup
        answer = get(client, f"/v1/citizens/{citizen}", "revenue", "estate-tax")
        assert answer.status_code == 200, answer.text
        record: dict[str, Any] = audited(cluster, answer.json()["request_id"])
        assert (record["decision"], record["consumer"]) == ("allow", "revenue")
        wait_until(
            lambda: get(client, f"/v1/citizens/{citizen}", "dlt", "licence-application").status_code == 200,
            timeout_s=30,
            what="the consent granted as gdx-consent, followed as gdx-lookup",
        )
