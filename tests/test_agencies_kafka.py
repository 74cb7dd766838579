"""The agencies against a real broker: what is published decodes, and a killed publisher loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from agencies.faults import FaultRates
from agencies.outbox import ProducerConfig, Publisher
from agencies.population import AGENCIES
from agencies.simulation import Plan, Simulation, store_path
from agencies.store import AgencyStore
from foundation.schema_registry import RegistryAccess
from schemas.validation import validate_event
from streams.security.principals import OPERATOR
from streams.settings import Settings
from streams.topic_admin import apply_topics
from streams.topic_catalog import load_catalog
from tests.support.agencies_support import SCHEMAS, consume, routes, schema_ids, simulate, stores
from tests.support.kafka_env import clients
from tests.support.registry_support import registry_codec
from tests.support.signing_support import AgencyKeys

pytestmark = pytest.mark.kafka
REPO = Path(__file__).resolve().parents[1]


def _topics(settings: Settings, agencies: tuple[str, ...]) -> list[str]:
    return [settings.topic(d.topic) for d in load_catalog().datasets if d.agency in agencies]


async def test_simulate_publishes_every_event_signed_and_each_decodes_with_the_codec(
    settings: Settings, tmp_path: Path
) -> None:
    await asyncio.to_thread(apply_topics, settings, load_catalog())
    keys = AgencyKeys(tmp_path / "state")
    plan = Plan(
        tmp_path,
        scale=1_000,
        seed=4,
        rate=1e6,
        count=60,
        kafka=settings.kafka,
        registry=settings.registry_for(OPERATOR),
        signers={agency: keys.signer(agency) for agency in AGENCIES},
        topic_prefix=settings.topic_prefix,
    )
    trust = keys.keys.trust_list()
    owner = {settings.topic(d.topic): d.agency for d in load_catalog().datasets}
    with open(os.devnull, "w") as quiet:
        await Simulation(plan, routes(), SCHEMAS, out=quiet).run()
    outbox = {row[1]: row for _, store in stores(tmp_path) for row in store.outbox_rows()}
    assert all(store.backlog() == 0 for _, store in stores(tmp_path))
    records = await consume(settings.bootstrap_servers, _topics(settings, plan.agencies))
    assert len(records) == len(outbox)
    seen = set()
    for record in records:
        event = validate_event(registry_codec(settings).decode(record.value))
        seq, event_id, topic, key, _, _ = outbox[str(event.event_id)]
        assert record.topic == settings.topic(topic) and record.key.decode() == key == event.entity_key
        assert event.published_time >= event.source_time
        signed_by = trust.verify(owner[record.topic], record.value, record.headers, record.timestamp)
        assert signed_by == keys.signer(owner[record.topic]).key_id, "every event signed by its own agency's key"
        seen.add(event_id)
    assert seen == set(outbox)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_a_killed_publisher_loses_nothing_and_only_resends_exact_copies(
    settings: Settings, tmp_path: Path
) -> None:
    await asyncio.to_thread(simulate, tmp_path, 10_000, 9, 0, FaultRates(duplicate=0.02), ("dopa",))
    await asyncio.to_thread(apply_topics, settings, load_catalog())
    path = store_path(tmp_path, "dopa")
    command = [
        sys.executable,
        "-m",
        "streams.outbox_relay",
        "--store",
        str(path),
        "--bootstrap-servers",
        settings.bootstrap_servers,
        "--topic-prefix",
        settings.topic_prefix,
        "--batch-rows",
        "100",
    ]
    watcher = AgencyStore(path)
    total = watcher.last_seq()
    first = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while watcher.sent_through() == 0 and time.monotonic() < deadline and first.poll() is None:
            await asyncio.sleep(0.005)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        with contextlib.suppress(ProcessLookupError):
            first.kill()
    killed_at = watcher.sent_through()
    assert 0 < killed_at < total, "the publisher was not killed mid-drain"
    second = await asyncio.to_thread(
        subprocess.run, [*command, "--until-drained"], cwd=REPO, capture_output=True, timeout=180
    )
    assert second.returncode == 0, second.stderr.decode()[-2000:]
    assert watcher.backlog() == 0
    rows = watcher.outbox_rows()
    watcher.close()
    copies = sum(row[5] for row in rows)
    records = await consume(settings.bootstrap_servers, _topics(settings, ("dopa",)))
    by_id: dict[str, set[tuple[bytes, bytes]]] = defaultdict(set)
    for record in records:
        by_id[str(registry_codec(settings).decode(record.value).record["event_id"])].add((record.key, record.value))
    assert set(by_id) == {row[1] for row in rows}, "an outbox event is missing from the topics"
    assert all(len(variants) == 1 for variants in by_id.values()), "a re-send differs from the first send"
    assert len(records) >= copies


class _Proxy:
    """A TCP forwarder to the broker that can be started late, standing in for a broker coming back."""

    def __init__(self, port: int, target: str) -> None:
        self.port = port
        self.host, target_port = target.split(",")[0].rsplit(":", 1)
        self.target_port = int(target_port)
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._pipe, "127.0.0.1", self.port)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.host, self.target_port)

        async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()


async def test_the_publisher_resumes_when_the_broker_comes_back(settings: Settings, tmp_path: Path) -> None:
    await asyncio.to_thread(simulate, tmp_path, 1_000, 5, 0, None, ("dol",))
    await asyncio.to_thread(apply_topics, settings, load_catalog())
    proxy = _Proxy(_free_port(), settings.bootstrap_servers)
    publisher = Publisher(
        store_path(tmp_path, "dol"),
        ProducerConfig(clients(f"127.0.0.1:{proxy.port}"), request_timeout_ms=5_000),
        schema_ids(settings.registry_for(OPERATOR)),
        topic_prefix=settings.topic_prefix,
        signer=None,
        backoff_initial_s=0.1,
        backoff_max_s=0.5,
    )
    rows = publisher.store.last_seq()
    task = asyncio.create_task(publisher.run(until_drained=True))
    await asyncio.sleep(1.5)
    assert publisher.stats.retries >= 1 and publisher.stats.sent == 0 and publisher.stats.backlog == rows
    await proxy.start()
    try:
        stats = await asyncio.wait_for(task, 90)
    finally:
        await proxy.stop()
        publisher.close()
    assert stats.sent == rows and stats.backlog == 0
    records = await consume(settings.bootstrap_servers, _topics(settings, ("dol",)))
    assert len({registry_codec(settings).decode(r.value).record["event_id"] for r in records}) == rows


async def test_the_publisher_keeps_its_outbox_while_the_schema_registry_is_away(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No event goes out without its schema's id: while the registry does not answer, nothing more
    is sent, the batches already in flight are acknowledged once (the producer is kept, nothing is
    sent twice), and once it answers the outbox drains whole."""
    await asyncio.to_thread(simulate, tmp_path, 1_000, 5, 0, None, ("dol",))
    await asyncio.to_thread(apply_topics, settings, load_catalog())
    away = RegistryAccess(f"https://127.0.0.1:{_free_port()}/apis/ccompat/v7")
    publisher = Publisher(
        store_path(tmp_path, "dol"),
        ProducerConfig(settings.kafka),
        schema_ids(settings.registry_for(OPERATOR)),
        topic_prefix=settings.topic_prefix,
        signer=None,
        batch_rows=50,
        max_inflight=2,
        backoff_initial_s=0.1,
        backoff_max_s=0.3,
    )
    rows = publisher.store.last_seq()
    with caplog.at_level(logging.WARNING, logger="gdx.agencies.outbox"):
        task = asyncio.create_task(publisher.run(until_drained=True))
        while publisher.stats.sent == 0:
            await asyncio.sleep(0.01)
        publisher.schemas = schema_ids(away)  # the registry goes away: its ids are asked afresh
        await asyncio.sleep(1.5)
        held = publisher.store.sent_through()
        assert publisher.stats.retries >= 1 and publisher.stats.connected and 0 < held < rows
        await asyncio.sleep(0.5)
        assert publisher.store.sent_through() == held, "nothing more was sent without the registry"
        publisher.schemas = schema_ids(settings.registry_for(OPERATOR))  # the registry is back
        try:
            stats = await asyncio.wait_for(task, 90)
        finally:
            publisher.close()
    assert any(r.getMessage() == "schema registry unavailable, keeping the outbox" for r in caplog.records)
    assert stats.backlog == 0 and stats.sent == rows
    records = await consume(settings.bootstrap_servers, _topics(settings, ("dol",)))
    assert len(records) == rows, "every event once: nothing was sent twice"
    assert len({registry_codec(settings).decode(r.value).record["event_id"] for r in records}) == rows
    assert all_framed(records)


def all_framed(records: list[Any]) -> bool:
    """Every value is in the wire format: magic byte 0 and a schema id the registry gave."""
    return all(r.value[0] == 0 and int.from_bytes(r.value[1:5], "big") > 0 for r in records)
