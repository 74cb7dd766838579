"""What a stream worker does with each batch, apart from Kafka consumption itself.

Order matters for at-least-once: the index transaction commits first, then dead letters and
queued notifications are sent and acknowledged by the broker, and only then does the caller let
the batch's offsets be committed. A crash anywhere before that re-delivers the batch, which the
index recognises (duplicates) and the sinks tolerate (a dead letter or notice may repeat, never
vanish).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence
from typing import Protocol

from sqlalchemy.exc import OperationalError

from linkage.index_store import now_ms
from monitoring import metrics
from streams.pipeline import METRIC_REASON, Pipeline, PipelineResult, SourceRecord

log = logging.getLogger("gdx.worker")
RETRY_DELAYS_S = (0.2, 0.5, 1.0, 2.0, 5.0)


class Sink(Protocol):
    """Where the worker writes: a Kafka producer (idempotent, acks=all) in production."""

    async def send(self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None: ...


class WorkerCore:
    def __init__(self, pipeline: Pipeline, sink: Sink, dead_letter_topics: dict[str, str],
                 notify_topics: dict[str, str]) -> None:
        self.pipeline = pipeline
        self.sink = sink
        self.dead_letter_topics = dead_letter_topics
        self.notify_topics = notify_topics

    async def handle(self, records: Sequence[SourceRecord]) -> PipelineResult:
        result = await self._process_with_retries(records)
        await asyncio.gather(*(
            self.sink.send(self.dead_letter_topics[dead.record.topic], dead.record.key, dead.record.value or b"",
                           dead.headers())
            for dead in result.dead_letters
        ))
        if result.batch.notifications:
            await self.send_notifications()
        self._count(records, result)
        return result

    async def _process_with_retries(self, records: Sequence[SourceRecord]) -> PipelineResult:
        """A database that is briefly unavailable delays the batch; it never drops it."""
        for attempt, delay in enumerate((*RETRY_DELAYS_S, None)):
            try:
                return await asyncio.to_thread(self.pipeline.process, records)
            except OperationalError as exc:
                if delay is None:
                    raise
                log.warning("index write failed, retrying", extra={"attempt": attempt + 1, "error": str(exc)[:300]})
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def send_notifications(self) -> int:
        sent = 0
        while queued := await asyncio.to_thread(self.pipeline.store.notifications):
            await asyncio.gather(*(
                self.sink.send(self.notify_topics[consumer], key.encode(), message.encode(), [])
                for _, consumer, key, message in queued
            ))
            await asyncio.to_thread(self.pipeline.store.forget_notifications, [row[0] for row in queued])
            sent += len(queued)
        return sent

    def _count(self, records: Sequence[SourceRecord], result: PipelineResult) -> None:
        """Counted per batch and label set: a labelled child's lookup costs more than the count itself."""
        outcomes = Counter((self.pipeline.topic_datasets[r.topic], o) for r, o in zip(records, result.outcomes))
        for (dataset_name, outcome), count in outcomes.items():
            agency, dataset = dataset_name.split(".", 1)
            metrics.EVENTS_CONSUMED.labels(agency=agency, dataset=dataset).inc(count)
            if outcome == "duplicate":
                metrics.EVENTS_DUPLICATE.labels(agency=agency, dataset=dataset).inc(count)
            elif outcome == "stale":
                metrics.EVENTS_STALE.labels(agency=agency, dataset=dataset).inc(count)
        for (dataset_name, reason), count in Counter((d.dataset, METRIC_REASON[d.reason]) for d in result.dead_letters).items():
            agency, dataset = dataset_name.split(".", 1)
            metrics.EVENTS_DEAD_LETTERED.labels(agency=agency, dataset=dataset, reason=reason).inc(count)
        applied = result.batch.applied_ms
        freshness: dict[str, list[float]] = {}
        for event in result.batch.applied:
            freshness.setdefault(event.dataset, []).append(max(0, applied - event.source_ms) / 1000)
        for dataset_name, ages in freshness.items():
            agency, dataset = dataset_name.split(".", 1)
            metrics.EVENTS_APPLIED.labels(agency=agency, dataset=dataset).inc(len(ages))
            histogram = metrics.FRESHNESS.labels(agency=agency, dataset=dataset)
            for age in ages:
                histogram.observe(age)
        if result.dead_letters:
            log.info("dead-lettered", extra={"count": len(result.dead_letters),
                                             "reasons": sorted({d.reason for d in result.dead_letters})})

    def publish_pending_links(self) -> None:
        pending = self.pipeline.store.pending_links()
        now = now_ms()
        for dataset in self.pipeline.topic_datasets.values():
            agency, name = dataset.split(".", 1)
            count, oldest = pending.get(dataset, (0, now))
            metrics.PENDING_LINKS.labels(agency=agency, dataset=name).set(count)
            metrics.PENDING_LINK_OLDEST_AGE.labels(agency=agency, dataset=name).set(max(0, now - oldest) / 1000)

