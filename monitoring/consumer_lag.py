"""Consumer lag per group and partition, in messages and in seconds, measured from outside the group.

Why from outside: a worker that hangs cannot report its own lag, and lag in seconds — the age of
the oldest message a group has not yet committed — is what the common Kafka exporters do not give.
Lag in seconds here is `now - timestamp of the first record at or after the committed offset`
(the producer's CreateTime, i.e. the publish time), 0 when the group is caught up, and unknown
(None; NaN on the gauge) when that record could not be read — retention took it, or the read timed
out: 0 would say "caught up" of a group that is behind.

One `LagProbe` keeps an admin client and a group-less consumer open across measurements; it never
joins or commits for any group.

Rights: lag in messages needs DESCRIBE only (groups, their offsets, the topics' end offsets) — what
the monitor's principal holds on a secured broker, where reading a record of a change topic is
the worker's alone. Lag in seconds reads one record per lagging partition; when the broker refuses
that read, the probe says so in one log line and goes on measuring lag in messages, with lag in
seconds unknown (None), rather than failing.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from aiokafka import TopicPartition
from aiokafka.errors import TopicAuthorizationFailedError

from foundation.kafka_clients import KafkaClients
from monitoring import metrics

log = logging.getLogger("gdx.lag")


@dataclass(frozen=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    committed: int
    end: int
    lag_seconds: float | None

    @property
    def lag(self) -> int:
        return max(0, self.end - self.committed)


class LagProbe:
    """Measures the lag of every consumer group on the topics whose names start with `topic_prefix`."""

    def __init__(
        self, kafka: KafkaClients, topic_prefix: str, timeout_s: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.topic_prefix = topic_prefix
        self.timeout_s = timeout_s
        self.clock = clock
        self.reads_records = True
        """False once the broker refused to let this principal read a record: lag in messages only."""
        timeout_ms = max(1000, int(timeout_s * 1000))
        self._admin = kafka.admin(request_timeout_ms=timeout_ms)
        self._consumer = kafka.consumer(
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            request_timeout_ms=timeout_ms,
            max_poll_records=1,
        )

    async def __aenter__(self) -> Self:
        try:
            await asyncio.wait_for(self._admin.start(), self.timeout_s)
            await asyncio.wait_for(self._consumer.start(), self.timeout_s)
        except BaseException:
            await self._close()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._close()

    async def _close(self) -> None:
        """Bounded by the probe's timeout: after a read below a partition's log start (retention
        took what a group never consumed) the consumer's stop was seen never to return."""
        with suppress(TimeoutError):
            await asyncio.wait_for(self._consumer.stop(), self.timeout_s)
        await self._admin.close()

    async def _committed(self) -> dict[tuple[str, TopicPartition], int]:
        groups = [str(entry[0]) for entry in await self._admin.list_consumer_groups()]
        committed: dict[tuple[str, TopicPartition], int] = {}
        for group in sorted(groups):
            offsets = await self._admin.list_consumer_group_offsets(group)
            for tp, meta in offsets.items():
                if tp.topic.startswith(self.topic_prefix) and meta.offset >= 0:
                    committed[(group, tp)] = meta.offset
        return committed

    async def _oldest_unconsumed(self, positions: dict[TopicPartition, int]) -> dict[TopicPartition, float]:
        """The timestamp (s) of the first record at or after each position, read without a group."""
        if not positions:
            return {}
        self._consumer.assign(list(positions))
        try:
            for tp, offset in positions.items():
                self._consumer.seek(tp, offset)
            found: dict[TopicPartition, float] = {}
            deadline = time.monotonic() + self.timeout_s
            while len(found) < len(positions) and time.monotonic() < deadline:
                batches = await self._consumer.getmany(timeout_ms=200)
                for tp, records in batches.items():
                    if records and tp not in found:
                        found[tp] = records[0].timestamp / 1000.0
                        self._consumer.pause(tp)
        finally:
            self._consumer.assign([])
        return found

    async def measure(self) -> list[PartitionLag]:
        committed = await self._committed()
        partitions = sorted({tp for _, tp in committed}, key=lambda tp: (tp.topic, tp.partition))
        ends = await self._consumer.end_offsets(partitions) if partitions else {}
        lagging = {(tp, offset) for (_, tp), offset in committed.items() if offset < ends[tp]}
        stamps = await self._stamps(lagging) if self.reads_records else {}
        now = self.clock()
        lags = []
        for (group, tp), offset in committed.items():
            stamp = stamps.get((tp, offset))
            lag_seconds = 0.0 if offset >= ends[tp] else None if stamp is None else max(0.0, now - stamp)
            lags.append(PartitionLag(group, tp.topic, tp.partition, offset, ends[tp], lag_seconds))
        return sorted(lags, key=lambda lag: (lag.group, lag.topic, lag.partition))

    async def _stamps(self, wanted: set[tuple[TopicPartition, int]]) -> dict[tuple[TopicPartition, int], float]:
        """Timestamps at each (partition, offset); groups at different offsets of one partition
        take one read round each."""
        stamps: dict[tuple[TopicPartition, int], float] = {}
        try:
            return await self._read_stamps(wanted, stamps)
        except TopicAuthorizationFailedError as exc:
            self.reads_records = False
            log.warning(
                "lag in seconds unavailable: this principal may not read records (%s); measuring lag in messages only",
                exc,
            )
            return stamps

    async def _read_stamps(
        self, wanted: set[tuple[TopicPartition, int]], stamps: dict[tuple[TopicPartition, int], float]
    ) -> dict[tuple[TopicPartition, int], float]:
        pending = sorted(wanted, key=lambda pair: (pair[0].topic, pair[0].partition, pair[1]))
        while pending:
            round_: dict[TopicPartition, int] = {}
            for tp, offset in pending:
                round_.setdefault(tp, offset)
            found = await self._oldest_unconsumed(round_)
            stamps.update({(tp, offset): found[tp] for tp, offset in round_.items() if tp in found})
            pending = [pair for pair in pending if round_.get(pair[0]) != pair[1]]
        return stamps


class LagGauges:
    """Writes measurements to the lag gauges, removing the series of partitions no longer measured."""

    def __init__(self) -> None:
        self._shown: set[tuple[str, str, str]] = set()

    def publish(self, lags: list[PartitionLag]) -> None:
        current = set()
        for lag in lags:
            labels = (lag.group, lag.topic, str(lag.partition))
            metrics.CONSUMER_LAG_OFFSETS.labels(*labels).set(lag.lag)
            metrics.CONSUMER_LAG_SECONDS.labels(*labels).set(math.nan if lag.lag_seconds is None else lag.lag_seconds)
            current.add(labels)
        for labels in self._shown - current:
            metrics.CONSUMER_LAG_OFFSETS.remove(*labels)
            metrics.CONSUMER_LAG_SECONDS.remove(*labels)
        self._shown = current
