"""Benchmark: what mutual TLS costs the exchange's Kafka traffic, against plaintext, in one run.

Two private single brokers are started side by side — one plaintext, one with
GDX_KAFKA_SECURITY=mtls, reached as gdx-operator (a superuser, so no ACLs are needed) — and each
round, on fresh topics made by `topics apply` under a new prefix, measures against both:

  publish   one agency's outbox publisher (bench/publisher.py's `through_outbox`, the same outbox
            content copied from one template), events/s acknowledged;
  read      a consumer reading those topics to their end and decoding every value (the least the
            worker does per event: the cost it pays for TLS on fetch), events/s;
  pipeline  the replay into a fresh SQLite index (streams.rebuild.replay, the worker's own
            pipeline), events/s  (skip with --no-pipeline).

The two brokers alternate which goes first in every phase, so machine noise hits both alike. Each
phase also reports the client's CPU per event (process time, which other processes do not
inflate) and the broker JVM's CPU per event (from /proc), which is where TLS record encryption
and the loss of zero-copy sendfile on fetch show up. The figure that matters is the median over
the rounds of secured / plaintext (the issue's target: at most 15% lower rate secured, >= 0.85);
on a shared, busy machine wall-clock rounds swing with other load, so the same ratio is also
given from the CPU per event (client + broker), which that load inflates far less.

    python bench/security_cost.py [--scale 20000] [--agency dopa] [--rounds 3] [--no-pipeline]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from aiokafka import TopicPartition
from sqlalchemy.engine import Engine

sys.path.insert(0, str(Path(__file__).parent))
from index_throughput import bare_read
from local_kafka import registry, registry_codec, registry_schemas
from publisher import population_arguments, routes_for, through_outbox

from agencies.outbox import ProducerConfig
from agencies.population import Population
from agencies.source import SourceSystem
from foundation.kafka_clients import KafkaClients
from foundation.ports import free_port_block
from linkage.database import index_engine
from linkage.migrate import drop_all, upgrade
from schemas.catalog import load_schema_catalog
from schemas.codec import Codec
from schemas.event_signatures import Signer
from streams.kafka_probe import topic_partitions
from streams.local import kafka_launcher
from streams.rebuild import replay
from streams.security.signing_keys import SigningKeys
from streams.settings import Settings
from streams.signature_check import SignatureCheck
from streams.topic_admin import apply_topics
from streams.topic_catalog import load_catalog

SECURITIES = ("plaintext", "mtls")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@contextmanager
def broker(security: str, heap: str) -> Iterator[Settings]:
    """A private single broker with `security` on, in its own temporary state dir on free ports."""
    with tempfile.TemporaryDirectory(prefix=f"gdx-bench-{security}-") as state:
        base = free_port_block(3)
        settings = Settings(
            kafka_bootstrap_servers=None,
            state_dir=Path(state),
            kafka_port=base,
            kafka_internal_port=base + 2,
            kafka_brokers=1,
            kafka_heap=heap,
            kafka_start_timeout_s=180,
            kafka_security=security,  # type: ignore[arg-type]
        )
        print(f"starting a private {security} Kafka broker at {settings.bootstrap_servers} …", flush=True)
        kafka_launcher.up(settings, 1, report=False)
        try:
            yield settings
        finally:
            kafka_launcher.down(settings)


def broker_cpu_s(settings: Settings) -> float:
    """CPU seconds (user + system) the broker JVM has used so far; NaN when it cannot be read."""
    try:
        (node,) = kafka_launcher.local_nodes(settings)
        pid = int(node.pid_file.read_text().strip())
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    except (OSError, ValueError, IndexError):
        return float("nan")


@dataclass
class Measure:
    """One phase against one broker: events, wall seconds, client and broker CPU seconds."""

    events: int
    seconds: float
    client_cpu_s: float
    broker_cpu_s: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    def line(self) -> str:
        return (
            f"{self.rate:>9,.0f} ev/s  client {self.client_cpu_s / self.events * 1e6:5.1f} µs CPU/ev, "
            f"broker {self.broker_cpu_s / self.events * 1e6:5.1f} µs CPU/ev"
        )


@dataclass
class Side:
    """One broker under test and what the run measured against it, phase by phase."""

    security: str
    settings: Settings
    results: dict[str, list[Measure]] = field(default_factory=dict)

    @property
    def kafka(self) -> KafkaClients:
        return self.settings.kafka  # plaintext: anonymous; mtls: gdx-operator's certificate

    def prefixed(self, prefix: str) -> Settings:
        return self.settings.model_copy(update={"topic_prefix": prefix})


async def await_leaders(kafka: KafkaClients, names: list[str]) -> None:
    """Wait until every partition of the topics has a leader (as bench/publisher.py's
    `create_topics` does), so no measured run pays for the election in retries."""
    admin = kafka.admin()
    await admin.start()
    try:
        for _ in range(300):
            described = await admin.describe_topics(names)
            if all(t["error_code"] == 0 and all(p["leader"] >= 0 for p in t["partitions"]) for t in described):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
    finally:
        await admin.close()


async def connect_ms(kafka: KafkaClients, times: int = 5) -> float:
    """Median milliseconds to start a client and get the cluster's metadata: the per-connection
    price (TCP, TLS handshake with client-certificate verification, metadata round trip)."""
    samples = []
    for _ in range(times):
        began = time.perf_counter()
        admin = kafka.admin()
        await admin.start()
        try:
            await admin.describe_cluster()
        finally:
            await admin.close()
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples)


def timed(side: Side, events: int, run: Callable[[], tuple[int, float]]) -> Measure:
    """Run one phase; `run` returns (events, seconds) as it timed them itself."""
    cpu, broker = time.process_time(), broker_cpu_s(side.settings)
    counted, seconds = run()
    return Measure(counted or events, seconds, time.process_time() - cpu, broker_cpu_s(side.settings) - broker)


def publish(config: ProducerConfig, prefix: str, db: Path, batch_rows: int, signer: Signer) -> tuple[int, float]:
    """The outbox publisher draining `db` into the topics under `prefix`, signing as it runs: (0:
    count it, wall seconds)."""
    wall, _ = asyncio.run(through_outbox(config, prefix, db, batch_rows, signer))
    return 0, wall


def read(kafka: KafkaClients, tps: list[TopicPartition], codec: Codec) -> tuple[int, float]:
    count, seconds, _ = asyncio.run(bare_read(kafka, tps, codec=codec))
    return count, seconds


def pipeline(
    engine: Engine, kafka: KafkaClients, topic_datasets: dict[str, str], verifier: SignatureCheck
) -> tuple[int, float]:
    """The worker's pipeline, signatures checked, replaying the topics into a fresh index: (records, seconds)."""
    report = asyncio.run(replay(engine, kafka, topic_datasets, verifier, registry_schemas(), progress=False))
    return report.records, report.seconds


