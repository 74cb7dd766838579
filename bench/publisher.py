"""Benchmark: one agency's outbox publisher, signing and not, against a bare aiokafka producer, in the same run.

All three send the same pre-encoded events with the same producer settings (idempotent, acks=all,
same linger and batch size) to fresh topics of the same shape. The bare producer is the ceiling:
it holds every event in memory, never touches SQLite and awaits acknowledgements only at the end.
The figures that matter are the ratio publisher / bare (target >= 0.7) and the cost of signing
every event (the publisher as it runs, Ed25519 over each record value, against the same publisher
with no signer); absolute rates depend on the machine. Each side runs `--rounds` times on fresh
topics, the order rotating from round to round; the best round of each is compared. On a shared
machine wall-clock rates swing with other load, so the client's own CPU time per event (process
time, which other processes do not inflate) is reported too, as the median over the rounds.

    python bench/publisher.py [--bootstrap-servers HOST:PORT] --scale 20000 --agency dopa

Without `--bootstrap-servers` the run starts a private broker (mTLS, as by default).
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
from local_kafka import clients, kafka, registry_access

from agencies.events import Route, stamp, stamp_bytes
from agencies.outbox import ProducerConfig, Publisher
from agencies.population import Population
from agencies.schema_ids import SchemaIds
from agencies.source import SourceSystem
from agencies.store import AgencyStore
from foundation.schema_registry import SchemaRegistry
from schemas.catalog import load_schema_catalog
from schemas.event_signatures import Signer
from streams.security.signing_keys import SigningKeys
from streams.topic_catalog import load_catalog


def routes_for(agency: str) -> dict[str, Route]:
    return {d.name: Route(d.topic, d.codes[0]) for d in load_catalog().datasets if d.agency == agency}


def population_arguments(parser: argparse.ArgumentParser) -> None:
    """What the benchmarks that load one agency's outbox from a population take on the command line."""
    parser.add_argument("--scale", type=int, default=20_000, help="persons in the population (1,000..1,000,000)")
    parser.add_argument("--agency", default="dopa", choices=("dopa", "dbd", "dol", "dlt"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)


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


async def through_outbox(
    config: ProducerConfig, prefix: str, store: Path, batch_rows: int, signer: Signer | None
) -> tuple[float, float]:
    schemas = SchemaIds(load_schema_catalog(), SchemaRegistry(registry_access()), register=True)
    publisher = Publisher(store, config, schemas, topic_prefix=prefix, signer=signer, batch_rows=batch_rows)
    try:
        start, cpu = time.perf_counter(), time.process_time()
        stats = await publisher.run(until_drained=True)
        elapsed = time.perf_counter() - start, time.process_time() - cpu
    finally:
        publisher.close()
    if stats.backlog:
        raise RuntimeError(f"publisher left {stats.backlog} rows unsent")
    return elapsed


async def main_async(args: argparse.Namespace, bootstrap: str) -> int:
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
        config = ProducerConfig(clients(bootstrap), linger_ms=args.linger_ms, max_batch_size=args.max_batch_size)
        signer = SigningKeys.of(work).signer(args.agency)
        topics = sorted({t for t, _, _ in events})
        sides = ("bare", "unsigned", "signed")
        best = dict.fromkeys(sides, float("inf"))
        cpu: dict[str, list[float]] = {side: [] for side in sides}
        last: dict[str, float] = {}
        for round_ in range(1, args.rounds + 1):
            run = uuid.uuid4().hex[:8]
            prefixes = {side: f"bench-{side}-{run}." for side in sides}
            names = [p + t for p in prefixes.values() for t in topics]
            await create_topics(bootstrap, names, args.partitions)
            order = sides[round_ % 3 :] + sides[: round_ % 3]  # rotate, so no side always runs on a warmer broker
            for side in order:
                if side == "bare":
                    elapsed, used = await bare(config, prefixes[side], events)
                else:
                    copy = work / f"round{round_}-{side}.db"
                    shutil.copyfile(template, copy)
                    chosen = signer if side == "signed" else None
                    elapsed, used = await through_outbox(config, prefixes[side], copy, args.batch_rows, chosen)
                best[side] = min(best[side], elapsed)
                last[side] = elapsed
                cpu[side].append(used)
            print(
                f"round {round_}: "
                + ", ".join(
                    f"{side} {count / last[side]:,.0f} ev/s ({cpu[side][-1] / count * 1e6:.1f} µs CPU/ev)"
                    for side in sides
                ),
                flush=True,
            )
        median = {side: statistics.median(cpu[side]) / count * 1e6 for side in sides}
        print(
            f"events {count:,} ({args.agency}, scale {args.scale:,}), partitions {args.partitions}, "
            f"linger {args.linger_ms} ms, batch {args.max_batch_size} B, acks=all, idempotent"
        )
        for side, label in zip(sides, ("bare producer", "publisher, unsigned", "publisher, signed"), strict=True):
            print(f"{label:<20} {count / best[side]:12,.0f} events/s   {median[side]:6.1f} µs client CPU/event")
        print(f"ratio signed publisher / bare     {best['bare'] / best['signed']:6.2f}  (target >= 0.70)")
        print(f"ratio signed / unsigned publisher {best['unsigned'] / best['signed']:6.2f}  (wall clock, best rounds)")
        print(f"signing costs {median['signed'] - median['unsigned']:.1f} µs client CPU per event (median of rounds)")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap-servers", default=None, help="a running cluster; unset: a private broker")
    population_arguments(parser)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--linger-ms", type=int, default=5)
    parser.add_argument("--max-batch-size", type=int, default=512 * 1024)
    parser.add_argument("--batch-rows", type=int, default=2_000)
    args = parser.parse_args()
    with kafka(args.bootstrap_servers) as bootstrap:
        return asyncio.run(main_async(args, bootstrap))


if __name__ == "__main__":
    sys.exit(main())
