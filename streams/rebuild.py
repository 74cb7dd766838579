"""Rebuilding the linkage index by replaying every change topic from the beginning.

The replay goes through the same Pipeline as the live worker, so the rebuilt index is what the
worker would have built; it sends no dead letters (the live worker already did) and queues no
notifications (consumers were told once). It reads each partition up to the end offset it saw
when it started, so it finishes even while agencies keep publishing. Each batch is prepared while
the one before is in the index, as the worker does. Pending links are found once, at the end,
rather than re-examined batch by batch (about 14% of a replay's time).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import Engine

from foundation.kafka_clients import KafkaClients
from linkage import pending_links
from linkage.index_store import MAX_VERSION_JUMP, IndexStore
from schemas.catalog import load_schema_catalog
from schemas.codec import SchemaById
from streams.kafka_probe import topic_partitions
from streams.pipeline import Pipeline, PipelineResult, SourceRecord, Verifier


@dataclass
class ReplayReport:
    records: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


async def replay(
    engine: Engine,
    kafka: KafkaClients,
    topic_datasets: dict[str, str],
    verifier: Verifier,
    schema_by_id: SchemaById,
    batch_size: int = 2000,
    progress: bool = True,
    max_version_jump: int = MAX_VERSION_JUMP,
) -> ReplayReport:
    """Every event of the topics through the worker's pipeline, its checks (signatures, the
    version leap) included: a rebuild keeps out what the worker kept out."""
    store = IndexStore(engine, track_pending=False, max_version_jump=max_version_jump)
    pipeline = Pipeline(load_schema_catalog(), store, topic_datasets, verifier, schema_by_id)
    consumer = kafka.consumer(
        enable_auto_commit=False, auto_offset_reset="earliest", max_partition_fetch_bytes=4 * 1024 * 1024
    )
    await consumer.start()
    report = ReplayReport()
    applying: asyncio.Future[PipelineResult] | None = None  # the batch before, in the index meanwhile
    began = last_print = time.monotonic()
    try:
        partitions = await topic_partitions(kafka, list(topic_datasets))
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if ends[tp] > 0}
        total = sum(ends.values())
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1000, max_records=batch_size)
            batch: list[SourceRecord] = []
            for tp, messages in batches.items():
                for m in messages:
                    if m.offset < ends[tp]:
                        batch.append(
                            SourceRecord(m.topic, m.partition, m.offset, m.key, m.value, tuple(m.headers), m.timestamp)
                        )
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
            if batch:
                prepared = await asyncio.to_thread(pipeline.prepare, batch)
                if applying is not None:
                    report.outcomes.update((await applying).outcomes)
                applying = asyncio.ensure_future(asyncio.to_thread(pipeline.apply, prepared))
                report.records += len(batch)
            if progress and time.monotonic() - last_print >= 1.0:
                last_print = time.monotonic()
                rate = report.records / (last_print - began)
                print(
                    f"\rreplayed {report.records:,}/{total:,} records ({rate:,.0f}/s)",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )
        if applying is not None:
            report.outcomes.update((await applying).outcomes)
    finally:
        if applying is not None and not applying.done():  # a failure elsewhere: the thread runs on
            await asyncio.wait([applying])
        await consumer.stop()
    with engine.begin() as conn:
        pending_links.recompute(conn)
    report.seconds = time.monotonic() - began
    if progress:
        print(
            f"\rreplayed {report.records:,} records in {report.seconds:.1f} s ({report.rate:,.0f}/s)",
            file=sys.stderr,
            flush=True,
        )
    return report
