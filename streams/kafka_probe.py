"""Asking a cluster whether it answers: one metadata round trip, bounded in time.

Used by the launcher (is the broker ready yet?) and by every command that talks to an external
cluster, so "unreachable" is reported the same way everywhere.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from foundation.errors import GdxError
from foundation.kafka_clients import KafkaClients


@dataclass(frozen=True)
class ClusterInfo:
    cluster_id: str
    broker_ids: tuple[int, ...]
    controller_id: int


@contextmanager
def quiet_client_logs() -> Iterator[None]:
    """aiokafka logs every refused connection at ERROR; while polling, refusal is the expected answer."""
    logger = logging.getLogger("aiokafka")
    previous = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(previous)


async def describe_cluster(kafka: KafkaClients, timeout_s: float) -> ClusterInfo:
    """One metadata request; raises KafkaError / TimeoutError when the cluster does not answer."""
    timeout_ms = max(1000, int(timeout_s * 1000))
    admin = kafka.admin(request_timeout_ms=timeout_ms)
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        raw = await asyncio.wait_for(admin.describe_cluster(), timeout_s)
    finally:
        await admin.close()
    return ClusterInfo(
        cluster_id=str(raw["cluster_id"]),
        broker_ids=tuple(sorted(b["node_id"] for b in raw["brokers"])),
        controller_id=int(raw["controller_id"]),
    )


async def wait_for_cluster(
    kafka: KafkaClients, deadline_s: float, expected_brokers: int = 1, poll_s: float = 0.25
) -> ClusterInfo:
    """Poll until `expected_brokers` brokers are registered or the deadline passes (TimeoutError)."""
    end = time.monotonic() + deadline_s
    last_error = "no answer"
    with quiet_client_logs():
        while True:
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(last_error)
            try:
                info = await describe_cluster(kafka, min(remaining, 5.0))
                if len(info.broker_ids) >= expected_brokers:
                    return info
                last_error = f"{len(info.broker_ids)} of {expected_brokers} brokers registered"
            except (TimeoutError, KafkaError, OSError) as exc:
                last_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            await asyncio.sleep(min(poll_s, max(0.0, end - time.monotonic())))


def require_cluster(kafka: KafkaClients, timeout_s: float) -> ClusterInfo:
    """The cluster's answer, or a GdxError that says it is unreachable and what to check."""
    try:
        return asyncio.run(wait_for_cluster(kafka, timeout_s))
    except TimeoutError as exc:
        raise GdxError(
            f"Kafka cluster at {kafka.bootstrap_servers} is unreachable "
            f"(no metadata answer within {timeout_s:g} s; {exc})",
            "start it with `gdx kafka up`, or check KAFKA_BOOTSTRAP_SERVERS / the settings file",
        ) from None


async def topic_partitions(kafka: KafkaClients, topics: list[str]) -> list[TopicPartition]:
    """Every partition of `topics`, from the cluster's metadata."""
    admin = kafka.admin()
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    return [TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"]]
