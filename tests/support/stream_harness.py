"""Running the backbone for real in tests: agencies, workers and the checks, as separate processes."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from sqlalchemy import func, select

from agencies.simulation import store_path
from agencies.store import AgencyStore
from linkage.audit import AUDIT_TOPIC
from linkage.consumers import NOTIFY
from linkage.database import index_engine
from linkage.index_event import IndexEvent
from linkage.tables import access_log, notify_outbox
from schemas.catalog import load_schema_catalog
from schemas.codec import Codec
from schemas.errors import CodecError
from schemas.validation import validate_event
from streams.kafka_probe import topic_partitions
from streams.topic_catalog import load_catalog
from tests.support.cli_run import CliResult, clean_env, run_gdx
from tests.support.kafka_env import clients
from tests.support.signing_support import AgencyKeys

FAULTS = (
    "--fault-duplicate",
    "--fault-out-of-order",
    "--fault-malformed",
    "--fault-invalid-id",
    "--fault-late-arrival",
    "--fault-old-schema",
)


@dataclass(frozen=True)
class Backbone:
    """One isolated deployment: a cluster, a topic prefix, a state directory and an index database."""

    bootstrap_servers: str
    prefix: str
    state_dir: Path
    index_url: str
    settings: dict[str, str] = field(default_factory=dict)  # further GDX_* variables

    @property
    def env(self) -> dict[str, str]:
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "GDX_TOPIC_PREFIX": self.prefix,
            "GDX_STATE_DIR": str(self.state_dir),
            "GDX_INDEX_URL": self.index_url,
            **self.settings,
        }

    def signed(self, agency: str, value: bytes) -> list[tuple[str, bytes | None]]:
        """The headers `agency`'s publisher would give `value` in this deployment: its signature."""
        return AgencyKeys(self.state_dir).headers(agency, value)

    @property
    def group(self) -> str:
        return f"{self.prefix}gdx-index"

    def gdx(self, *args: str, timeout: float = 300) -> CliResult:
        return run_gdx(*args, env=self.env, timeout=timeout)

    def change_topics(self) -> list[str]:
        return [f"{self.prefix}{d.topic}" for d in load_catalog().datasets]

    def dead_letter_topics(self) -> list[str]:
        return [f"{self.prefix}gdx.dlq.{d.topic}" for d in load_catalog().datasets]

    def simulate_args(self, *args: str, faults: float = 0.0, report: Path | None = None) -> list[str]:
        command = ["simulate", "--store-dir", str(self.state_dir / "agencies"), *args]
        if faults:
            command += [part for flag in FAULTS for part in (flag, str(faults))]
        if report is not None:
            command += ["--report", str(report)]
        return command

    def simulate(self, *args: str, faults: float = 0.0, report: Path | None = None) -> dict[str, Any]:
        report = report or self.state_dir / f"report-{time.monotonic_ns()}.json"
        done = self.gdx(*self.simulate_args(*args, faults=faults, report=report))
        assert done.code == 0, done.err[-3000:]
        return dict(json.loads(report.read_text()))

    def reconcile(self) -> CliResult:
        return self.gdx("reconcile", "--store-dir", str(self.state_dir / "agencies"))


class Process:
    """A `gdx` subcommand running in the background, as an operator would start it."""

    def __init__(self, backbone: Backbone, *args: str, name: str) -> None:
        self.log = backbone.state_dir / f"{name}.log"
        backbone.state_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", *args],
                env=clean_env(backbone.env),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        self.popen.wait(timeout=60)

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout=timeout)

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def worker(backbone: Backbone, name: str = "worker", audit_partition: int | None = None) -> Iterator[Process]:
    """A worker; workers running side by side need audit partitions of their own for their notices."""
    chain = () if audit_partition is None else ("--audit-partition", str(audit_partition))
    process = Process(backbone, "worker", *chain, name=name)
    try:
        yield process
    finally:
        process.kill(signal.SIGTERM)


