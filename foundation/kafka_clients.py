"""The one place every Kafka client of the project is built: aiokafka producers, consumers and
admin clients, the faust app's broker list, and librdkafka's configuration for the ACL client.

The runtime (`streams`) makes one `KafkaClients` from the settings and hands it down; a library
that talks to Kafka receives it and never names a bootstrap server itself. Whatever every
connection must carry (today the servers and a client id; tomorrow TLS and credentials) is added
here once and reaches every client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient


@dataclass(frozen=True)
class KafkaClients:
    """How to reach the cluster; a plain value, so it crosses process boundaries as it is."""

    bootstrap_servers: str
    client_id: str = "gdx"

    def _connection(self) -> dict[str, Any]:
        return {"bootstrap_servers": self.bootstrap_servers, "client_id": self.client_id}

    def producer(self, **options: Any) -> AIOKafkaProducer:
        return AIOKafkaProducer(**self._connection(), **options)

    def consumer(
        self, *topics: str, kind: type[AIOKafkaConsumer] = AIOKafkaConsumer, **options: Any
    ) -> AIOKafkaConsumer:
        """`kind`: the consumer class (a test's subclass can delay the broker's answers)."""
        return kind(*topics, **self._connection(), **options)

    def admin(self, **options: Any) -> AIOKafkaAdminClient:
        return AIOKafkaAdminClient(**self._connection(), **options)

    def librdkafka_config(self) -> dict[str, str]:
        """The same connection in librdkafka's terms, for the one client of another library (the
        ACL admin calls, which aiokafka lacks, go through confluent-kafka)."""
        return {"bootstrap.servers": self.bootstrap_servers, "client.id": self.client_id}

    def faust_brokers(self) -> list[str]:
        """The broker URLs a faust app is given (`faust.App(broker=…)`)."""
        return [f"kafka://{server.strip()}" for server in self.bootstrap_servers.split(",")]
