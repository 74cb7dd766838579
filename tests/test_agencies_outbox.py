"""The publisher without a broker: it keeps the outbox, counts its retries and reports the backlog."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import pytest

from agencies.outbox import ProducerConfig, Publisher, PublisherBusy
from agencies.simulation import store_path
from foundation.kafka_clients import KafkaClients
from foundation.schema_registry import RegistryAccess
from tests.support.agencies_support import schema_ids, simulate


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _nowhere() -> RegistryAccess:
    return RegistryAccess(f"https://127.0.0.1:{_closed_port()}")


async def test_broker_unavailable_keeps_the_outbox_and_reports_the_backlog(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await asyncio.to_thread(simulate, tmp_path, agencies=("dbd",))
    publisher = Publisher(
        store_path(tmp_path, "dbd"),
        ProducerConfig(KafkaClients(f"127.0.0.1:{_closed_port()}"), request_timeout_ms=2_000),
        schema_ids(_nowhere()),
        signer=None,
        backoff_initial_s=0.05,
        backoff_max_s=0.2,
    )
    rows = publisher.store.last_seq()
    stop = asyncio.Event()
    with caplog.at_level(logging.WARNING, logger="gdx.agencies.outbox"):
        task = asyncio.create_task(publisher.run(stop))
        await asyncio.sleep(2.0)
        stop.set()
        stats = await asyncio.wait_for(task, 30)
    publisher.close()
    assert rows > 0
    assert stats.retries >= 2 and not stats.connected
    assert stats.sent == 0 and stats.backlog == rows
    warnings = [r for r in caplog.records if r.getMessage() == "broker unavailable, keeping the outbox"]
    assert warnings and all(r.backlog == rows for r in warnings)
    waits = {r.retry_in_s for r in warnings}  # jittered: publishers that failed together part
    assert all(0.025 <= wait <= 0.2 for wait in waits) and not waits <= {0.05, 0.1, 0.2}, waits


def test_a_second_publisher_on_the_same_outbox_is_refused(tmp_path: Path) -> None:
    simulate(tmp_path, agencies=("dbd",))
    config = ProducerConfig(KafkaClients(f"127.0.0.1:{_closed_port()}"))
    first = Publisher(store_path(tmp_path, "dbd"), config, schema_ids(_nowhere()), signer=None)
    with pytest.raises(PublisherBusy, match="another publisher"):
        Publisher(store_path(tmp_path, "dbd"), config, schema_ids(_nowhere()), signer=None)
    first.close()
    Publisher(store_path(tmp_path, "dbd"), config, schema_ids(_nowhere()), signer=None).close()
