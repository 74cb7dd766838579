"""The one factory of Kafka clients: every client it builds carries the connection settings, and
the runtime's settings hand it the cluster they name (a copy with more brokers, the new list)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.client import AIOKafkaClient

from foundation import kafka_clients
from foundation.kafka_clients import ClientSecurity, KafkaClients
from streams.security.pki import Pki
from streams.settings import Settings

SERVERS = "127.0.0.1:19092,127.0.0.1:19094"


class _Probe(AIOKafkaConsumer):
    """A consumer subclass, as a test that delays the broker's answers would pass."""


async def test_every_client_gets_the_servers_and_client_id_with_its_own_options() -> None:
    kafka = KafkaClients(SERVERS, client_id="gdx-test")
    producer = kafka.producer(acks="all", request_timeout_ms=4321)
    assert isinstance(producer, AIOKafkaProducer)
    assert producer.client._bootstrap_servers == SERVERS
    assert producer.client._client_id == "gdx-test"
    assert producer._request_timeout_ms == 4321
    await producer.stop()  # never started: closes what the constructor opened

    consumer = kafka.consumer("gdx.t", kind=_Probe, group_id=None, fetch_max_wait_ms=50)
    assert type(consumer) is _Probe
    assert consumer._client._bootstrap_servers == SERVERS
    assert consumer._client._client_id == "gdx-test"
    assert consumer._fetch_max_wait_ms == 50
    await consumer.stop()

    admin = kafka.admin(request_timeout_ms=1234)
    assert isinstance(admin, AIOKafkaAdminClient)
    assert admin._client._bootstrap_servers == SERVERS
    assert admin._client._client_id == "gdx-test"
    assert admin._request_timeout_ms == 1234
    await admin.close()


class _SilentPeerConnection:
    """A TLS connection whose peer never answers close_notify: closing it resolves nothing until
    its transport is aborted."""

    def __init__(self) -> None:
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.aborted = False
        self._writer = SimpleNamespace(transport=SimpleNamespace(abort=self.abort))

    def abort(self) -> None:
        self.aborted = True
        self.closed.set_result(None)

    def close(self, **_: Any) -> asyncio.Future[None]:
        return self.closed


async def test_a_tls_clients_close_aborts_connections_whose_peer_does_not_say_goodbye(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued = Pki(tmp_path / "pki").issue("gdx-worker")
    tls = KafkaClients(SERVERS, security=ClientSecurity("SSL", issued.ca, issued.cert, issued.key))
    plain = KafkaClients(SERVERS)
    assert type(plain.consumer(group_id=None)._client) is AIOKafkaClient
    assert type(plain.producer().client) is AIOKafkaClient
    consumer, producer, admin = tls.consumer(group_id=None), tls.producer(), tls.admin()
    for client in (consumer._client, producer.client, admin._client):
        assert isinstance(client, kafka_clients._TlsGoodbyeBoundedClient)

    monkeypatch.setattr(kafka_clients, "TLS_CLOSE_GRACE_S", 0.05)
    silent = _SilentPeerConnection()
    consumer._client._conns[1] = silent
    await asyncio.wait_for(consumer.stop(), 2)
    assert silent.aborted
    await producer.stop()
    await admin.close()


def test_the_faust_app_gets_one_broker_url_per_server() -> None:
    assert KafkaClients(" 127.0.0.1:1 , 127.0.0.1:2").faust_brokers() == ["kafka://127.0.0.1:1", "kafka://127.0.0.1:2"]


def test_the_settings_build_the_factory_for_the_cluster_they_name(no_kafka_environment: None) -> None:
    local = Settings(kafka_port=29092, kafka_brokers=1, kafka_security="plaintext")
    assert local.kafka == KafkaClients("127.0.0.1:29092")
    wider = local.model_copy(update={"kafka_brokers": 3})  # what `gdx kafka up --brokers 3` does
    assert wider.kafka.bootstrap_servers == "127.0.0.1:29092,127.0.0.1:29094,127.0.0.1:29096"
    assert Settings(kafka_bootstrap_servers="kafka.example:9092").kafka.bootstrap_servers == "kafka.example:9092"


def test_librdkafka_gets_the_same_connection_and_security(tmp_path: Path) -> None:
    password = tmp_path / "operator.password"
    password.write_text("s3cret\n")
    assert KafkaClients(SERVERS).librdkafka_config() == {"bootstrap.servers": SERVERS, "client.id": "gdx"}
    mtls = ClientSecurity("SSL", cafile=Path("/pki/ca.pem"), certfile=Path("/pki/w.pem"), keyfile=Path("/pki/w.key"))
    assert KafkaClients(SERVERS, security=mtls).librdkafka_config() == {
        "bootstrap.servers": SERVERS,
        "client.id": "gdx",
        "security.protocol": "SSL",
        "ssl.ca.location": "/pki/ca.pem",
        "ssl.certificate.location": "/pki/w.pem",
        "ssl.key.location": "/pki/w.key",
    }
    scram = ClientSecurity(
        "SASL_SSL",
        cafile=Path("/pki/ca.pem"),
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="gdx-operator",
        sasl_password_file=password,
    )
    config = KafkaClients(SERVERS, security=scram).librdkafka_config()
    assert config["security.protocol"] == "SASL_SSL" and config["sasl.mechanism"] == "SCRAM-SHA-512"
    assert config["sasl.username"] == "gdx-operator" and config["sasl.password"] == "s3cret"
    assert "ssl.certificate.location" not in config
