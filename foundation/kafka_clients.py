"""The one place every Kafka client of the project is built: aiokafka producers, consumers and
admin clients, the faust app's broker list and credentials, and librdkafka's configuration for the
ACL client.

The runtime (`streams`) makes one `KafkaClients` from the settings and hands it down; a library
that talks to Kafka receives it and never names a bootstrap server itself. Whatever every
connection must carry — the servers, a client id, and its security (TLS with the CA and a client
certificate, or SASL/SCRAM over TLS) — is added here once and reaches every client.

`KafkaClients` is a plain value (strings and paths): it crosses process boundaries as it is. The
SSL context and the SASL password are made when a client is built, the password read from its
file then and never kept in the value, logged or shown in its repr.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.client import AIOKafkaClient

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SECURITY_PROTOCOLS: tuple[SecurityProtocol, ...] = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")

TLS_CLOSE_GRACE_S = 1.0
"""How long a TLS client's close waits for the broker's side of the TLS goodbye before it drops
the connections (see `_TlsGoodbyeBoundedClient`)."""


class _TlsGoodbyeBoundedClient(AIOKafkaClient):  # type: ignore[misc]  # aiokafka.client is untyped
    """aiokafka's client whose close() waits at most TLS_CLOSE_GRACE_S for its TLS connections to
    finish closing, then aborts them. A workaround of a 30 s hang, installed on every TLS client.

    aiokafka's close (aiokafka/client.py `close`) closes each connection with transport.close() and
    awaits its `_closed_fut`, which is resolved only by connection_lost (aiokafka/conn.py
    AIOKafkaProtocol). A TLS transport's close sends close_notify and waits for the peer's before it
    drops the socket, for up to ssl_shutdown_timeout: 30 s in uvloop (uvloop/sslproto.pyx
    `_start_shutdown`, SSL_SHUTDOWN_TIMEOUT in includes/consts.pxi) and in asyncio. aiokafka opens
    its connections without a way to pass a shorter ssl_shutdown_timeout. When a client closes
    right after sending a request (a fetch, a ListOffsets), the broker reads the request and the
    close_notify together, answers the request and never acts on the close_notify (no reply, no
    FIN) until the socket is dropped; on uvloop, whose faster close path hit this in about a third
    of the consumer stops, stop() took exactly 30 s. Nothing is lost by not waiting: by then the
    connection has failed its pending requests and sent whatever it had buffered and its
    close_notify.
    """

    async def close(self) -> None:
        transports = [
            conn._writer.transport  # aiokafka offers no public handle on it
            for conn in self._conns.values()
            if conn._writer is not None
        ]
        closing = asyncio.ensure_future(super().close())
        done, _ = await asyncio.wait({closing}, timeout=TLS_CLOSE_GRACE_S)
        if not done:
            for transport in transports:
                transport.abort()
        await closing


def _bound_tls_goodbye(client: AIOKafkaClient) -> None:
    client.__class__ = _TlsGoodbyeBoundedClient


@dataclass(frozen=True)
class ClientSecurity:
    """How a connection authenticates and is encrypted; the default is plaintext and anonymous."""

    security_protocol: SecurityProtocol = "PLAINTEXT"
    cafile: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password_file: Path | None = None

    @property
    def tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of a connection: the broker verified by the CA bundle (the system's trust
        store when none is named), the client certificate presented when there is one. Built here
        rather than by aiokafka's helper, which logs every file it loads at INFO in each process."""
        if not self.tls:
            return None
        context = ssl.create_default_context(cafile=str(self.cafile) if self.cafile else None)
        if self.certfile is not None:
            context.load_cert_chain(str(self.certfile), str(self.keyfile) if self.keyfile else None)
        return context

    def sasl_password(self) -> str | None:
        if self.sasl_password_file is None:
            return None
        return self.sasl_password_file.read_text(encoding="utf-8").strip()

    def options(self) -> dict[str, Any]:
        """The keyword arguments every aiokafka client takes for this security."""
        if self.security_protocol == "PLAINTEXT":
            return {}
        options: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.tls:
            options["ssl_context"] = self.ssl_context()
        if self.sasl:
            options["sasl_mechanism"] = self.sasl_mechanism or "PLAIN"
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = self.sasl_password()
        return options


@dataclass(frozen=True)
class KafkaClients:
    """How to reach the cluster; a plain value, so it crosses process boundaries as it is."""

    bootstrap_servers: str
    client_id: str = "gdx"
    security: ClientSecurity = field(default_factory=ClientSecurity)

    def _connection(self) -> dict[str, Any]:
        return {"bootstrap_servers": self.bootstrap_servers, "client_id": self.client_id, **self.security.options()}

    def _secured(self, client: AIOKafkaClient) -> None:
        if self.security.tls:
            _bound_tls_goodbye(client)

    def producer(self, **options: Any) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(**self._connection(), **options)
        self._secured(producer.client)
        return producer

    def consumer(
        self, *topics: str, kind: type[AIOKafkaConsumer] = AIOKafkaConsumer, **options: Any
    ) -> AIOKafkaConsumer:
        """`kind`: the consumer class (a test's subclass can delay the broker's answers)."""
        consumer = kind(*topics, **self._connection(), **options)
        self._secured(consumer._client)
        return consumer

    def admin(self, **options: Any) -> AIOKafkaAdminClient:
        admin = AIOKafkaAdminClient(**self._connection(), **options)
        self._secured(admin._client)
        return admin

    def librdkafka_config(self) -> dict[str, str]:
        """The same connection in librdkafka's terms, for the one client of another library (the
        ACL admin calls, which aiokafka lacks, go through confluent-kafka)."""
        security = self.security
        config = {"bootstrap.servers": self.bootstrap_servers, "client.id": self.client_id}
        if security.security_protocol == "PLAINTEXT":
            return config
        config["security.protocol"] = security.security_protocol
        for key, path in (
            ("ssl.ca.location", security.cafile),
            ("ssl.certificate.location", security.certfile),
            ("ssl.key.location", security.keyfile),
        ):
            if path is not None:
                config[key] = str(path)
        if security.sasl:
            config["sasl.mechanism"] = security.sasl_mechanism or "PLAIN"
            config["sasl.username"] = security.sasl_username or ""
            config["sasl.password"] = security.sasl_password() or ""
        return config

    def faust_brokers(self) -> list[str]:
        """The broker URLs a faust app is given (`faust.App(broker=…)`)."""
        return [f"kafka://{server.strip()}" for server in self.bootstrap_servers.split(",")]

    def faust_credentials(self) -> Any:
        """What a faust app is given as `broker_credentials=`: None for plaintext, else faust's
        SSLCredentials or SASLCredentials carrying the same context and login as every client."""
        security = self.security
        if security.security_protocol == "PLAINTEXT":
            return None
        import faust

        if security.sasl:
            return faust.SASLCredentials(
                username=security.sasl_username,
                password=security.sasl_password(),
                ssl_context=security.ssl_context(),
                mechanism=security.sasl_mechanism or "PLAIN",
            )
        return faust.SSLCredentials(security.ssl_context())
