"""Benchmark: the initial load of a population into the four agency stores, time and peak memory.

Generates the seeded population, encodes every entity as a SNAPSHOT event with the schemas codec
and writes entities and outbox rows to SQLite, exactly as `gdx simulate` does before publishing.
Peak memory is the process's maximum resident set size (so it includes the interpreter and the
imported libraries); its growth with scale is what shows whether the load streams.

    python bench/initial_load.py --scale 1000000
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from agencies.population import AGENCIES
from agencies.simulation import Plan, Simulation, store_path
from agencies.store import AgencyStore
from schemas.catalog import load_schema_catalog
from streams.commands.agencies import routes


def peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=int, default=100_000, help="persons (1,000..1,000,000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--store-dir", type=Path, default=None, help="keep the stores here (default: a temporary directory)"
    )
    parser.add_argument("--workers", type=int, default=1, help="load processes (as `gdx simulate --load-workers`)")
    args = parser.parse_args()
    work = args.store_dir or Path(tempfile.mkdtemp(prefix="gdx-load-"))
    try:
        baseline = peak_rss_mb()
        plan = Plan(work, scale=args.scale, seed=args.seed, reset=True, load_workers=args.workers)
        simulation = Simulation(plan, routes(), load_schema_catalog())
        start = time.perf_counter()
        simulation.open()
        try:
            simulation.initial_load()
        finally:
            simulation.close()
        elapsed = time.perf_counter() - start
        print()
        total_entities = total_events = 0
        for agency in AGENCIES:
            path = store_path(work, agency)
            store = AgencyStore(path)
            entities, events = store.count(), store.last_seq()
            store.close()
            total_entities += entities
            total_events += events
            size = sum(p.stat().st_size for p in path.parent.glob(f"{path.name}*")) / 2**20
            print(f"{agency:>5}: {entities:>10,} entities {events:>10,} outbox events {size:>8,.0f} MiB on disk")
        print(
            f"scale {args.scale:,} persons: {total_entities:,} entities / {total_events:,} events "
            f"in {elapsed:,.1f} s ({total_events / elapsed:,.0f} events/s) with {args.workers} worker(s)"
        )
        print(f"peak RSS {peak_rss_mb():,.0f} MiB (interpreter and imports before the load: {baseline:,.0f} MiB)")
        if args.workers > 1:
            print(f"largest worker process peak RSS {peak_rss_mb(resource.RUSAGE_CHILDREN):,.0f} MiB")
        return 0
    finally:
        if args.store_dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
