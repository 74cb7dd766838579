"""The local broker under GDX_KAFKA_SECURITY=mtls, for real: TLS on every listener, a client
certificate from the project CA required, principals named by the certificate's CN, and the
StandardAuthorizer denying whatever no ACL allows.

Each test module starts its own secured broker through the launcher, in a temporary state
directory on free ports, so the rest of the suite keeps its plaintext broker.
"""

from __future__ import annotations

import asyncio
import stat
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import uvloop
from aiokafka import TopicPartition
from aiokafka.admin import NewTopic
from aiokafka.errors import TopicAuthorizationFailedError

from foundation.kafka_clients import ClientSecurity, KafkaClients
from streams.local import kafka_launcher as launcher
from streams.security.pki import Pki
from streams.settings import Settings
from tests.support.kafka_env import secured_cluster
from tests.support.refusals import refused

pytestmark = pytest.mark.kafka

SSL_REFUSED = "SSL handshake failed"


@pytest.fixture(scope="module")
def mtls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with secured_cluster(tmp_path_factory.mktemp("kafka-mtls"), brokers=1) as settings:
        yield settings


@asynccontextmanager
async def topic(kafka: KafkaClients, replication: int = 1) -> AsyncIterator[str]:
    name = f"t{uuid.uuid4().hex[:10]}.security"
    admin = kafka.admin()
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, replication)])
    finally:
        await admin.close()
    yield name


async def round_trip(kafka: KafkaClients, name: str, count: int = 5) -> list[bytes]:
    producer = kafka.producer(acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for i in range(count):
            await producer.send_and_wait(name, f"record-{i}".encode(), key=b"k")
    finally:
        await producer.stop()
    consumer = kafka.consumer(name, group_id=f"g-{uuid.uuid4().hex[:8]}", auto_offset_reset="earliest")
    await consumer.start()
    try:
        seen: list[bytes] = []
        while len(seen) < count:
            batch = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 30)
            seen += [record.value for records in batch.values() for record in records]
        await consumer.commit()
        return seen
    finally:
        await consumer.stop()


async def test_a_client_with_a_project_certificate_produces_and_consumes(mtls: Settings) -> None:
    operator = mtls.kafka
    assert operator.security.security_protocol == "SSL"
    assert operator.security.certfile is not None and operator.security.certfile.name == "gdx-operator.pem"
    async with topic(operator) as name:
        assert await round_trip(operator, name) == [f"record-{i}".encode() for i in range(5)]


async def test_an_anonymous_plaintext_connection_is_refused(mtls: Settings) -> None:
    await refused(mtls, KafkaClients(mtls.bootstrap_servers), SSL_REFUSED)


async def test_a_tls_client_without_a_certificate_is_refused(mtls: Settings) -> None:
    ca = Pki.of(mtls.state_dir.resolve()).ca_cert
    await refused(mtls, KafkaClients(mtls.bootstrap_servers, security=ClientSecurity("SSL", cafile=ca)), SSL_REFUSED)


async def test_a_certificate_from_another_ca_is_refused_even_with_the_operators_name(
    mtls: Settings, tmp_path: Path
) -> None:
    ours = Pki.of(mtls.state_dir.resolve())
    forged = Pki(tmp_path / "other-pki").issue("gdx-operator")
    security = ClientSecurity("SSL", cafile=ours.ca_cert, certfile=forged.cert, keyfile=forged.key)
    await refused(mtls, KafkaClients(mtls.bootstrap_servers, security=security), SSL_REFUSED)


async def test_a_principal_without_acls_is_authenticated_but_denied(mtls: Settings) -> None:
    """Allow-everyone is off: a known member with no ACL can neither write nor read a topic."""
    async with topic(mtls.kafka) as name:
        agency = mtls.kafka_as("agency-dlt")
        assert agency.security.certfile is not None and agency.security.certfile.name == "agency-dlt.pem"
        producer = agency.producer(acks="all", request_timeout_ms=10_000)
        await producer.start()
        try:
            with pytest.raises(TopicAuthorizationFailedError):
                await asyncio.wait_for(producer.send_and_wait(name, b"not allowed"), 30)
        finally:
            await producer.stop()


STOPPED_WITHIN_S = 5
STOP_ROUNDS = 8


def test_a_consumer_stops_promptly_on_uvloop(mtls: Settings) -> None:
    """A regression test of a 30 s hang, not a performance bound: on uvloop (the lookup API's loop)
    a consumer stopped just as its fetcher had sent a fetch waited the whole TLS shutdown timeout
    for a close_notify the broker never sent, and the audit writer's chain-head recovery (start,
    assign, end_offsets, stop on an empty partition) held the API's start-up for 30 s. It happened
    in about a third of the stops, so several rounds are run."""

    async def create() -> str:
        async with topic(mtls.kafka) as name:
            return name

    async def stop_time(name: str) -> float:
        consumer = mtls.kafka.consumer(group_id=None, enable_auto_commit=False)
        await consumer.start()
        tp = TopicPartition(name, 0)
        consumer.assign([tp])
        await consumer.end_offsets([tp])
        began = time.monotonic()
        await asyncio.wait_for(consumer.stop(), STOPPED_WITHIN_S)
        return time.monotonic() - began

    name = asyncio.run(create())
    for _ in range(STOP_ROUNDS):
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            assert runner.run(stop_time(name)) < STOPPED_WITHIN_S


def test_server_properties_and_keys_are_private(mtls: Settings) -> None:
    (node,) = launcher.local_nodes(mtls)
    assert stat.S_IMODE(node.properties.stat().st_mode) == 0o600
    pki = Pki.of(mtls.state_dir.resolve())
    assert stat.S_IMODE(pki.root.stat().st_mode) == 0o700
    for key in (pki.ca_key, pki.paths("broker").key, pki.paths("broker").keystore):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    text = node.properties.read_text()
    for line in (
        "listener.security.protocol.map=CLIENT:SSL,CONTROLLER:SSL",
        "ssl.client.auth=required",
        "ssl.keystore.type=PEM",
        "ssl.truststore.type=PEM",
        "allow.everyone.if.no.acl.found=false",
        "super.users=User:broker;User:gdx-operator",
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    ):
        assert line in text.splitlines(), line
    assert "PLAINTEXT" not in text


@pytest.mark.cluster
def test_a_three_broker_mtls_cluster_replicates_with_acks_all(tmp_path: Path) -> None:
    """Inter-broker replication and the controller quorum run over mTLS too."""

    async def replicated(kafka: KafkaClients) -> int:
        async with topic(kafka, replication=3) as name:
            return len(await round_trip(kafka, name))

    with secured_cluster(tmp_path / "kafka-mtls-3", brokers=3) as settings:
        assert asyncio.run(replicated(settings.kafka)) == 5
