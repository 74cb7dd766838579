"""The outbox publisher: drains one agency's outbox to Kafka, never losing an event.

Rows are read in commit order, stamped with their publish time (the time of a range of rows is
persisted before the range is first sent, so a re-send is byte-identical), handed to an idempotent
producer (acks=all) and marked sent only once the broker acknowledged every record of their batch.
Batches are acknowledged in order, so "sent" is one watermark, not a write per row; several
batches are in flight at once so the producer never waits for the database. If the process dies,
rows above the watermark go again on restart: a duplicate is always an exact re-send of the same
event id.

A stored event is self-describing (single-object encoding); it goes on the wire in the Confluent
format, under the id the schema registry gives its schema (`SchemaIds`, asked once per schema), so
a consumer decodes it with the registry alone. Every record value is signed with the agency's key
(`schemas.event_signatures`, one signature per chunk of a batch), after its publish time is
stamped, so the signature covers the exact bytes on the wire; a re-send after a crash is the same
bytes, signed again (Ed25519 is deterministic, and a chunk's root depends on its neighbours, so
the signature may differ while the bytes it proves do not).

When the broker is unreachable the publisher keeps the outbox, reports the backlog, retries with
exponential backoff and carries on when the broker is back. A broker that refuses the publisher's
principal (its ACLs do not let this agency write a topic its outbox names) is handled the same way —
nothing is marked sent, and publishing resumes once the ACLs allow it — but reported in one log
line (and `stats.last_error`) rather than one per retry: it will not pass by itself. A schema
registry that is away or refuses a schema keeps the outbox alike. One publisher per outbox: a second
one would stamp its own publish times, so it is refused (an advisory lock, freed even by SIGKILL).

Run on its own: `python -m streams.outbox_relay --store dopa.db`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import random
import time
from bisect import bisect_right
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    KafkaError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)

from agencies.events import stamp, stamp_bytes
from agencies.schema_ids import SchemaIds, SchemaNotRegistered
from agencies.store import AgencyStore, PendingRow, now_ms
from foundation.kafka_clients import KafkaClients
from foundation.schema_registry import RegistryRefused, RegistryUnavailable
from schemas.event_signatures import Signer

log = logging.getLogger("gdx.agencies.outbox")
REFUSED = (
    TopicAuthorizationFailedError,
    ClusterAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
    RegistryRefused,
    SchemaNotRegistered,
)
"""Answers that mean "this principal may not" (the broker's ACLs, the registry), as opposed to
"the broker is away": logged once, not at every retry."""
REGISTRY_ERRORS = (RegistryUnavailable, RegistryRefused, SchemaNotRegistered)


@dataclass(frozen=True)
class ProducerConfig:
    """The producer settings the publisher and its benchmark baseline share."""

    kafka: KafkaClients
    linger_ms: int = 5
    max_batch_size: int = 512 * 1024
    request_timeout_ms: int = 30_000

    def producer(self) -> AIOKafkaProducer:
        return self.kafka.producer(
            enable_idempotence=True,
            acks="all",
            linger_ms=self.linger_ms,
            max_batch_size=self.max_batch_size,
            request_timeout_ms=self.request_timeout_ms,
        )


@dataclass
class PublisherStats:
    sent: int = 0  # outbox rows acknowledged by the broker
    records: int = 0  # Kafka records acknowledged, counting injected duplicate sends
    backlog: int = 0  # outbox rows not yet acknowledged, as of the last count
    retries: int = 0  # reconnects after a broker failure
    connected: bool = False
    last_error: str = ""


@dataclass
class _Batch:
    last_seq: int
    rows: int
    records: int
    topics: Counter[str]  # records per (unprefixed) topic
    acked: asyncio.Future[list[object]]


class Publisher:
    def __init__(
        self,
        store_path: Path,
        config: ProducerConfig,
        schemas: SchemaIds,
        topic_prefix: str = "",
        *,
        signer: Signer | None,
        batch_rows: int = 2_000,
        max_inflight: int = 32,
        backoff_initial_s: float = 0.2,
        backoff_max_s: float = 10.0,
        poll_s: float = 0.05,
        on_progress: Callable[[PublisherStats], None] | None = None,
        on_acked: Callable[[Mapping[str, int]], None] | None = None,
    ) -> None:
        """`signer`: the agency's key, which signs every record value it publishes (None publishes
        unsigned, which a worker under the default policy dead-letters). `on_progress` hears the
        stats about once a second; `on_acked` hears, per acknowledged batch, how many records each
        (unprefixed) topic received — what a metric of published events counts, kept out of this
        module so it needs no metrics library."""
        self._lock = _exclusive(store_path)
        self.store = AgencyStore(store_path)
        self.config = config
        self.schemas = schemas
        self.topic_prefix = topic_prefix
        self.signer = signer
        self.batch_rows = batch_rows
        self.max_inflight = max_inflight
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.poll_s = poll_s
        self.on_progress = on_progress
        self.on_acked = on_acked
        self.stats = PublisherStats(backlog=self.store.backlog())
        self._counted_at = 0.0
        self._stamps: list[tuple[int, int, int]] = []
        self._stamp_firsts: list[int] = []
        self._stamped_through = 0

    def close(self) -> None:
        self.store.close()
        self._lock.close()

    async def run(
        self, stop: asyncio.Event | None = None, until_drained: bool = False, drain: asyncio.Event | None = None
    ) -> PublisherStats:
        """Publish until `stop` is set, or until the outbox is empty once `until_drained` (or
        `drain`, when it gets set) asks for that."""
        stop = stop or asyncio.Event()
        producer: AIOKafkaProducer | None = None
        inflight: deque[_Batch] = deque()
        cursor = self._resume()
        backoff = self.backoff_initial_s
        reported = ""  # the last error logged: a refusal is logged once, not at every retry
        try:
            while not stop.is_set():
                try:
                    if producer is None:
                        producer = self.config.producer()
                        await producer.start()
                        self.stats.connected = True
                    rows = self.store.pending(cursor, self.batch_rows)
                    if rows:
                        inflight.append(await self._send(producer, rows))
                        cursor = rows[-1][0]
                        while inflight and (inflight[0].acked.done() or len(inflight) > self.max_inflight):
                            self._settle(await self._acked(inflight.popleft()))
                        backoff = self.backoff_initial_s
                    else:
                        while inflight:
                            self._settle(await self._acked(inflight.popleft()))
                        self._count_backlog(force=True)
                        if (until_drained or (drain is not None and drain.is_set())) and self.stats.backlog == 0:
                            break
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), self.poll_s)
                    self._count_backlog()
                except REGISTRY_ERRORS as exc:
                    # Nothing of this batch was sent: its ids are settled before anything else.
                    # The batches in flight are the broker's to acknowledge; producer and cursor stay.
                    reported = await self._hold(exc, backoff, reported, stop)
                    backoff = min(backoff * 2, self.backoff_max_s)
                except (KafkaError, OSError) as exc:
                    self.stats.connected = False
                    for batch in inflight:
                        batch.acked.cancel()
                    inflight.clear()
                    cursor = self._resume()  # re-read every unacknowledged row
                    await self._discard(producer)
                    producer = None
                    reported = await self._hold(exc, backoff, reported, stop)
                    backoff = min(backoff * 2, self.backoff_max_s)
            with contextlib.suppress(KafkaError, OSError):
                while inflight and producer is not None:
                    self._settle(await self._acked(inflight.popleft()))
        finally:
            await self._discard(producer)
            self.stats.connected = False
            self._count_backlog(force=True)
        return self.stats

    async def _hold(self, exc: Exception, backoff: float, reported: str, stop: asyncio.Event) -> str:
        """Count and report a failed attempt (a refusal once, not at every retry), then wait
        between half of `backoff` and all of it, or until stopped; returns the error now reported.
        The jitter parts publishers that failed together (the registry's race on concurrent
        registrations, a broker back after a restart): retrying in step, they would meet again."""
        wait_s = random.uniform(backoff / 2, backoff)
        self.stats.retries += 1
        self.stats.last_error = f"{type(exc).__name__}: {exc}"
        self._count_backlog(force=True)
        if not isinstance(exc, REFUSED) or self.stats.last_error != reported:
            log.warning(
                _why_kept(exc),
                extra={
                    "store": str(self.store.path),
                    "backlog": self.stats.backlog,
                    "retry_in_s": round(wait_s, 3),
                    "error": self.stats.last_error,
                },
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), wait_s)
        return self.stats.last_error

    def _resume(self) -> int:
        """Where sending starts again: after the watermark, with the publish times already fixed."""
        self._stamps = self.store.stamps()
        self._stamp_firsts = [first for first, _, _ in self._stamps]
        self._stamped_through = max((last for _, last, _ in self._stamps), default=0)
        return self.store.sent_through()

    def _published(self, seq: int) -> bytes:
        at = bisect_right(self._stamp_firsts, seq) - 1
        return stamp_bytes(self._stamps[at][2])

    async def _send(self, producer: AIOKafkaProducer, rows: Sequence[PendingRow]) -> _Batch:
        prefix = self.topic_prefix
        schemas = self.schemas
        await schemas.settle((prefix + row[1], row[3]) for row in rows)  # before the publish time is fixed
        first, last = rows[0][0], rows[-1][0]
        if last > self._stamped_through:
            start = max(first, self._stamped_through + 1)
            stamp_range = (start, last, now_ms())
            self.store.add_stamp(*stamp_range)
            self._stamps.append(stamp_range)
            self._stamp_firsts.append(start)
            self._stamped_through = last
        futures = []
        published = stamp_bytes(self._stamps[-1][2])
        fresh_from = self._stamps[-1][0]
        send = producer.send
        topics: Counter[str] = Counter()
        values = [
            schemas.framed(
                prefix + topic, stamp(value, stamp_at, published if seq >= fresh_from else self._published(seq))
            )
            for seq, topic, _, value, stamp_at, _ in rows
        ]
        signed = [None] * len(rows) if self.signer is None else self.signer.sign_all(values)
        for (_, topic, key, _, _, copies), value, headers in zip(rows, values, signed, strict=True):
            topics[topic] += copies
            key_bytes = key.encode()
            for _ in range(copies):
                futures.append(await send(prefix + topic, value, key=key_bytes, headers=headers))
        return _Batch(last, len(rows), len(futures), topics, asyncio.gather(*futures))

    @staticmethod
    async def _acked(batch: _Batch) -> _Batch:
        await batch.acked
        return batch

    def _settle(self, batch: _Batch) -> None:
        self.store.mark_sent_through(batch.last_seq, now_ms())
        self.stats.sent += batch.rows
        self.stats.records += batch.records
        self.stats.backlog = max(0, self.stats.backlog - batch.rows)
        if self.on_acked is not None:
            self.on_acked(batch.topics)

    def _count_backlog(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._counted_at >= 1.0:
            self.stats.backlog = self.store.backlog()
            self._counted_at = now
            if self.on_progress is not None:
                self.on_progress(self.stats)

    @staticmethod
    async def _discard(producer: AIOKafkaProducer | None) -> None:
        if producer is not None:
            with contextlib.suppress(KafkaError, OSError, TimeoutError):
                await asyncio.wait_for(producer.stop(), 10)


def _why_kept(exc: Exception) -> str:
    if isinstance(exc, RegistryUnavailable):
        return "schema registry unavailable, keeping the outbox"
    if isinstance(exc, (RegistryRefused, SchemaNotRegistered)):
        return "refused by the schema registry, keeping the outbox"
    if isinstance(exc, REFUSED):
        return "refused by the broker's ACLs, keeping the outbox"
    return "broker unavailable, keeping the outbox"


class PublisherBusy(Exception):
    """Another publisher holds this outbox."""


def _exclusive(store_path: Path) -> TextIO:
    lock = open(f"{store_path}.publisher.lock", "a")  # noqa: SIM115 - held open for the publisher's life
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise PublisherBusy(f"another publisher is draining {store_path}") from None
    return lock