def record(phase: str, round_: int, sides: list[Side], measures: dict[str, Measure]) -> None:
    for side in sides:
        side.results.setdefault(phase, []).append(measures[side.security])
    plain, secured = measures["plaintext"], measures["mtls"]
    print(
        f"round {round_} {phase:<8}  plaintext {plain.line()}\n"
        f"{'':17}mtls      {secured.line()}   ratio {secured.rate / plain.rate:.3f}",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    population_arguments(parser)
    parser.add_argument("--linger-ms", type=int, default=5)
    parser.add_argument("--max-batch-size", type=int, default=512 * 1024)
    parser.add_argument("--batch-rows", type=int, default=2_000)
    parser.add_argument("--heap", default="512m", help="JVM heap of each of the two brokers")
    parser.add_argument("--no-pipeline", action="store_true", help="skip the replay into a SQLite index")
    args = parser.parse_args()
    began = time.monotonic()
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gdx-bench-")))
        stack.enter_context(registry(work / "registry"))  # one for both sides: it is not what is compared
        sides = [Side(security, stack.enter_context(broker(security, args.heap))) for security in SECURITIES]
        print(f"loading {args.agency} of a {args.scale:,}-person population into an outbox …", flush=True)
        template = work / "template.db"
        source = SourceSystem(args.agency, template, routes_for(args.agency), load_schema_catalog(), args.seed)
        count = source.load(Population(args.scale, args.seed).records(args.agency))
        source.close()
        keys = SigningKeys.of(work)
        signer, verifier = keys.signer(args.agency), SignatureCheck(keys.trust_list_path)
        catalog = load_catalog()
        codec = registry_codec()
        handshake = {side.security: asyncio.run(connect_ms(side.kafka)) for side in sides}
        print(
            "client start + metadata (median of 5): "
            + ", ".join(f"{security} {ms:.0f} ms" for security, ms in handshake.items()),
            flush=True,
        )
        for round_ in range(1, args.rounds + 1):
            order = sides if round_ % 2 else sides[::-1]  # alternate who goes first
            prefix = f"s{uuid.uuid4().hex[:8]}."
            for side in order:
                apply_topics(side.prefixed(prefix), catalog)
                asyncio.run(await_leaders(side.kafka, [prefix + t.name for t in catalog.topics]))
            topic_datasets = {
                prefix + d.topic: f"{d.agency}.{d.name}" for d in catalog.datasets if d.agency == args.agency
            }
            measures = {}
            for side in order:
                db = work / f"round{round_}-{side.security}.db"
                shutil.copyfile(template, db)
                config = ProducerConfig(side.kafka, linger_ms=args.linger_ms, max_batch_size=args.max_batch_size)
                measures[side.security] = timed(
                    side, count, partial(publish, config, prefix, db, args.batch_rows, signer)
                )
            record("publish", round_, sides, measures)

            measures = {}
            for side in order:
                tps = asyncio.run(topic_partitions(side.kafka, list(topic_datasets)))
                measures[side.security] = timed(side, count, partial(read, side.kafka, tps, codec))
            record("read", round_, sides, measures)

            if not args.no_pipeline:
                measures = {}
                for side in order:
                    engine = index_engine(f"sqlite:///{work / f'index-{side.security}.db'}")
                    drop_all(engine)
                    upgrade(engine)
                    measures[side.security] = timed(
                        side, count, partial(pipeline, engine, side.kafka, topic_datasets, verifier)
                    )
                    engine.dispose()
                record("pipeline", round_, sides, measures)

        plain, secured = sides
        print(
            f"\nevents {count:,} ({args.agency}, scale {args.scale:,}) per round and broker, {args.rounds} rounds, "
            f"linger {args.linger_ms} ms, batch {args.max_batch_size} B, acks=all, idempotent; "
            f"brokers: 1 each, heap {args.heap}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
        )
        print(
            f"{'phase':<9}{'plaintext ev/s':>15}{'mtls ev/s':>12}{'ratio':>8}{'CPU ratio':>10}   (medians over rounds; "
            "ratio: of per-round mtls/plaintext wall-clock rates; CPU ratio: plaintext/mtls client+broker CPU per "
            "event, the rate ratio if the phase were CPU-bound, which other load inflates far less)"
        )
        for phase in plain.results:
            ratios = [s.rate / p.rate for p, s in zip(plain.results[phase], secured.results[phase], strict=True)]
            p_rate = statistics.median(m.rate for m in plain.results[phase])
            s_rate = statistics.median(m.rate for m in secured.results[phase])
            cpu = {
                side.security: (
                    statistics.median(m.client_cpu_s / m.events * 1e6 for m in side.results[phase]),
                    statistics.median(m.broker_cpu_s / m.events * 1e6 for m in side.results[phase]),
                )
                for side in sides
            }
            cpu_ratio = statistics.median(
                (p.client_cpu_s + p.broker_cpu_s) / p.events / ((s.client_cpu_s + s.broker_cpu_s) / s.events)
                for p, s in zip(plain.results[phase], secured.results[phase], strict=True)
            )
            verdict = "within" if statistics.median(ratios) >= 0.85 else "OUTSIDE"
            print(
                f"{phase:<9}{p_rate:>15,.0f}{s_rate:>12,.0f}{statistics.median(ratios):>8.3f}{cpu_ratio:>10.3f}   "
                f"{verdict} the 15% target; CPU µs/ev client {cpu['plaintext'][0]:.1f} → {cpu['mtls'][0]:.1f}, "
                f"broker {cpu['plaintext'][1]:.1f} → {cpu['mtls'][1]:.1f}"
            )
        print(
            f"connection start: plaintext {handshake['plaintext']:.0f} ms, mtls {handshake['mtls']:.0f} ms "
            f"(paid once per client, not per event)"
        )
        print(f"run took {time.monotonic() - began:.0f} s (brokers' start and stop included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
