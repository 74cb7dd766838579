"""Consumer lag per group and partition, in messages and in seconds, measured from outside the group.

Why from outside: a worker that hangs cannot report its own lag, and lag in seconds — the age of
the oldest message a group has not yet committed — is what the common Kafka exporters do not give.
Lag in seconds here is `now - timestamp of the record at the committed offset` (the producer's
CreateTime, i.e. the publish time), 0 when the group is caught up, and unknown (None; NaN on the
gauge) when no record is there any more — retention took it — or the broker did not answer in
time: 0 would say "caught up" of a group that is behind.

Rights: everything here needs DESCRIBE only (groups, their offsets, the topics' offsets), which is
all the monitor's principal holds on a secured broker: reading a record of a change topic is the
worker's alone, and would hand the monitor citizens' data. So the timestamp is not read from the
record but found in the broker's time index: ListOffsets by time answers "the first offset whose
timestamp is at or after T, and its timestamp", and a binary search over T finds the latest T
whose answer is still at or before the committed offset, whose timestamp is the record's own
(with timestamps that do not rise along the partition, the broker's time index keeps their
running maximum, and so does this answer). About 40 ListOffsets round trips per measurement,
each for every lagging partition at once.

One `LagProbe` keeps an admin client and a group-less consumer open across measurements; it never
joins or commits for any group.
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

from foundation.kafka_clients import KafkaClients
from monitoring import metrics

log = logging.getLogger("gdx.lag")

SEARCH_AHEAD_MS = 86_400_000
"""How far past now the search for a timestamp reaches: a producer's clock may run ahead."""


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
        timeout_ms = max(1000, int(timeout_s * 1000))
        self._admin = kafka.admin(request_timeout_ms=timeout_ms)
        self._consumer = kafka.consumer(
            group_id=None,
            enable_auto_commit=False,
            request_timeout_ms=timeout_ms,
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
        """Bounded by the probe's timeout, so a broker that stopped answering cannot hold the
        monitor's shutdown."""
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

    async def measure(self) -> list[PartitionLag]:
        committed = await self._committed()
        partitions = sorted({tp for _, tp in committed}, key=lambda tp: (tp.topic, tp.partition))
        ends = await self._consumer.end_offsets(partitions) if partitions else {}
        lagging = {(tp, offset) for (_, tp), offset in committed.items() if offset < ends[tp]}
        stamps = await self._stamps(lagging)
        now = self.clock()
        lags = []
        for (group, tp), offset in committed.items():
            stamp = stamps.get((tp, offset))
            lag_seconds = 0.0 if offset >= ends[tp] else None if stamp is None else max(0.0, now - stamp)
            lags.append(PartitionLag(group, tp.topic, tp.partition, offset, ends[tp], lag_seconds))
        return sorted(lags, key=lambda lag: (lag.group, lag.topic, lag.partition))

    async def _stamps(self, wanted: set[tuple[TopicPartition, int]]) -> dict[tuple[TopicPartition, int], float]:
        """Timestamps at each (partition, offset); groups at different offsets of one partition
        take one search each."""
        stamps: dict[tuple[TopicPartition, int], float] = {}
        pending = sorted(wanted, key=lambda pair: (pair[0].topic, pair[0].partition, pair[1]))
        while pending:
            round_: dict[TopicPartition, int] = {}
            for tp, offset in pending:
                round_.setdefault(tp, offset)
            try:
                found = await asyncio.wait_for(self._search(round_), self.timeout_s)
            except TimeoutError:
                found = {}
            stamps.update({(tp, offset): found[tp] for tp, offset in round_.items() if tp in found})
            pending = [pair for pair in pending if round_.get(pair[0]) != pair[1]]
        return stamps

    async def _at_or_after(self, times: dict[TopicPartition, int]) -> dict[TopicPartition, tuple[float, int]]:
        """(offset, timestamp ms) of the first record at or after each time; none: offset infinite."""
        answers = await self._consumer.offsets_for_times(dict(times))
        return {
            tp: (math.inf, 0) if answer is None else (answer.offset, answer.timestamp) for tp, answer in answers.items()
        }

    async def _search(self, positions: dict[TopicPartition, int]) -> dict[TopicPartition, float]:
        """The timestamp (s) of the record at each position, by binary search over the time index.

        Invariant per partition: the answer at `low` is at or before the position (its timestamp
        is the best found), the answer at `high` is past it."""
        first = await self._at_or_after(dict.fromkeys(positions, 0))
        low = {tp: stamp for tp, (offset, stamp) in first.items() if offset <= positions[tp]}
        best = dict(low)
        high = dict.fromkeys(low, int(self.clock() * 1000) + SEARCH_AHEAD_MS)
        while searching := {tp: (low[tp] + high[tp]) // 2 for tp in low if high[tp] - low[tp] > 1}:
            for tp, (offset, stamp) in (await self._at_or_after(searching)).items():
                if offset <= positions[tp]:
                    low[tp], best[tp] = searching[tp], stamp
                else:
                    high[tp] = searching[tp]
        return {tp: stamp / 1000.0 for tp, stamp in best.items()}


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
