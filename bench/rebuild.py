"""Benchmark: the rebuild rate — `gdx index rebuild`'s replay of every change topic into an empty
index — against a bare aiokafka consumer and a consumer that only decodes, reading the same topics
in the same run; and the peak resident memory of the rebuilding process.

It replays a population already published under a topic prefix (for a million persons, publish it
once: `GDX_TOPIC_PREFIX=m1. gdx simulate --scale 1000000 --count 0`, about 15 minutes), so the
figure is the replay alone; or, with --scale and no --bootstrap-servers, it starts a private broker
and publishes that population first. The rebuilt index goes to a temporary SQLite file unless
--index-url.

    python bench/rebuild.py --bootstrap-servers 127.0.0.1:9092 --topic-prefix m1.
    python bench/rebuild.py --scale 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from index_throughput import bare_read, gdx_env, publish_initial_load
from local_kafka import kafka, registry_codec, registry_schemas

from linkage.database import index_engine
from linkage.digest import index_digest
from linkage.migrate import drop_all, upgrade
from streams.kafka_probe import topic_partitions
from streams.rebuild import replay
from streams.settings import Settings
from streams.signature_check import signature_check
from streams.topic_admin import apply_topics
from streams.topic_catalog import load_catalog


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap-servers", default=None, help="default: a private broker, given --scale")
    parser.add_argument("--topic-prefix", default=None, help="the prefix the population was published under")
    parser.add_argument("--scale", type=int, default=None, help="persons to publish first, on a private broker")
    parser.add_argument("--index-url", default=None, help="default: SQLite in a temporary directory")
    args = parser.parse_args()
    published = args.bootstrap_servers is not None and args.topic_prefix is not None and args.scale is None
    private = args.bootstrap_servers is None and args.topic_prefix is None and args.scale is not None
    if not (published or private):
        parser.error("give --bootstrap-servers with --topic-prefix (a published population), or --scale alone")
    with kafka(args.bootstrap_servers) as bootstrap, tempfile.TemporaryDirectory(prefix="gdx-bench-rebuild-") as tmp:
        if args.topic_prefix is not None:
            settings = Settings(kafka_bootstrap_servers=bootstrap, topic_prefix=args.topic_prefix)
        else:  # the agencies' keys and the trust list in the run's own state
            settings = Settings(
                kafka_bootstrap_servers=bootstrap, topic_prefix=f"r{uuid.uuid4().hex[:8]}.", state_dir=Path(tmp)
            )
            publish(settings, bootstrap, args.scale)
        topic_datasets = {settings.topic(d.topic): f"{d.agency}.{d.name}" for d in load_catalog().datasets}
        engine = index_engine(args.index_url or f"sqlite:///{Path(tmp) / 'index.db'}")
        tps = asyncio.run(topic_partitions(settings.kafka, list(topic_datasets)))
        count, seconds, _ = asyncio.run(bare_read(settings.kafka, tps))
        bare = count / seconds
        print(f"bare aiokafka consumer: {count:,} records in {seconds:.1f} s ({bare:,.0f}/s)", flush=True)
        count, seconds, _ = asyncio.run(bare_read(settings.kafka, tps, codec=registry_codec()))
        decoding = count / seconds
        print(f"decoding consumer: {count:,} records in {seconds:.1f} s ({decoding:,.0f}/s)", flush=True)
        drop_all(engine)
        upgrade(engine)
        began = time.monotonic()
        report = asyncio.run(
            replay(engine, settings.kafka, topic_datasets, signature_check(settings), registry_schemas())
        )
        digest, held, links = index_digest(engine)
        print(
            f"rebuild: {report.records:,} records in {time.monotonic() - began:.0f} s — {report.rate:,.0f} "
            f"records/s, ratio {report.rate / decoding:.3f} of the decoding consumer, {report.rate / bare:.3f} "
            "of the bare consumer"
        )
        print(
            f"outcomes: {dict(sorted(report.outcomes.items()))}; "
            f"index {held:,} records, {links:,} links, digest {digest}"
        )
        print(
            f"peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB in this process "
            "(the rebuild), "
            f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MiB in the largest child"
        )
    return 0


def publish(settings: Settings, bootstrap: str, scale: int) -> None:
    """The initial load of `scale` persons on the catalog's topics under the settings' prefix."""
    apply_topics(settings, load_catalog())
    state = settings.state_dir
    publish_initial_load(
        gdx_env(bootstrap, settings.topic_prefix, state, f"sqlite:///{state / 'unused.db'}"), state, scale
    )


if __name__ == "__main__":
    sys.exit(main())
