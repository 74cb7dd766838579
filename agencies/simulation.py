"""`gdx simulate` without the command line: initial load, life events at a rate, publishing.

All four agencies' stores are always created (life events of one agency read the others, as the
real registries do through GDX); `agencies` selects which of them produce life events and
publish. The publishers run in the same event loop as the life-event generator, and a progress
line (rate, totals, outbox backlog, broker state) is printed every second.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TextIO

from agencies.errors import SimulationError
from agencies.events import Route
from agencies.faults import FaultRates
from agencies.life_events import LifeEvents, NoCandidate
from agencies.outbox import ProducerConfig, Publisher, PublisherBusy, PublisherStats
from agencies.population import AGENCIES, Population
from agencies.ratios import sizes
from agencies.schema_ids import SchemaIds
from agencies.source import SourceSystem
from foundation.kafka_clients import KafkaClients
from foundation.schema_registry import RegistryAccess, SchemaRegistry
from schemas.catalog import SchemaCatalog
from schemas.event_signatures import Signer

POPULATION_META = "population"


@dataclass(frozen=True)
class Plan:
    store_dir: Path
    scale: int
    seed: int
    agencies: tuple[str, ...] = AGENCIES
    rate: float = 10.0  # life events per second
    duration_s: float | None = None
    count: int | None = None
    faults: FaultRates = field(default_factory=FaultRates)
    # Each agency's publisher connects as that agency: a mapping agency -> its clients (a plain
    # value, so the plan crosses process boundaries), or one KafkaClients for all (an unsecured
    # cluster, a test). None: write the stores only, publish nothing.
    kafka: KafkaClients | Mapping[str, KafkaClients] | None = None
    # The schema registry each publisher asks for its schemas' ids, alike: per agency, or one for
    # all; required to publish. `register_schemas`: whether a publisher may register a schema its
    # topic's subject lacks (the development profile) or only look ids up (production).
    registry: RegistryAccess | Mapping[str, RegistryAccess] | None = None
    register_schemas: bool = True
    # Each publishing agency's signing key; an agency without one publishes unsigned (a test of
    # the publisher alone: a worker under the default policy dead-letters unsigned events).
    signers: Mapping[str, Signer] = field(default_factory=dict)
    topic_prefix: str = ""
    reset: bool = False
    load_workers: int = 1  # processes for the initial load (agencies load independently)

    def __post_init__(self) -> None:
        sizes(self.scale)
        unknown = [a for a in self.agencies if a not in AGENCIES]
        if unknown or not self.agencies:
            raise SimulationError(
                f"unknown agency {', '.join(unknown) or '(none)'}", f"choose from {', '.join(AGENCIES)} or all"
            )
        if self.rate <= 0:
            raise SimulationError(f"rate {self.rate} events/s is not positive", "give a rate above 0, e.g. --rate 50")
        if self.duration_s is not None and self.duration_s <= 0:
            raise SimulationError(f"duration {self.duration_s} s is not positive", "give a duration above 0")
        if self.load_workers < 1:
            raise SimulationError(f"{self.load_workers} load workers", "give at least 1")
        if self.count is not None and self.count < 0:
            raise SimulationError(f"count {self.count} is negative", "give a count of 0 or more")
        if isinstance(self.kafka, Mapping):
            missing = [a for a in self.agencies if a not in self.kafka]
            if missing:
                raise SimulationError(
                    f"no Kafka clients for {', '.join(missing)}", "give every publishing agency its own"
                )

    def kafka_for(self, agency: str) -> KafkaClients:
        """The clients `agency`'s outbox publisher connects with."""
        if self.kafka is None:
            raise SimulationError("this plan publishes nothing", "give it Kafka clients")
        return self.kafka[agency] if isinstance(self.kafka, Mapping) else self.kafka

    def registry_for(self, agency: str) -> RegistryAccess:
        """How `agency`'s outbox publisher reaches the schema registry."""
        if self.registry is None:
            raise SimulationError("this plan names no schema registry to publish with", "give it the registry's access")
        return self.registry[agency] if isinstance(self.registry, Mapping) else self.registry


def store_path(store_dir: Path, agency: str) -> Path:
    return store_dir / f"{agency}.db"


@dataclass
class Progress:
    """What the terminal line shows; updated by the loops, printed by `Reporter`."""

    phase: str = "starting"
    loaded: Counter[str] = field(default_factory=Counter)
    to_load: int = 0
    life_events: Counter[str] = field(default_factory=Counter)
    publishers: dict[str, PublisherStats] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)


