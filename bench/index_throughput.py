"""Benchmark: events/s from the agency topics into the committed linkage index, against a bare
aiokafka consumer reading the same topics without processing, in the same run.

The agencies' initial load (every entity of a population as a snapshot event) is published once;
then, alternating, a bare consumer reads every change topic to its end, a decoding consumer does
the same and decodes each value (no pipeline can do less, so it is the baseline that measures the
pipeline rather than the client library), and the pipeline (the same code the worker runs:
verify, decode, validate, dedupe, version guard, apply, commit) replays them into a fresh index.
A stage breakdown over the same records, a batch at a time, names the bottleneck; then the real
`gdx worker`, in its own configuration (subscriptions and pending links on), is timed from its
first commit until its group has committed every end offset: one process, then two in one group,
each run into an empty index from the first offsets.

    python bench/index_throughput.py --scale 10000 [--processes 1 2] [--bootstrap-servers HOST:PORT]
        [--index-url URL | --postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import nullcontext
from pathlib import Path

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(1, str(Path(__file__).parent.parent))  # the tests' private PostgreSQL server, for --postgres
from local_kafka import clients, kafka, registry_codec, registry_schemas

from foundation.kafka_clients import KafkaClients
from linkage.database import index_engine
from linkage.index_event import IndexEvent
from linkage.index_store import IndexStore
from linkage.migrate import drop_all, upgrade
from schemas.codec import Codec
from schemas.validation import check_event, validate_event
from streams.kafka_probe import topic_partitions
from streams.rebuild import replay
from streams.settings import Settings
from streams.signature_check import signature_check
from streams.topic_admin import apply_topics
from streams.topic_catalog import load_catalog
from streams.worker import group_id
from tests.support.postgres_env import postgres_server

MODELS = "validate by the pydantic models"
"""Not a stage of the worker: the baseline the rules are measured against."""


def gdx_env(bootstrap: str, prefix: str, state: Path, index_url: str) -> dict[str, str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if k.startswith("GDX_SCHEMA_REGISTRY_") or not k.startswith("GDX_") and k != "KAFKA_BOOTSTRAP_SERVERS"
    }
    return {
        **base,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "GDX_TOPIC_PREFIX": prefix,
        "GDX_STATE_DIR": str(state),
        "GDX_INDEX_URL": index_url,
    }


def publish_initial_load(env: dict[str, str], state: Path, scale: int) -> None:
    """Every entity of a population of `scale` persons as a snapshot event, by `gdx simulate` under
    `env`, its stores in `state`."""
    print(f"publishing the initial load of {scale:,} persons …", flush=True)
    began = time.monotonic()
    simulated = subprocess.run(
        [
            sys.executable,
            "-m",
            "streams.cli",
            "simulate",
            "--scale",
            str(scale),
            "--count",
            "0",
            "--store-dir",
            str(state / "agencies"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    if simulated.returncode != 0:  # gdx simulate has said why on stderr
        sys.exit(simulated.returncode)
    print(f"published in {time.monotonic() - began:.0f} s", flush=True)


async def bare_read(
    kafka: KafkaClients, tps: list[TopicPartition], keep: bool = False, codec: Codec | None = None
) -> tuple[int, float, list]:
    """Read every partition to its end offset, touching nothing (or, given a codec, only decoding
    each value: the least any consumer of these events has to do); optionally keep the records."""
    consumer = kafka.consumer(enable_auto_commit=False, max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    kept: list = []
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        remaining = {tp for tp in tps if ends[tp] > 0}
        count, began = 0, time.perf_counter()
        while remaining:
            for tp, messages in (await consumer.getmany(*remaining, timeout_ms=1000, max_records=2000)).items():
                count += len(messages)
                if codec is not None:
                    for message in messages:
                        if message.value is not None:
                            codec.decode(message.value)
                if keep:
                    kept.extend(messages)
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        return count, time.perf_counter() - began, kept
    finally:
        await consumer.stop()


def stage_breakdown(messages: list, topic_datasets: dict[str, str], index_url: str) -> dict[str, float]:
    """Seconds per stage over the same records, a batch of 2,000 at a time as the worker takes them
    (no stage holds every decoded event alive, which would tax the next with garbage collection):
    decode, validate (the stream's rules), building the index events, and the index apply with its
    commit; and, as the baseline of the rules, the same events validated by the pydantic models."""
    codec = registry_codec()
    engine = index_engine(index_url)
    drop_all(engine)
    upgrade(engine)
    store = IndexStore(engine)
    stages = dict.fromkeys(("decode", "validate", "build", "apply+commit", MODELS), 0.0)
    for start in range(0, len(messages), 2000):
        values = [(m.topic, m.value) for m in messages[start : start + 2000] if m.value is not None]
        began = time.perf_counter()
        decoded = [(topic, codec.decode(value)) for topic, value in values]
        stages["decode"] += time.perf_counter() - began
        began = time.perf_counter()
        for _, item in decoded:
            check_event(item)
        stages["validate"] += time.perf_counter() - began
        began = time.perf_counter()
        for _, item in decoded:
            validate_event(item)
        stages[MODELS] += time.perf_counter() - began
        began = time.perf_counter()
        events = [IndexEvent.from_record(topic_datasets[topic], item.record) for topic, item in decoded]
        stages["build"] += time.perf_counter() - began
        began = time.perf_counter()
        store.apply(events)
        stages["apply+commit"] += time.perf_counter() - began
    return stages


def worker_run(
    env: dict[str, str], bootstrap: str, prefix: str, tps: list[TopicPartition], processes: int
) -> tuple[float, float, float]:
    """`processes` workers in one group from the first offsets into an empty index: (events/s from
    the group's first commit to caught up, seconds from their start to the first commit, the
    workers' CPU seconds per event over the same span)."""
    group = group_id(Settings(topic_prefix=prefix))
    asyncio.run(rewind_group(bootstrap, group, tps))
    began = time.perf_counter()
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker", "--audit-partition", str(1 + n)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for n in range(processes)
    ]
    try:
        return asyncio.run(_watch(workers, bootstrap, group, tps, began))
    finally:
        for process in workers:
            process.terminate()
        for process in workers:
            process.wait(timeout=90)


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time the processes have used so far (Linux /proc)."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


async def _watch(
    workers: list[subprocess.Popen[bytes]], bootstrap: str, group: str, tps: list[TopicPartition], began: float
) -> tuple[float, float, float]:
    pids = [process.pid for process in workers]
    first: tuple[float, int, float] | None = None
    async for committed, total in group_progress(bootstrap, group, tps):
        now = time.perf_counter()
        if first is None and committed > 0:
            first = (now, committed, cpu_seconds(pids))
        if committed >= total and first is not None:
            events = total - first[1]
            return (
                events / max(now - first[0], 1e-9),
                first[0] - began,
                (cpu_seconds(pids) - first[2]) / max(events, 1),
            )
        for process in workers:
            if process.poll() is not None:
                raise RuntimeError(f"a worker exited with {process.returncode}")
    raise AssertionError("group_progress ends only when its caller stops")


async def group_progress(
    bootstrap: str, group: str, tps: list[TopicPartition], every_s: float = 0.2
) -> AsyncIterator[tuple[int, int]]:
    """(records the group has committed, records in the topics), every `every_s`, read through one
    pair of clients for as long as the caller iterates: a TLS handshake every poll would take CPU
    from the workers being measured."""
    kafka = clients(bootstrap)
    admin, consumer = kafka.admin(), kafka.consumer()
    await admin.start()
    await consumer.start()
    try:
        ends = await consumer.end_offsets(tps)
        while True:
            yield await group_committed(admin, group, ends), sum(ends.values())
            await asyncio.sleep(every_s)
    finally:
        await consumer.stop()
        await admin.close()


async def rewind_group(bootstrap: str, group: str, tps: list[TopicPartition]) -> None:
    """The group's committed offsets back to the start, so another run reads every event again."""
    consumer = clients(bootstrap).consumer(group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.commit(dict.fromkeys(tps, 0))
    finally:
        await consumer.stop()


async def group_committed(admin: AIOKafkaAdminClient, group: str, ends: dict[TopicPartition, int]) -> int:
    """Records the group has committed, counting no partition past its end offset."""
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    except KafkaError:  # the group's coordinator is not there yet
        return 0
    committed = {tp: m.offset for tp, m in offsets.items() if m.offset >= 0}
    return sum(min(committed.get(tp, 0), end) for tp, end in ends.items())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap-servers", default=None)
    parser.add_argument("--scale", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--processes", type=int, nargs="+", default=[1, 2], help="worker processes in the group, one run each"
    )
    parser.add_argument("--index-url", default=None, help="default: SQLite in a temporary directory")
    parser.add_argument(
        "--postgres", action="store_true", help="the index on a private PostgreSQL server, as the tests start one"
    )
    args = parser.parse_args()
    with (
        kafka(args.bootstrap_servers) as bootstrap,
        tempfile.TemporaryDirectory(prefix="gdx-bench-") as tmp,
        postgres_server() if args.postgres else nullcontext(args.index_url) as given_url,
    ):
        state = Path(tmp)
        index_url = given_url or f"sqlite:///{state / 'index.db'}"
        prefix = f"b{uuid.uuid4().hex[:8]}."
        settings = Settings(kafka_bootstrap_servers=bootstrap, topic_prefix=prefix, state_dir=state)
        catalog = load_catalog()
        apply_topics(settings, catalog)
        env = gdx_env(bootstrap, prefix, state, index_url)
        publish_initial_load(env, state, args.scale)
        topic_datasets = {settings.topic(d.topic): f"{d.agency}.{d.name}" for d in catalog.datasets}
        tps = asyncio.run(topic_partitions(settings.kafka, list(topic_datasets)))
        bare_rates, decoding_rates, pipeline_rates = [], [], []
        codec = registry_codec()
        total = 0
        for round_ in range(1, args.rounds + 1):
            total, seconds, _ = asyncio.run(bare_read(settings.kafka, tps))
            bare_rates.append(total / seconds)
            total, seconds, _ = asyncio.run(bare_read(settings.kafka, tps, codec=codec))
            decoding_rates.append(total / seconds)
            engine = index_engine(index_url)
            drop_all(engine)
            upgrade(engine)
            report = asyncio.run(
                replay(
                    engine,
                    settings.kafka,
                    topic_datasets,
                    signature_check(settings),
                    registry_schemas(),
                    progress=False,
                )
            )
            pipeline_rates.append(report.rate)
            print(
                f"round {round_}: bare consumer {bare_rates[-1]:,.0f} ev/s, "
                f"decoding consumer {decoding_rates[-1]:,.0f} ev/s, "
                f"pipeline into index {report.rate:,.0f} ev/s ({total:,} events)",
                flush=True,
            )
        _, _, messages = asyncio.run(bare_read(settings.kafka, tps, keep=True))
        stages = stage_breakdown(messages, topic_datasets, index_url)
        del messages
        workers: dict[int, tuple[float, float, float]] = {}
        for processes in args.processes:
            engine = index_engine(index_url)
            drop_all(engine)
            upgrade(engine)
            engine.dispose()
            workers[processes] = worker_run(env, bootstrap, prefix, tps, processes)
            print(f"gdx worker × {processes}: {workers[processes][0]:,.0f} ev/s", flush=True)
        bare, decoding, pipeline = max(bare_rates), max(decoding_rates), max(pipeline_rates)
        print(f"\nevents: {total:,} (scale {args.scale:,}), index {index_url.split(':')[0]}")
        print(f"bare aiokafka consumer      {bare:>10,.0f} events/s")
        print(
            f"decoding consumer           {decoding:>10,.0f} events/s   ratio {decoding / bare:.3f}  "
            "(reads and decodes only)"
        )
        print(
            f"pipeline into the index     {pipeline:>10,.0f} events/s   ratio {pipeline / bare:.3f}, "
            f"{pipeline / decoding:.3f} of the decoding consumer"
        )
        for processes, (rate, start_up_s, cpu) in workers.items():
            print(
                f"gdx worker × {processes:<2}            {rate:>10,.0f} events/s   ratio {rate / bare:.3f}, "
                f"{rate / decoding:.3f} of the decoding consumer (first commit {start_up_s:.1f} s after start; "
                f"{cpu * 1e6:.0f} µs of worker CPU an event)"
            )
        models = stages.pop(MODELS)
        busiest = max(stages, key=stages.__getitem__)
        print(
            "stage costs over the same events: "
            + ", ".join(f"{name} {seconds:.2f} s ({total / seconds:,.0f}/s)" for name, seconds in stages.items())
            + f" — bottleneck: {busiest}"
        )
        print(
            f"validation by the rules {stages['validate']:.2f} s against the pydantic models {models:.2f} s: "
            f"ratio {stages['validate'] / models:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