@contextmanager
def workers(backbone: Backbone, count: int, name: str = "worker") -> Iterator[list[Process]]:
    """`count` workers sharing the partitions in one group, as `gdx up --workers N` starts them:
    one alone chains its notices in the default audit partition, several in one each from 1."""
    started: list[Process] = []
    try:
        for n in range(count):
            chain = () if count == 1 else ("--audit-partition", str(1 + n))
            started.append(Process(backbone, "worker", *chain, name=f"{name}-{n + 1}"))
        yield started
    finally:
        for process in started:  # all at once: one by one, each survivor would take over the partitions
            if process.popen.poll() is None:
                process.popen.send_signal(signal.SIGTERM)
        for process in started:
            process.popen.wait(timeout=60)


async def _ends_and_committed(backbone: Backbone) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    partitions = await topic_partitions(clients(backbone.bootstrap_servers), backbone.change_topics())
    admin = clients(backbone.bootstrap_servers).admin()
    consumer = clients(backbone.bootstrap_servers).consumer()
    await admin.start()
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
        committed = {tp: meta.offset for tp, meta in (await admin.list_consumer_group_offsets(backbone.group)).items()}
        return ends, committed
    finally:
        await consumer.stop()
        await admin.close()


def _group_progress(
    backbone: Backbone, processes: tuple[Process, ...]
) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]] | None:
    """(ends, committed) of the change topics, after checking the workers still live; None while
    the group coordinator moves or starts up."""
    for process in processes:
        assert process.popen.poll() is None, f"worker exited {process.popen.returncode}:\n{process.tail()}"
    try:
        return asyncio.run(_ends_and_committed(backbone))
    except KafkaError:
        return None


def _queued_notices(backbone: Backbone) -> int:
    engine = index_engine(backbone.index_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(notify_outbox)).scalar_one())
    finally:
        engine.dispose()


def wait_caught_up(backbone: Backbone, timeout_s: float = 240, *processes: Process) -> None:
    """Until the worker group has committed every change topic's end and sent every queued notice
    (one the audit could not take while the broker was away waits for the retry), the workers
    still live."""
    deadline = time.monotonic() + timeout_s
    behind: dict[TopicPartition, tuple[int, int]] = {}
    queued = 0
    while time.monotonic() < deadline:
        if (progress := _group_progress(backbone, processes)) is not None:
            ends, committed = progress
            behind = {tp: (committed.get(tp, 0), end) for tp, end in ends.items() if end > committed.get(tp, 0)}
            if not behind and not (queued := _queued_notices(backbone)):
                return
        time.sleep(1.0)
    raise AssertionError(
        f"workers still behind after {timeout_s} s: {sorted(behind.items())[:5]}, {queued} notices queued"
    )


def wait_in_flight(backbone: Backbone, timeout_s: float, *processes: Process, beyond: int = 0) -> tuple[int, int]:
    """Until the worker group has committed some (more than `beyond` offsets) but not all of what
    the change topics hold, so a fault injected now hits work in progress; (committed, ends)
    summed over the partitions."""
    deadline = time.monotonic() + timeout_s
    totals = (0, 0)
    while time.monotonic() < deadline:
        if (progress := _group_progress(backbone, processes)) is not None:
            ends, committed = progress
            totals = (sum(committed.get(tp, 0) for tp in ends), sum(ends.values()))
            if beyond < totals[0] < totals[1]:
                return totals
        time.sleep(0.5)
    raise AssertionError(f"no work in flight within {timeout_s} s: committed {totals[0]} of {totals[1]}")


