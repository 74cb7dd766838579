"""Benchmark: the rebuild rate — `gdx index rebuild`'s replay of every change topic into an empty
index — against a bare aiokafka consumer reading the same topics in the same run.

It replays a population already published under a topic prefix (for a million persons, publish it
once: `GDX_TOPIC_PREFIX=m1. gdx simulate --scale 1000000 --count 0`, about 15 minutes), so the
figure is the replay alone. The rebuilt index goes to a temporary SQLite file unless --index-url.

    python bench/rebuild.py --bootstrap-servers 127.0.0.1:9092 --topic-prefix m1.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from index_throughput import bare_read
from local_kafka import registry_schemas

from linkage.database import index_engine
from linkage.digest import index_digest
from linkage.migrate import drop_all, upgrade
from streams.kafka_probe import topic_partitions
from streams.rebuild import replay
from streams.settings import Settings
from streams.signature_check import signature_check
from streams.topic_catalog import load_catalog


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--topic-prefix", required=True, help="the prefix the population was published under")
    parser.add_argument("--index-url", default=None, help="default: SQLite in a temporary directory")
    args = parser.parse_args()
    settings = Settings(kafka_bootstrap_servers=args.bootstrap_servers, topic_prefix=args.topic_prefix)
    topic_datasets = {settings.topic(d.topic): f"{d.agency}.{d.name}" for d in load_catalog().datasets}
    with tempfile.TemporaryDirectory(prefix="gdx-bench-rebuild-") as tmp:
        engine = index_engine(args.index_url or f"sqlite:///{Path(tmp) / 'index.db'}")
        tps = asyncio.run(topic_partitions(settings.kafka, list(topic_datasets)))
        count, seconds, _ = asyncio.run(bare_read(settings.kafka, tps))
        bare = count / seconds
        print(f"bare aiokafka consumer: {count:,} records in {seconds:.1f} s ({bare:,.0f}/s)", flush=True)
        drop_all(engine)
        upgrade(engine)
        began = time.monotonic()
        report = asyncio.run(
            replay(engine, settings.kafka, topic_datasets, signature_check(settings), registry_schemas())
        )
        digest, held, links = index_digest(engine)
        print(
            f"rebuild: {report.records:,} records in "
            f"{time.monotonic() - began:.0f} s — {report.rate:,.0f} records/s, ratio {report.rate / bare:.3f} "
            f"of the bare consumer"
        )
        print(
            f"outcomes: {dict(sorted(report.outcomes.items()))}; "
            f"index {held:,} records, {links:,} links, digest {digest}"
        )
        print(
            f"peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB in this process, "
            f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MiB in the largest child"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
