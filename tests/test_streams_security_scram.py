"""The local broker under GDX_KAFKA_SECURITY=scram, for real: clients log in with SCRAM-SHA-512
over TLS (server certificate only), brokers and controllers keep mTLS among themselves, and the
credentials were created when the storage was formatted, without a password on a command line."""

from __future__ import annotations

import asyncio
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka.admin import NewTopic

from foundation.kafka_clients import ClientSecurity, KafkaClients
from foundation.ports import free_port_block
from foundation.secret_files import write_private
from streams.local import kafka_launcher as launcher
from streams.security.pki import Pki
from streams.security.scram import ScramStore
from streams.settings import Settings
from tests.support.refusals import refused

pytestmark = pytest.mark.kafka

BAD_CREDENTIALS = "invalid credentials with SASL mechanism SCRAM-SHA-512"


@pytest.fixture(scope="module")
def scram(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    base = free_port_block(3)
    settings = Settings(
        state_dir=tmp_path_factory.mktemp("kafka-scram"),
        kafka_port=base,
        kafka_internal_port=base + 2,
        kafka_brokers=1,
        kafka_heap="384m",
        kafka_start_timeout_s=120,
        kafka_security="scram",
    )
    try:
        launcher.up(settings, 1, report=False)
        yield settings
    finally:
        launcher.down(settings)


async def _round_trip(kafka: KafkaClients) -> bytes:
    name = f"t{uuid.uuid4().hex[:10]}.scram"
    admin = kafka.admin()
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, 1)])
    finally:
        await admin.close()
    producer = kafka.producer(acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(name, b"over SASL_SSL")
    finally:
        await producer.stop()
    consumer = kafka.consumer(name, group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    try:
        return (await asyncio.wait_for(consumer.getone(), 30)).value  # type: ignore[no-any-return]
    finally:
        await consumer.stop()


async def test_the_operator_logs_in_with_scram_sha_512_and_exchanges_records(scram: Settings) -> None:
    operator = scram.kafka
    assert operator.security.security_protocol == "SASL_SSL"
    assert operator.security.sasl_mechanism == "SCRAM-SHA-512" and operator.security.certfile is None
    assert await _round_trip(operator) == b"over SASL_SSL"


async def test_a_wrong_password_is_refused(scram: Settings, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.password"
    write_private(wrong, b"not-the-password")
    security = ClientSecurity(
        "SASL_SSL",
        cafile=Pki.of(scram.state_dir.resolve()).ca_cert,
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="gdx-operator",
        sasl_password_file=wrong,
    )
    await refused(scram, KafkaClients(scram.bootstrap_servers, security=security), BAD_CREDENTIALS)


async def test_a_user_the_broker_was_not_given_is_refused(scram: Settings) -> None:
    stranger = scram.kafka_as("consumer-unknown")
    await refused(scram, stranger, BAD_CREDENTIALS)


async def test_an_anonymous_plaintext_connection_is_refused(scram: Settings) -> None:
    await refused(scram, KafkaClients(scram.bootstrap_servers), "SSL handshake failed")


def test_credentials_are_kept_private_and_never_on_a_command_line(scram: Settings) -> None:
    store = ScramStore.of(scram.state_dir.resolve())
    assert stat.S_IMODE(store.root.stat().st_mode) == 0o700
    password_file = store.password_file("gdx-operator")
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    password = password_file.read_text().strip()
    (node,) = launcher.local_nodes(scram)
    assert password not in node.properties.read_text()
    assert not (node.root / "format.args").exists(), "the argument file is removed after the format"
    command, argfile = launcher.storage_format_command("java", scram, Path("/jars"), node, "cluster-id")
    assert password not in " ".join(command) and command[-1].startswith("@")
    assert argfile is not None and f"name=gdx-operator,password={password}" in argfile
    properties = node.properties.read_text().splitlines()
    assert "listener.security.protocol.map=CLIENT:SASL_SSL,INTERNAL:SSL,CONTROLLER:SSL" in properties
    assert "listener.name.client.sasl.enabled.mechanisms=SCRAM-SHA-512" in properties
    assert "inter.broker.listener.name=INTERNAL" in properties