async def produce(
    bootstrap: str, topic: str, records: list[tuple[bytes, bytes, list[tuple[str, bytes | None]]]]
) -> None:
    """Records (key, value, headers) produced as an agency's publisher does: idempotent, acks=all."""
    producer = clients(bootstrap).producer(enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for key, value, headers in records:
            await producer.send_and_wait(topic, value, key=key, headers=headers)  # type: ignore[arg-type]
    finally:
        await producer.stop()


async def _count_records(bootstrap: str, topics: list[str]) -> int:
    partitions = await topic_partitions(clients(bootstrap), topics)
    consumer = clients(bootstrap).consumer()
    await consumer.start()
    try:
        begins = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        return sum(ends[tp] - begins[tp] for tp in partitions)
    finally:
        await consumer.stop()


def dead_letters(backbone: Backbone) -> int:
    return asyncio.run(_count_records(backbone.bootstrap_servers, backbone.dead_letter_topics()))


def injected(report: dict[str, Any], kind: str) -> int:
    return sum(int(agency["faults"].get(kind, 0)) for agency in report["agencies"])


async def _read_all(bootstrap: str, topics: list[str]) -> list[bytes]:
    partitions = await topic_partitions(clients(bootstrap), topics)
    consumer = clients(bootstrap).consumer(enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        values: list[bytes] = []
        remaining = {tp for tp, end in ends.items() if end > 0}
        while remaining:
            for tp, messages in (await consumer.getmany(*remaining, timeout_ms=1000)).items():
                values.extend(m.value for m in messages)
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        return values
    finally:
        await consumer.stop()


def notifications(backbone: Backbone, consumer: str) -> list[dict[str, Any]]:
    """Every notification sent to `consumer` so far, decoded."""
    topic = f"{backbone.prefix}gdx.notify.{consumer}"
    return [json.loads(value) for value in asyncio.run(_read_all(backbone.bootstrap_servers, [topic]))]


def notices_on_record(backbone: Backbone) -> tuple[Counter[str], Counter[str]]:
    """Notice ids as often as they are in the audit trail (allowed notify records) and in the
    access log."""
    trail = asyncio.run(_read_all(backbone.bootstrap_servers, [f"{backbone.prefix}{AUDIT_TOPIC}"]))
    records = [json.loads(value) for value in trail]
    audited = Counter(r["request_id"] for r in records if r.get("operation") == NOTIFY and r["decision"] == "allow")
    engine = index_engine(backbone.index_url)
    try:
        with engine.connect() as conn:
            logged = conn.execute(select(access_log.c.request_id).where(access_log.c.operation == NOTIFY)).scalars()
            return audited, Counter(logged)
    finally:
        engine.dispose()


def _published_events(backbone: Backbone, agency: str) -> list[IndexEvent]:
    """Every valid event in an agency's outbox; the malformed and invalid ones are dead letters."""
    catalog = load_schema_catalog()
    codec = Codec(catalog)
    dataset_of = {name: f"{agency}.{dataset}" for (agency, dataset), name in catalog.datasets.items()}
    store = AgencyStore(store_path(backbone.state_dir / "agencies", agency))
    try:
        events = []
        for _, _, _, _, value, _ in store.outbox_rows():
            try:
                decoded = codec.decode_stored(value)
                validate_event(decoded)
            except CodecError:
                continue
            events.append(IndexEvent.from_record(dataset_of[decoded.schema_name], decoded.record))
        return events
    finally:
        store.close()


def owner_deaths(backbone: Backbone) -> dict[str, str]:
    """Event id -> deceased, of every registered death whose deceased a vehicle or a title deed
    named at the death's source time, from the agencies' own outboxes.

    A version of an entity holds from its source time to the next version's, both ends included
    (an inheritance registered in the death's own millisecond still follows the death).
    """
    versions: dict[tuple[str, str], dict[int, IndexEvent]] = {}
    for agency in ("dlt", "dol"):
        for event in _published_events(backbone, agency):
            if event.dataset in ("dlt.vehicle", "dol.title-deed"):
                versions.setdefault(event.key, {})[event.entity_version] = event
    held: dict[str, list[tuple[int, int | None]]] = {}
    for by_version in versions.values():
        ordered = [by_version[v] for v in sorted(by_version)]
        for event, following in zip(ordered, [*ordered[1:], None], strict=True):
            for citizen in event.citizen_ids:
                held.setdefault(citizen, []).append((event.source_ms, following.source_ms if following else None))
    deaths = {}
    for death in _published_events(backbone, "dopa"):
        if death.dataset != "dopa.death" or death.payload is None or death.change_type == "SNAPSHOT":
            continue
        deceased = str(death.payload["citizen_id"])
        if any(
            start <= death.source_ms and (until is None or death.source_ms <= until)
            for start, until in held.get(deceased, [])
        ):
            deaths[death.event_id] = deceased
    return deaths
