"""Benchmark: one agency's outbox publisher against a bare aiokafka producer, in the same run.

Both send the same pre-encoded events with the same producer settings (idempotent, acks=all, same
linger and batch size) to fresh topics of the same shape. The bare producer is the ceiling: it
holds every event in memory, never touches SQLite and awaits acknowledgements only at the end.
The figure that matters is the ratio publisher / bare (target >= 0.7); absolute rates depend on
the machine. Each side runs `--rounds` times on fresh topics, in alternating order; the best
round of each is compared. On a shared machine wall-clock rates swing with other load, so the
client's own CPU time per event (process time, which other processes do not inflate) is reported
too, as the median over the rounds.

    python bench/publisher.py --bootstrap-servers 127.0.0.1:9092 --scale 20000 --agency dopa
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from aiokafka.admin import NewTopic
from local_kafka import clients

from agencies.events import Route, stamp, stamp_bytes
from agencies.outbox import ProducerConfig, Publisher
from agencies.population import Population
from agencies.schema_announcer import SchemaAnnouncer
from agencies.source import SourceSystem
from agencies.store import AgencyStore
from schemas.catalog import load_schema_catalog
from schemas.schema_records import SCHEMA_TOPIC
from streams.topic_catalog import load_catalog


def routes_for(agency: str) -> dict[str, Route]:
    return {d.name: Route(d.topic, d.codes[0]) for d in load_catalog().datasets if d.agency == agency}


async def create_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    """Create the topics and wait until every partition has a leader, so no run pays for that."""
    admin = clients(bootstrap).admin()
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, partitions, 1) for n in names])
        for _ in range(100):
            described = await admin.describe_topics(names)
            if all(
                t["error_code"] == 0
                and len(t["partitions"]) == partitions
                and all(p["leader"] >= 0 for p in t["partitions"])
                for t in described
            ):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
    finally:
        await admin.close()


async def bare(config: ProducerConfig, prefix: str, events: list[tuple[str, bytes, bytes]]) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) to send every event and have it acknowledged."""
    producer = config.producer()
    await producer.start()
    try:
        start, cpu = time.perf_counter(), time.process_time()
        futures = [await producer.send(prefix + topic, value, key=key) for topic, key, value in events]
        await asyncio.gather(*futures)
        return time.perf_counter() - start, time.process_time() - cpu
    finally:
        await producer.stop()


async def through_outbox(config: ProducerConfig, prefix: str, store: Path, batch_rows: int) -> tuple[float, float]:
    schemas = SchemaAnnouncer(load_schema_catalog(), prefix + SCHEMA_TOPIC)
    publisher = Publisher(store, config, schemas, topic_prefix=prefix, batch_rows=batch_rows)
    try:
        start, cpu = time.perf_counter(), time.process_time()
        stats = await publisher.run(until_drained=True)
        elapsed = time.perf_counter() - start, time.process_time() - cpu
    finally:
        publisher.close()
    if stats.backlog:
        raise RuntimeError(f"publisher left {stats.backlog} rows unsent")
    return elapsed


async def main_async(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="gdx-bench-"))
    try:
        print(f"loading {args.agency} of a {args.scale:,}-person population ...", flush=True)
        population = Population(args.scale, args.seed)
        template = work / "template.db"
        source = SourceSystem(args.agency, template, routes_for(args.agency), load_schema_catalog(), args.seed)
        count = source.load(population.records(args.agency))
        source.close()
        store = AgencyStore(template)
        published = stamp_bytes(int(time.time() * 1000))
        events = [
            (topic, key.encode(), stamp(value, at, published))
            for _, topic, key, value, at, _ in store.pending(0, count + 1)
        ]
        store.close()
        config = ProducerConfig(
            clients(args.bootstrap_servers), linger_ms=args.linger_ms, max_batch_size=args.max_batch_size
        )
        topics = sorted({t for t, _, _ in events})
        best_bare = best_pub = float("inf")
        cpu_bare: list[float] = []
        cpu_pub: list[float] = []
        for round_ in range(1, args.rounds + 1):
            run = uuid.uuid4().hex[:8]
            bare_prefix, pub_prefix = f"bench-bare-{run}.", f"bench-pub-{run}."
            names = [p + t for p in (bare_prefix, pub_prefix) for t in topics] + [pub_prefix + SCHEMA_TOPIC]
            await create_topics(args.bootstrap_servers, names, args.partitions)
            copy = work / f"round{round_}.db"
            shutil.copyfile(template, copy)
            if round_ % 2:
                elapsed_bare, used_bare = await bare(config, bare_prefix, events)
                elapsed_pub, used_pub = await through_outbox(config, pub_prefix, copy, args.batch_rows)
            else:  # alternate the order, so neither side always runs on a warmer broker
                elapsed_pub, used_pub = await through_outbox(config, pub_prefix, copy, args.batch_rows)
                elapsed_bare, used_bare = await bare(config, bare_prefix, events)
            best_bare, best_pub = min(best_bare, elapsed_bare), min(best_pub, elapsed_pub)
            cpu_bare.append(used_bare)
            cpu_pub.append(used_pub)
            print(
                f"round {round_}: bare {count / elapsed_bare:,.0f} ev/s ({used_bare / count * 1e6:.1f} µs CPU/ev), "
                f"publisher {count / elapsed_pub:,.0f} ev/s ({used_pub / count * 1e6:.1f} µs CPU/ev)",
                flush=True,
            )
        ratio = best_bare / best_pub
        cpu_ratio = statistics.median(cpu_bare) / statistics.median(cpu_pub)
        print(
            f"events {count:,} ({args.agency}, scale {args.scale:,}), partitions {args.partitions}, "
            f"linger {args.linger_ms} ms, batch {args.max_batch_size} B, acks=all, idempotent"
        )
        print(f"bare producer  {count / best_bare:12,.0f} events/s")
        print(f"publisher      {count / best_pub:12,.0f} events/s")
        print(f"ratio          {ratio:12.2f}  (target >= 0.70; best wall-clock round of each)")
        print(f"CPU ratio      {cpu_ratio:12.2f}  (bare / publisher client CPU per event, median of rounds)")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--scale", type=int, default=20_000, help="persons in the population (1,000..1,000,000)")
    parser.add_argument("--agency", default="dopa", choices=("dopa", "dbd", "dol", "dlt"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--linger-ms", type=int, default=5)
    parser.add_argument("--max-batch-size", type=int, default=512 * 1024)
    parser.add_argument("--batch-rows", type=int, default=2_000)
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
