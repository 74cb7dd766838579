"""What a stream worker does with each batch, apart from Kafka consumption itself.

Order matters for at-least-once: the index transaction commits first (queuing the batch's
notices in the outbox), then dead letters and queued notices are sent and acknowledged by the
broker, and only then does the caller let the batch's offsets be committed. A crash anywhere
before that re-delivers the batch, which the index recognises (duplicates) and the sinks tolerate
(a dead letter or notice may repeat, never vanish). A notice is also a disclosure: it passes the
lookup policy and is audited before it is sent (`linkage.notices`); while the audit cannot take
it, it stays in the outbox and the offsets go on, the outbox being what keeps it.

No valid input stops the worker: a batch the index refuses for a reason that is not transient is
split in halves until the record it cannot take is found; that record is dead-lettered with the
error, and the rest is applied. A transient refusal (connection lost, lock timeout, serialization
failure) is retried for as long as it lasts, counted, and shown in the worker's `/readyz`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from foundation.redaction import redact_ids
from linkage.audit import AuditUnavailable
from linkage.database import CONTENTION, error_text, refuses_the_data, transient_reason
from linkage.index_store import now_ms
from linkage.notices import NoticePolicy
from monitoring import metrics
from monitoring.health_server import Readiness
from streams.pipeline import METRIC_REASON, Pipeline, PipelineResult, Prepared, SourceRecord

log = logging.getLogger("gdx.worker")
RETRY_DELAYS_S = (0.2, 0.5, 1.0, 2.0, 5.0)
CONTENTION_DELAY_S = 0.05
CONTENTION_PATIENCE = 5
"""Contention is normal when workers share an index: it is retried at once, after a short random
pause so the two transactions do not meet again, and only a run of this many attempts shows in
/readyz."""


class Sink(Protocol):
    """Where the worker writes: a Kafka producer (idempotent, acks=all) in production."""

    async def send(
        self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes | None]]
    ) -> None: ...


class AuditLog(Protocol):
    """Where notices are put on the record: the worker's own chain of gdx.audit in production."""

    async def append(self, entry: dict[str, Any]) -> tuple[int, int]: ...


@dataclass(frozen=True)
class Notifier:
    """What sending a notice takes: its consumer's topic, the policy it passes, the audit it enters."""

    topics: dict[str, str]  # consumer -> gdx.notify.<consumer>
    policy: NoticePolicy
    audit: AuditLog


