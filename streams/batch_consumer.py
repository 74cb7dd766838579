"""faust's consumer, fetching a batch at a time and handing it whole to the worker.

faust delivers a message at a time: its fetcher awaits `wait_first(callback(message), …)` for
every record, a stream then buffers, acks and tracks each one, about 57 µs a message in all —
more than decoding and validating it. This consumer keeps faust as the runtime (group
membership, rebalances, the flow control that stops fetching during one, commits, liveness
bookkeeping) and replaces only the per-message delivery: each fetched batch goes to one handler,
and once the handler has returned (the index committed, dead letters and notices acknowledged)
each partition's next offset is what faust commits. A handler that raises stops the worker
(streams.worker); a batch not handled is not committed, so it is delivered again.

One batch ahead: while a batch is in the index, the next is fetched and prepared (decoded,
checked, built) in another thread, and handed over once the one before was handled.

Rebalances: a revocation stops the flow, waits for the batch in hand and commits it before faust
lets the revoked partitions go, so their new owner starts after the last batch applied. A batch
fetched while the flow was stopped, or across a change of generation, is dropped, and the
partitions are sought back to their committed offsets, as faust's own fetcher does. A stop
cancels the fetching, not the batch in hand, which finishes and is committed.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from time import monotonic
from typing import Any, cast

import faust
from aiokafka.errors import KafkaError
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP
from mode import ServiceT

from streams.pipeline import SourceRecord

Preparer = Callable[[Sequence[SourceRecord]], Any]
"""Synchronous, run in a thread: what can be done to a batch before its turn comes."""
BatchHandler = Callable[[Sequence[SourceRecord], Awaitable[Any]], Awaitable[object]]
"""Given the batch and its preparation (awaited inside, so a failing preparation fails the batch)."""


def source_record(record: Any) -> SourceRecord:
    """An aiokafka ConsumerRecord, whose headers are already (str, bytes or None) pairs; without a
    key, a value (a tombstone) or a timestamp as Kafka may deliver it."""
    return SourceRecord(
        record.topic,
        record.partition,
        record.offset,
        record.key,
        record.value,
        tuple(record.headers or ()),
        record.timestamp or 0,
    )


FETCH_MIN_BYTES = 64 * 1024
FETCH_MAX_WAIT_MS = 40
"""A fetch waits at the broker until 64 KiB are there (about a hundred events) or 40 ms have
passed. faust asks for any byte (and up to 1.5 s): at a thousand events a second each fetch then
brought a few records, and every batch's fixed costs (two thread hand-offs, a transaction, the
pending links, a fetch over TLS at each end) took half a core in the worker and more in the
broker, delaying the very events they were quick to fetch."""


class _FetchingThread(aiokafka_driver.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        for name, value in (("_fetch_min_bytes", FETCH_MIN_BYTES), ("_fetch_max_wait_ms", FETCH_MAX_WAIT_MS)):
            if not hasattr(consumer, name):  # read by start(), which builds the fetcher
                raise RuntimeError(f"this aiokafka consumer has no {name}: install one within pyproject.toml's range")
            setattr(consumer, name, value)
        return consumer


class BatchConsumer(aiokafka_driver.Consumer):
    _next: dict[TP, int]
    """Per partition, the offset after the last record handled: what the next commit stores."""
    _in_hand: asyncio.Task[None] | None
    """The batch being handled: a task of its own, so a stop that cancels the fetcher leaves it to
    finish, and `wait_empty` commits it instead of the next owner redoing it."""

    def _new_consumer_thread(self) -> aiokafka_driver.AIOKafkaConsumerThread:
        return _FetchingThread(self, loop=self.loop, beacon=self.beacon)

    def on_init(self) -> None:
        super().on_init()
        self._next = {}
        self._in_hand = None

    async def _drain_messages(self, fetcher: ServiceT) -> None:
        """Fetch, prepare and hand over, one batch ahead: while a batch is in the index, the next is
        fetched and prepared (decoded, checked, built) in another thread; it is handed over only
        after the one before was handled, and only if no rebalance began meanwhile."""
        app = cast(BatchApp, self.app)
        try:
            while not (self.should_stop or fetcher.should_stop):
                records, active = await self._wait_next_records(timeout=1.0)
                generation = self.app.consumer_generation_id
                if not records or self.should_stop:
                    continue
                if not self.flow_active:
                    await self._seek_back()
                    continue
                taken = {tp: listed for tp, listed in records.items() if listed and (active is None or tp in active)}
                if not taken:
                    continue
                ends = {tp: self.highwater(tp) for tp in taken}
                batch = [source_record(record) for listed in taken.values() for record in listed]
                prepared = asyncio.ensure_future(asyncio.to_thread(app.prepare_batch, batch))
                await self._settled()
                if self._flow_stopped():  # a revocation began while the batch before was handled
                    await self._seek_back()
                    continue
                if self.app.consumer_generation_id != generation:
                    continue  # the new assignment sought its partitions to their committed offsets
                self._in_hand = asyncio.ensure_future(self._handle(batch, prepared, taken, ends, generation))
        except asyncio.CancelledError:
            if not self.transport.app.should_stop:
                raise
        except self.consumer_stopped_errors:
            if not self.transport.app.should_stop:
                raise

    async def _handle(
        self,
        batch: list[SourceRecord],
        prepared: Awaitable[Any],
        taken: Mapping[TP, list[Any]],
        ends: Mapping[TP, int],
        generation: int,
    ) -> None:
        await cast(BatchApp, self.app).handle_batch(batch, prepared)
        if self.app.consumer_generation_id == generation:
            self._handled(taken, ends, len(batch))
        if self._n_acked >= (self._commit_every or 0):
            self._n_acked = 0
            await self.commit()

    def _flow_stopped(self) -> bool:
        """Read afresh: faust's rebalance stops the flow while this consumer awaits."""
        return not self.flow_active

    async def _seek_back(self) -> None:
        """Records fetched while the flow was stopped are dropped, the partitions sought back to
        their committed offsets; a seek the rebalance overtakes is left to it, as faust does."""
        try:
            await self.perform_seek()
        except (KafkaError, AssertionError) as exc:  # aiokafka asserts an assignment it may have lost
            self.log.warning(f"seek back to the committed offsets failed, left to the rebalance: {exc!r}")

    def _handled(self, taken: Mapping[TP, list[Any]], ends: Mapping[TP, int], count: int) -> None:
        """Record what the batch covered, and what faust's liveness checks look at: the last read
        offset and inbound time of each partition, and its end offset for the monitor."""
        now = monotonic()
        monitor = self.app.monitor
        for tp, listed in taken.items():
            last = listed[-1].offset
            self._next[tp] = last + 1
            self._read_offset[tp] = last
            monitor.stream_inbound_time[tp] = now
            monitor.track_tp_end_offset(tp, ends[tp])
        self._n_acked += count

    async def _settled(self) -> None:
        """Wait for the batch in hand, however it ends (a failing batch exits the worker itself)."""
        if self._in_hand is not None:
            await asyncio.wait([self._in_hand])

    def _filter_tps_with_pending_acks(self, topics: Iterable[Any] | None = None) -> Iterator[TP]:
        wanted = None if topics is None else set(topics)
        return (tp for tp in list(self._next) if wanted is None or tp in wanted or tp.topic in wanted)

    def _new_offset(self, tp: TP) -> int | None:
        return self._next.get(tp)

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        """Commit what was handled of the revoked partitions before faust forgets them (its own
        consumer drops their acked offsets uncommitted, so their new owner repeats that work). A
        commit begun before the batch in hand was handled is waited out first: it lacks that batch.
        Not while stopping: the consumer's thread no longer takes calls, and the stop commits."""
        if not self.app.should_stop:
            self.stop_flow()
            await self._settled()
            await self.maybe_wait_for_commit_to_finish()
            await self.commit()
        await super().on_partitions_revoked(revoked)
        for tp in revoked:
            self._next.pop(tp, None)

    async def wait_empty(self) -> None:
        """Wait for the batch in hand, then commit what has been handled."""
        await self._settled()
        await self.commit_and_end_transactions()


class BatchTransport(aiokafka_driver.Transport):
    Consumer = BatchConsumer


class BatchApp(faust.App):
    """A faust app whose consumer hands each fetched batch of its topics to `handle_batch`, after
    `prepare_batch` made it ready while the batch before was handled."""

    prepare_batch: Preparer
    handle_batch: BatchHandler
    stopping: threading.Event
    """Set by a stop signal, before faust's own stop waits for the batch in hand: a `prepare`
    blocked on something outside (the schema registry) gives up then, instead of holding the stop."""

    def _new_transport(self) -> BatchTransport:
        return BatchTransport(self.conf.broker_consumer, self)

    def consume(self, topics: Sequence[str], prepare: Preparer, handle: BatchHandler) -> None:
        """Subscribe the group to `topics`, each batch of which goes through `prepare`, then `handle`."""
        self.prepare_batch = prepare
        self.handle_batch = handle
        self.stopping = threading.Event()
        self.topics.add(self.topic(*topics, value_type=bytes, key_type=bytes))
