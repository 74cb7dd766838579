"""Benchmark: freshness — applied time minus source time — at a steady offered load.

A private broker (or --bootstrap-servers), the catalog's topics, one `gdx worker`, then the
simulated agencies: an initial load the worker catches up with first, and then life events at a
steady rate for --duration seconds. Freshness is read from the index itself: every record a life
event changed carries its source time and the time the worker applied it. The offered load is
reported as the events the agencies actually published per second in that window.

The figures are printed twice: for the whole window, and for the steady state after the first
--warmup seconds. Starting `gdx simulate` for the window (its imports, its publishers' connections
and registry look-ups, the burst with which its pacing catches up) delays the first second or two
of events by up to a second or more, and that start-up alone set the whole window's p99 (in one run
1,024 ms, against 229 ms without its first 2 s).

With --separate-publishers each agency's outbox is drained by its own `python -m streams.outbox_relay`
process, as an agency would run its relay beside its registry system, instead of by publishers
sharing `gdx simulate`'s event loop with the life events: on a machine short of cores that loop,
busy making events, delays publishing them, which shows as agency → Kafka time.

    python bench/freshness.py --rate 460 --duration 30 [--separate-publishers]   # about 1,000 events/s
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import text

from agencies.population import AGENCIES
from agencies.simulation import store_path

sys.path.insert(0, str(Path(__file__).parent))
from index_throughput import gdx_env, group_progress
from local_kafka import kafka

from linkage.database import index_engine
from streams.kafka_probe import topic_partitions
from streams.settings import Settings
from streams.topic_admin import apply_topics
from streams.topic_catalog import load_catalog


def wait_caught_up(bootstrap: str, group: str, tps: list, timeout_s: float = 600) -> None:
    async def watch() -> None:
        async for committed, total in group_progress(bootstrap, group, tps, every_s=0.5):
            print(f"\rworker: {committed:,}/{total:,} committed", end="", flush=True)
            if committed >= total:
                print(flush=True)
                return

    try:
        asyncio.run(asyncio.wait_for(watch(), timeout_s))
    except TimeoutError:
        raise TimeoutError("the worker did not catch up") from None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap-servers", default=None)
    parser.add_argument("--scale", type=int, default=2_000)
    parser.add_argument("--rate", type=float, default=400.0, help="life events/s (each publishes ~2-3 events)")
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument(
        "--warmup",
        type=float,
        default=5.0,
        help="seconds of life events left out of the steady-state figures (printed besides the whole window's)",
    )
    parser.add_argument(
        "--separate-publishers",
        action="store_true",
        help="one streams.outbox_relay process per agency instead of publishing from gdx simulate",
    )
    args = parser.parse_args()
    if not 0 <= args.warmup < args.duration:
        parser.error(f"--warmup {args.warmup:g} must be at least 0 and shorter than --duration {args.duration:g}")
    with kafka(args.bootstrap_servers) as bootstrap, tempfile.TemporaryDirectory(prefix="gdx-bench-") as tmp:
        state = Path(tmp)
        index_url = f"sqlite:///{state / 'index.db'}"
        prefix = f"fr{uuid.uuid4().hex[:8]}."
        settings = Settings(kafka_bootstrap_servers=bootstrap, topic_prefix=prefix, state_dir=state)
        catalog = load_catalog()
        apply_topics(settings, catalog)
        env = gdx_env(bootstrap, prefix, state, index_url)
        stores = ["--store-dir", str(state / "agencies"), "--scale", str(args.scale)]
        subprocess.run(
            [sys.executable, "-m", "streams.cli", "simulate", *stores, "--count", "0"],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        worker = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            tps = asyncio.run(topic_partitions(settings.kafka, [settings.topic(d.topic) for d in catalog.datasets]))
            wait_caught_up(bootstrap, f"{prefix}gdx-index", tps)
            report = state / "report.json"
            window_start_ms = int(time.time() * 1000)
            print(f"life events at {args.rate:g}/s for {args.duration:g} s …", flush=True)
            outbox_before = {a["agency"]: a["outbox_events"] for a in _report(env, stores, state)["agencies"]}
            before = sum(outbox_before.values())
            relays = (
                [relay(bootstrap, prefix, store_path(state / "agencies", agency), env) for agency in AGENCIES]
                if args.separate_publishers
                else []
            )
            try:
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "streams.cli",
                        "simulate",
                        *stores,
                        "--rate",
                        str(args.rate),
                        "--duration",
                        str(args.duration),
                        "--report",
                        str(report),
                        *(["--no-publish"] if relays else []),
                    ],
                    env=env,
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
                made = {a["agency"]: a["outbox_events"] for a in json.loads(report.read_text())["agencies"]}
                for agency, process in zip(AGENCIES, relays, strict=True) if relays else ():
                    wait_drained(process, made[agency] - outbox_before[agency])
            finally:
                for process in relays:
                    process.terminate()
                    process.wait(timeout=30)
            published = sum(a["outbox_events"] for a in json.loads(report.read_text())["agencies"]) - before
            wait_caught_up(bootstrap, f"{prefix}gdx-index", tps)
        finally:
            worker.terminate()
            worker.wait(timeout=60)
        with index_engine(index_url).connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT source_ms, published_ms, applied_ms FROM records "
                    "WHERE change_type <> 'SNAPSHOT' AND source_ms >= :start"
                ),
                {"start": window_start_ms},
            ).all()
        if len(rows) < 100:
            print(f"only {len(rows)} life-event records in the index: too few to measure")
            return 1
        print(f"offered load: {published:,} events in {args.duration:g} s = {published / args.duration:,.0f} events/s")
        first = min(source for source, _, _ in rows)
        steady = [row for row in rows if row[0] >= first + args.warmup * 1000]
        _report_quantiles("the whole window", rows)
        _report_quantiles(f"steady: after the first {args.warmup:g} s of life events", steady)
    return 0


def _report_quantiles(window: str, rows: list) -> None:
    print(f"{window}:")
    for name, values in (
        ("freshness (applied - source)", [a - s for s, _, a in rows]),
        ("  of which agency → Kafka (published - source)", [p - s for s, p, _ in rows]),
        ("  of which Kafka → index (applied - published)", [a - p for _, p, a in rows]),
    ):
        quantiles = statistics.quantiles(values, n=100)
        print(
            f"  {name}: p50 {quantiles[49]:.0f} ms, p99 {quantiles[98]:.0f} ms, max {max(values)} ms "
            f"({len(values):,} records)"
        )


def relay(bootstrap: str, prefix: str, store: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streams.outbox_relay",
            "--store",
            str(store),
            "--bootstrap-servers",
            bootstrap,
            "--topic-prefix",
            prefix,
        ],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


def wait_drained(process: subprocess.Popen[str], rows: int) -> None:
    """Read the relay's progress lines (JSON stats, about one a second) until it has sent `rows`."""
    assert process.stdout is not None
    for line in process.stdout:
        if json.loads(line)["sent"] >= rows:
            return
    raise RuntimeError(f"the outbox relay exited with {process.wait()}")


def _report(env: dict[str, str], stores: list[str], state: Path) -> dict:
    out = state / "before.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "streams.cli",
            "simulate",
            *stores,
            "--count",
            "0",
            "--publish-only",
            "--report",
            str(out),
        ],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return json.loads(out.read_text())


if __name__ == "__main__":
    sys.exit(main())