class WorkerCore:
    def __init__(
        self,
        pipeline: Pipeline,
        sink: Sink,
        dead_letter_topics: dict[str, str],
        notifier: Notifier,
        readiness: Readiness | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.sink = sink
        self.dead_letter_topics = dead_letter_topics
        self.notifier = notifier
        self.readiness = readiness or Readiness()
        self._sending = asyncio.Lock()  # the batch and the retry timer must not send one queued notice twice

    async def handle(self, records: Sequence[SourceRecord], prepared: Prepared | None = None) -> PipelineResult:
        """`prepared`: the records already through Pipeline.prepare (the batch consumer prepares one
        batch while the index applies the one before)."""
        result = await self._process(records, prepared)
        await asyncio.gather(
            *(
                self.sink.send(
                    self.dead_letter_topics[dead.record.topic],
                    dead.record.key,
                    dead.record.value or b"",
                    dead.headers(),
                )
                for dead in result.dead_letters
            )
        )
        if result.batch.notifications:
            await self.send_notifications()
        self._count(records, result)
        return result

    async def _process(self, records: Sequence[SourceRecord], prepared: Prepared | None = None) -> PipelineResult:
        """Bisect a batch whose data the index refuses: each half is its own transaction, the first
        half before the second, so every partition's order holds and about log2(batch) attempts find
        the record. Any other failure stops the worker (the batch is re-delivered), loudly."""
        try:
            if prepared is None:
                prepared = await asyncio.to_thread(self.pipeline.prepare, records)
            return await self._apply_with_retries(prepared)
        except Exception as exc:
            if not refuses_the_data(exc):
                raise
            if len(records) == 1:
                detail = error_text(exc)  # the dead letter keeps it whole: its topic is the operators' alone
                log.warning("the index refused a record; dead-lettering it", extra={"error": redact_ids(detail)[:300]})
                return self.pipeline.refused(records[0], detail)
            middle = len(records) // 2
            result = await self._process(records[:middle])
            result.extend(await self._process(records[middle:]))
            return result

    async def _apply_with_retries(self, prepared: Prepared) -> PipelineResult:
        """An index that is briefly unavailable delays the batch for as long as it lasts; it never drops it."""
        attempt = 0
        while True:
            try:
                result = await asyncio.to_thread(self.pipeline.apply, prepared)
            except Exception as exc:
                reason = transient_reason(exc)
                if reason is None:
                    raise
                metrics.INDEX_WRITE_RETRIES.labels(reason=reason).inc()
                attempt += 1
                detail = redact_ids(error_text(exc))
                if reason != CONTENTION or attempt >= CONTENTION_PATIENCE:
                    self.readiness.set_not_ready("index", f"index write failed ({reason}), retrying: {detail[:200]}")
                    log.warning("index write failed, retrying", extra={"attempt": attempt, "error": detail[:300]})
                await asyncio.sleep(
                    random.uniform(0, min(CONTENTION_DELAY_S * attempt, RETRY_DELAYS_S[-1]))
                    if reason == CONTENTION
                    else RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S)) - 1]
                )
            else:
                self.readiness.set_ready("index")
                return result

    async def send_notifications(self) -> int:
        """Send the queued notices: each decided under its purpose and audited before it is sent,
        then entered in its subject's access log as it leaves the outbox. While the audit cannot
        take them they stay queued (the worker not ready, the retry timer trying again) and the
        index goes on; a notice the broker refuses fails the batch, as a dead letter does."""
        sent = 0
        async with self._sending:
            while queued := await asyncio.to_thread(self.pipeline.store.notifications):
                decided = await asyncio.to_thread(self.notifier.policy.decide_all, [row[3] for row in queued], now_ms())
                try:
                    written = await asyncio.gather(*(self.notifier.audit.append(d.entry) for d in decided))
                except AuditUnavailable as exc:
                    self.readiness.set_not_ready("notifications", f"{len(queued)}+ notices held in the outbox: {exc}")
                    return sent
                allowed = [(row, d.message) for row, d in zip(queued, decided, strict=True) if d.message is not None]
                await asyncio.gather(
                    *(
                        self.sink.send(self.notifier.topics[consumer], key.encode(), message, [])
                        for (_, consumer, key, _), message in allowed
                    )
                )
                forgotten = [(row[0], d.access_row(w)) for row, d, w in zip(queued, decided, written, strict=True)]
                await asyncio.to_thread(self.pipeline.store.forget_notifications, forgotten)
                sent += len(allowed)
            self.readiness.set_ready("notifications")
        return sent

    def _count(self, records: Sequence[SourceRecord], result: PipelineResult) -> None:
        """Counted per batch and label set: a labelled child's lookup costs more than the count itself."""
        outcomes = Counter(
            (self.pipeline.topic_datasets[r.topic], o) for r, o in zip(records, result.outcomes, strict=True)
        )
        for (dataset_name, outcome), count in outcomes.items():
            agency, dataset = dataset_name.split(".", 1)
            metrics.EVENTS_CONSUMED.labels(agency=agency, dataset=dataset).inc(count)
            if outcome == "duplicate":
                metrics.EVENTS_DUPLICATE.labels(agency=agency, dataset=dataset).inc(count)
            elif outcome == "stale":
                metrics.EVENTS_STALE.labels(agency=agency, dataset=dataset).inc(count)
        for (dataset_name, reason), count in Counter(
            (d.dataset, METRIC_REASON[d.reason]) for d in result.dead_letters
        ).items():
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
            log.info(
                "dead-lettered",
                extra={"count": len(result.dead_letters), "reasons": sorted({d.reason for d in result.dead_letters})},
            )

    def publish_pending_links(self) -> None:
        pending = self.pipeline.store.pending_links()
        now = now_ms()
        for dataset in self.pipeline.topic_datasets.values():
            agency, name = dataset.split(".", 1)
            count, oldest = pending.get(dataset, (0, now))
            metrics.PENDING_LINKS.labels(agency=agency, dataset=name).set(count)
            metrics.PENDING_LINK_OLDEST_AGE.labels(agency=agency, dataset=name).set(max(0, now - oldest) / 1000)