class Reporter:
    """Prints a progress line once a second: in place on a terminal, one line each otherwise."""

    def __init__(self, progress: Progress, out: TextIO) -> None:
        self.progress = progress
        self.out = out
        self.tty = out.isatty()
        self._last = 0.0
        self._life_mark = (time.monotonic(), 0)

    def line(self) -> str:
        p = self.progress
        elapsed = time.monotonic() - p.started
        parts = [f"[{elapsed:7.1f}s] {p.phase}"]
        if p.to_load:
            done = sum(p.loaded.values())
            if p.phase == "initial load":
                parts.append(f"loaded {done:,}/{p.to_load:,} ({done / max(elapsed, 1e-9):,.0f}/s)")
            else:
                parts.append(f"loaded {done:,}")
        life = sum(p.life_events.values())
        if life or p.phase == "life events":
            then, before = self._life_mark
            now = time.monotonic()
            rate = (life - before) / max(now - then, 1e-9)
            self._life_mark = (now, life)
            parts.append(f"life events {life:,} ({rate:,.1f}/s)")
        if p.publishers:
            sent = sum(s.sent for s in p.publishers.values())
            backlog = sum(s.backlog for s in p.publishers.values())
            down = [a for a, s in p.publishers.items() if s.retries and not s.connected]
            parts.append(f"published {sent:,} | backlog {backlog:,}")
            if down:
                parts.append(f"broker unreachable for {','.join(down)} (retrying)")
        return " | ".join(parts)

    def tick(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last >= 1.0:
            self._last = now
            text = self.line()
            self.out.write(f"\r{text:<120}" if self.tty else text + "\n")
            self.out.flush()

    def done(self) -> None:
        self.tick(force=True)
        if self.tty:
            self.out.write("\n")


class PublishObserver(Protocol):
    """What the publishers report as they go; the command line turns it into metrics, so the
    agencies need no monitoring code of their own."""

    def acked(self, agency: str, topics: Mapping[str, int]) -> None:
        """Records per (unprefixed) topic that the broker acknowledged in one batch."""

    def backlog(self, agency: str, rows: int) -> None:
        """Outbox rows not yet acknowledged, about once a second."""


class Simulation:
    def __init__(
        self,
        plan: Plan,
        routes: dict[str, dict[str, Route]],
        catalog: SchemaCatalog,
        out: TextIO = sys.stdout,
        observer: PublishObserver | None = None,
    ) -> None:
        self.plan = plan
        self.observer = observer
        self.routes = routes
        self.catalog = catalog
        self.progress = Progress()
        self.reporter = Reporter(self.progress, out)
        self.population = Population(plan.scale, plan.seed)
        self.sources: dict[str, SourceSystem] = {}

    def open(self) -> None:
        plan = self.plan
        if plan.reset:
            for agency in AGENCIES:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{store_path(plan.store_dir, agency)}{suffix}").unlink(missing_ok=True)
        self.sources = {agency: self.source(agency) for agency in AGENCIES}

    def source(self, agency: str) -> SourceSystem:
        faults = self.plan.faults if agency in self.plan.agencies else FaultRates()
        return SourceSystem(
            agency, store_path(self.plan.store_dir, agency), self.routes[agency], self.catalog, self.plan.seed, faults
        )

    def close(self) -> None:
        for source in self.sources.values():
            source.close()
        self.sources = {}

    def initial_load(self) -> bool:
        """Load every agency's registry once; False when the stores already hold this population."""
        wanted = f"scale={self.plan.scale} seed={self.plan.seed}"
        held = {a: s.store.meta(POPULATION_META) for a, s in self.sources.items()}
        if all(h == wanted for h in held.values()):
            return False
        stale = {a: h for a, h in held.items() if h is not None and h != wanted}
        partial = [a for a, s in self.sources.items() if held[a] is None and s.store.count()]
        if stale or partial:
            found = "; ".join(f"{a}: {h}" for a, h in stale.items()) or f"an unfinished load in {', '.join(partial)}"
            raise SimulationError(
                f"the stores in {self.plan.store_dir} hold another population ({found})",
                "add --reset to start over, or use another --store-dir",
            )
        self.progress.phase = "initial load"
        sizes = self.population.counts()
        self.progress.to_load = sum(sizes.values())
        todo = [a for a in AGENCIES if held[a] != wanted]
        if self.plan.load_workers > 1 and len(todo) > 1:
            self._load_in_processes(todo, sizes, wanted)
        else:
            for agency in todo:
                self._load(self.sources[agency], wanted, self._count_loaded)
        self.reporter.tick(force=True)
        return True

    def _count_loaded(self, agency: str, count: int) -> None:
        self.progress.loaded[agency] += count
        self.reporter.tick()

    def _load(self, source: SourceSystem, wanted: str, on_batch: Callable[[str, int], None]) -> None:
        source.load(self.population.records(source.agency), on_batch=on_batch)
        with source.store.transaction() as tx:
            tx.set_meta(POPULATION_META, wanted)

    def _load_in_processes(self, todo: list[str], sizes: dict[str, int], wanted: str) -> None:
        """One forked process per group of agencies (each its own store), balanced by size.

        The stores are closed across the fork, so no SQLite connection is shared; the children
        inherit the census and the schemas and report progress through shared counters.
        """
        context = multiprocessing.get_context("fork")
        counters = {agency: context.Value("q", 0) for agency in todo}
        groups: list[list[str]] = [[] for _ in range(min(self.plan.load_workers, len(todo)))]
        for agency in sorted(todo, key=lambda a: -sizes[a]):
            min(groups, key=lambda g: sum(sizes[a] for a in g)).append(agency)
        self.close()
        workers = [
            context.Process(target=self._load_group, args=(group, counters, wanted), daemon=True) for group in groups
        ]
        try:
            for worker in workers:
                worker.start()
            while any(worker.is_alive() for worker in workers):
                for agency, counter in counters.items():
                    self.progress.loaded[agency] = counter.value
                self.reporter.tick()
                time.sleep(0.2)
        finally:
            for worker in workers:
                worker.join()
            self.sources = {agency: self.source(agency) for agency in AGENCIES}
        failed = [w.exitcode for w in workers if w.exitcode != 0]
        if failed:
            raise SimulationError(
                f"the initial load failed in a worker process (exit {failed[0]})",
                "see the error above; rerun with --reset",
            )
        for agency, counter in counters.items():
            self.progress.loaded[agency] = counter.value

    def _load_group(self, agencies: list[str], counters: dict[str, Any], wanted: str) -> None:
        def count(agency: str, n: int) -> None:
            with counters[agency].get_lock():
                counters[agency].value += n

        for agency in agencies:
            source = self.source(agency)
            try:
                self._load(source, wanted, count)
            finally:
                source.close()

    async def run(self, load: bool = True, life: bool = True) -> Counter[str]:
        """Load, then life events while publishing; then drain the outboxes. Ctrl-C stops early."""
        self.open()
        try:
            if load:
                self.initial_load()
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, stop.set)
            publishers = self._publishers()
            drain = asyncio.Event()
            tasks = [asyncio.create_task(self._publish(p, stop, drain)) for p in publishers]
            try:
                if life and not stop.is_set():
                    await self._life(stop)
            except BaseException:
                stop.set()  # a failed run stops publishing at once; the outboxes keep the rest
                raise
            finally:
                self.progress.phase = "draining outbox" if publishers and not stop.is_set() else "stopping"
                drain.set()
                while tasks and not all(t.done() for t in tasks):
                    self.reporter.tick()
                    await asyncio.wait(tasks, timeout=0.25)
                for publisher in publishers:
                    publisher.close()
            for task in tasks:
                task.result()
            self.progress.phase = "stopped" if stop.is_set() else "done"
            self.reporter.done()
            return self.progress.life_events
        finally:
            self.close()

    def _publishers(self) -> list[Publisher]:
        if self.plan.kafka is None:
            return []
        publishers: list[Publisher] = []
        for agency in self.plan.agencies:
            try:
                publisher = Publisher(
                    store_path(self.plan.store_dir, agency),
                    ProducerConfig(self.plan.kafka_for(agency)),
                    SchemaIds(self.catalog, SchemaRegistry(self.plan.registry_for(agency)), self.plan.register_schemas),
                    self.plan.topic_prefix,
                    signer=self.plan.signers.get(agency),
                    on_acked=self._on_acked(agency),
                    on_progress=self._on_progress(agency),
                )
            except PublisherBusy as exc:
                for started in publishers:
                    started.close()
                raise SimulationError(
                    str(exc), "stop the other `gdx simulate` or `streams.outbox_relay` first"
                ) from None
            self.progress.publishers[agency] = publisher.stats
            publishers.append(publisher)
        return publishers

    def _on_acked(self, agency: str) -> Callable[[Mapping[str, int]], None] | None:
        return None if self.observer is None else partial(self.observer.acked, agency)

    def _on_progress(self, agency: str) -> Callable[[PublisherStats], None] | None:
        observer = self.observer
        if observer is None:
            return None
        return lambda stats: observer.backlog(agency, stats.backlog)

    @staticmethod
    async def _publish(publisher: Publisher, stop: asyncio.Event, drain: asyncio.Event) -> None:
        """Publish while events are made; once `drain` is set, until the outbox is empty."""
        await publisher.run(stop, drain=drain)

    async def _life(self, stop: asyncio.Event) -> None:
        plan = self.plan
        ledger = self.sources["dopa"].store
        done_before = int(ledger.meta("life_events") or 0)
        events = LifeEvents(
            self.sources, plan.agencies, self.population, random.Random(f"{plan.seed}/life/{done_before}")
        )
        self.progress.phase = "life events"
        started = time.monotonic()
        deadline = started + plan.duration_s if plan.duration_s is not None else None
        try:
            await self._pace(events, stop, started, deadline)
        finally:
            with ledger.transaction() as tx:
                tx.set_meta("life_events", str(done_before + sum(self.progress.life_events.values())))

    async def _pace(self, events: LifeEvents, stop: asyncio.Event, started: float, deadline: float | None) -> None:
        """Apply life events at the planned rate until the count, the duration or a stop."""
        plan = self.plan
        made = 0
        while not stop.is_set():
            if plan.count is not None and made >= plan.count:
                break
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            due = started + made / plan.rate
            if due > now:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), due - now)
                continue
            try:
                name = events.step()
            except NoCandidate as exc:
                raise SimulationError(str(exc), "use a larger --scale") from None
            self.progress.life_events[name] += 1
            made += 1
            self.reporter.tick()
            if made % 64 == 0:
                await asyncio.sleep(0)
