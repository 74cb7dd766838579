"""Benchmark: lookups/s and p50 / p99 latency of the lookup API over a 1,000,000-person index, at
fixed offered loads, against a bare SQL read of the same records in the same run.

The index is built by bulk-inserting `records` rows (one `dopa.person` per person, a vehicle
possessed by every fourth person, with its link) — the benchmark measures lookups, not ingest.
The API runs as `gdx serve` (uvicorn in one process, or `--workers N` processes on the port) with
a consumer that holds a legal mandate, so every request does the whole path: API key, policy,
index reads, least-data cut, the audit record produced to the real broker and acknowledged
(acks=all), the access-log row.

Load is open-loop: request i is sent at t0 + i / rate whatever happened before, and its latency
counts from that scheduled time, so a server falling behind shows as latency (no coordinated
omission). The load generator (`open_loop.py`) shares the server's cores, so it is kept lean, and
each row also says how late it sent (its own share of the latencies) and how contended the machine
was (Linux CPU pressure: the share of the time some runnable task waited for a CPU). A rate is
sustained when the answered rate is within 2% of the offered rate, nothing failed and p99 is under
the target. The baseline reads the same person rows with plain SQL
(sqlite3, one indexed primary-key read each) in this process.

    python bench/lookup.py [--bootstrap-servers HOST:PORT] --persons 1000000 --rates 500,1000,1500 [--workers 2]

The API serves HTTPS as it does by default (the load generator verifies it with the run's project
CA); `--insecure-http` measures it on plain HTTP (`gdx serve --insecure-http`) instead, and
`--compare-http` runs both side by side, each rate offered to the HTTPS server then to the HTTP
one, and prints the p99 ratio per rate: the cost of TLS, measured in one run. Without
`--bootstrap-servers` the run starts a private broker (mTLS, as by default).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import resource
import sqlite3
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvloop
from aiokafka.admin import NewTopic
from local_kafka import clients, kafka
from open_loop import LoadResult, offered_load

from foundation.ports import free_port_block
from linkage.audit import ANCHOR_TOPIC, AUDIT_TOPIC
from linkage.consent import CONSENT_TOPIC
from linkage.database import index_engine
from linkage.migrate import upgrade
from schemas.identifiers import with_check_digit

KEY = "bench-key"
CONSUMERS = """
[consumers.bench]
name = "benchmark consumer"
api_key_sha256 = "{digest}"
rate_per_s = 1000000
burst = 1000000
[consumers.bench.purposes.bench]
operations = ["lookup"]
mandate = "benchmark"
[consumers.bench.purposes.bench.datasets]
"dopa.person" = ["name", "date_of_birth", "status"]
"dlt.vehicle" = ["plate", "make", "model"]
"""


def citizen_id(n: int) -> str:
    return with_check_digit(f"1{n:011d}")


def build_index(path: Path, persons: int) -> None:
    """Bulk-insert the persons (and some vehicles with links), unless the file already holds them."""
    engine = index_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    db = sqlite3.connect(path)
    db.execute("DELETE FROM access_log")  # earlier runs' rows: each run starts from the same file
    db.commit()
    held = db.execute("SELECT count(*) FROM records WHERE dataset = 'dopa.person'").fetchone()[0]
    if held == persons:
        db.close()
        return
    began = time.monotonic()
    now = int(time.time() * 1000)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("DELETE FROM records")
    db.execute("DELETE FROM links")

    def person(n: int) -> tuple[object, ...]:
        cid = citizen_id(n)
        payload = {
            "citizen_id": cid,
            "name": {"prefix": "นาย", "first_name": f"สมชาย{n}", "middle_name": None, "last_name": "ใจดี"},
            "name_en": None,
            "sex": "MALE",
            "date_of_birth": "1985-03-14",
            "nationality": "THA",
            "house_id": None,
            "card": None,
            "status": "ACTIVE",
        }
        return (
            "dopa.person",
            cid,
            "DOPA",
            33,
            1,
            "SNAPSHOT",
            False,
            json.dumps(payload, ensure_ascii=False),
            str(uuid.UUID(int=n)),
            "0" * 32,
            now,
            now,
            now,
            "dopa-bench",
        )

    def vehicle(n: int) -> tuple[object, ...]:
        payload = {
            "chassis_number": f"BENCH{n:012d}",
            "plate": {"prefix": "1กข", "number": n % 10000, "province_code": "10"},
            "make": "TOYOTA",
            "model": "HILUX",
            "status": "ACTIVE",
        }
        return (
            "dlt.vehicle",
            f"BENCH{n:012d}",
            "DLT",
            30,
            1,
            "SNAPSHOT",
            False,
            json.dumps(payload, ensure_ascii=False),
            str(uuid.UUID(int=10**9 + n)),
            "0" * 32,
            now,
            now,
            now,
            "dlt-bench",
        )

    insert = "INSERT INTO records VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
    for start in range(0, persons, 100_000):
        chunk = range(start, min(persons, start + 100_000))
        db.executemany(insert, (person(n) for n in chunk))
        db.executemany(insert, (vehicle(n) for n in chunk if n % 4 == 0))
        db.executemany(
            "INSERT INTO links (dataset, entity_key, relation, party_kind, party_id, share, linked_ms) "
            "VALUES ('dlt.vehicle', ?, 'possesses', 'citizen', ?, NULL, ?)",
            ((f"BENCH{n:012d}", citizen_id(n), now) for n in chunk if n % 4 == 0),
        )
    db.commit()
    db.close()
    print(f"index: {persons:,} persons built in {time.monotonic() - began:.1f} s", flush=True)


def bare_sql(path: Path, ids: list[str]) -> list[float]:
    db = sqlite3.connect(path)
    latencies = []
    for cid in ids:
        began = time.perf_counter()
        db.execute("SELECT * FROM records WHERE dataset = 'dopa.person' AND entity_key = ?", (cid,)).fetchone()
        latencies.append(time.perf_counter() - began)
    db.close()
    return latencies


async def create_topics(bootstrap: str, prefix: str) -> None:
    admin = clients(bootstrap).admin()
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(prefix + AUDIT_TOPIC, 3, 1),
                NewTopic(prefix + ANCHOR_TOPIC, 1, 1),
                NewTopic(prefix + CONSENT_TOPIC, 3, 1, topic_configs={"cleanup.policy": "compact"}),
            ]
        )
    finally:
        await admin.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children (the lookup processes of `--workers`):
    the server's cost per lookup, which other load on the machine does not inflate (wall-clock
    latency on a shared machine does)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") + sum(cpu_seconds(int(c)) for c in children)


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_pressure_us() -> int | None:
    """Microseconds in which some runnable task waited for a CPU (Linux PSI), None where unknown:
    how contended the shared machine was during a run, whoever caused it."""
    try:
        first = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    return int(first.rsplit("total=", 1)[1])


def pressure_since(before: int | None, seconds: float) -> str:
    """The share of the last `seconds` in which some task waited for a CPU, from a reading `before`."""
    after = cpu_pressure_us()
    return "n/a" if before is None or after is None else f"{(after - before) / 1e4 / seconds:.0f}%"


def load(url: str, rate: float, seconds: float, ids: list[str], tls: ssl.SSLContext | None) -> LoadResult:
    paths = [f"/v1/citizens/{cid}?purpose=bench" for cid in ids]
    return uvloop.run(offered_load(url, paths, rate, seconds, headers={"X-API-Key": KEY}, tls=tls))


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 10) - 1] * 1000 if len(values) > 1 else float("nan")


@dataclass(frozen=True)
class Server:
    """One `gdx serve` of the run: its process, its address and what its clients trust."""

    mode: str
    process: subprocess.Popen[str]
    url: str
    tls: ssl.SSLContext | None


@contextmanager
def served(args: argparse.Namespace, bootstrap: str, mode: str, work: Path) -> Iterator[Server]:
    """`gdx serve` over `mode` ("https", as served by default, or "http", `--insecure-http`) on
    the run's index, with topics of its own (each server writes its own audit chain), until ready."""
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    asyncio.run(create_topics(bootstrap, prefix))
    state = work / mode
    state.mkdir()
    (state / "consumers.toml").write_text(CONSUMERS.format(digest=hashlib.sha256(KEY.encode()).hexdigest()))
    port = free_port_block(1)
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "GDX_TOPIC_PREFIX": prefix,
        "GDX_STATE_DIR": str(state / "state"),
        "GDX_INDEX_URL": f"sqlite:///{args.index}",
        "GDX_CONSUMERS_FILE": str(state / "consumers.toml"),
        "GDX_LOOKUP_PORT": str(port),
        "GDX_LOOKUP_WORKERS": str(args.workers),
        "GDX_LOOKUP_TLS": "off" if mode == "http" else "on",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    url = f"{mode}://127.0.0.1:{port}"
    ca = state / "state" / "pki" / "ca.pem"  # made by `gdx serve` on its first start
    tls: ssl.SSLContext | None = None
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if mode == "https" and tls is None:
                    tls = ssl.create_default_context(cafile=str(ca))
                if httpx.get(f"{url}/readyz", verify=tls or True).status_code == 200:
                    break
            except (httpx.HTTPError, FileNotFoundError):
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit(f"bench/lookup.py: the {mode} API did not become ready")
            time.sleep(0.2)
        yield Server(mode, process, url, tls)
    finally:
        process.terminate()
        process.wait(timeout=30)


def measure(server: Server, rate: float, seconds: float, ids: list[str], target_p99_ms: float) -> tuple[bool, float]:
    """One offered load against `server`, printed as a row: whether it was sustained, and its p99 (ms)."""
    cpu_before, own_before = cpu_seconds(server.process.pid), own_cpu_seconds()
    pressure_before, began = cpu_pressure_us(), time.monotonic()
    run = load(server.url, rate, seconds, ids, server.tls)
    requests = max(1, len(run.latencies) + run.failures)
    cpu = (cpu_seconds(server.process.pid) - cpu_before) / requests * 1000
    own = (own_cpu_seconds() - own_before) / requests * 1000
    pressure = pressure_since(pressure_before, time.monotonic() - began)
    answered = len(run.latencies) / run.elapsed_s
    p50, p99 = pct(run.latencies, 50), pct(run.latencies, 99)
    print(
        f"{server.mode:>6} {rate:>10,.0f} {answered:>11,.0f} {run.failures:>7} {p50:>8.2f} {p99:>8.2f} "
        f"{max(run.latencies, default=0) * 1000:>8.1f} {cpu:>21.2f} {own:>17.2f} "
        f"{pct(run.lateness, 99):>19.2f} {pressure:>13}",
        flush=True,
    )
    return run.failures == 0 and answered >= 0.98 * rate and p99 < target_p99_ms, p99


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--bootstrap-servers",
        default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"),
        help="a running cluster (its security from KAFKA_SECURITY_PROTOCOL / KAFKA_SSL_*); unset: a private broker",
    )
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--rates", default="500,1000,1500,2000", help="offered loads to try, lookups/s, ascending")
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of each offered load")
    parser.add_argument(
        "--index",
        type=Path,
        default=Path(tempfile.gettempdir()) / "gdx-bench-lookup.db",
        help="index file (reused when it holds --persons persons)",
    )
    parser.add_argument("--target-p99-ms", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=1, help="lookup processes (gdx serve --workers)")
    chosen = parser.add_mutually_exclusive_group()
    chosen.add_argument("--insecure-http", action="store_true", help="the API on plain HTTP instead of HTTPS")
    chosen.add_argument(
        "--compare-http",
        action="store_true",
        help="an HTTPS and a plain-HTTP API side by side, each rate offered to both in turn: the cost of TLS",
    )
    args = parser.parse_args()
    modes = ("https", "http") if args.compare_http else ("http",) if args.insecure_http else ("https",)
    build_index(args.index, args.persons)
    rng = random.Random(7)
    ids = [citizen_id(rng.randrange(args.persons)) for _ in range(50_000)]
    baseline = bare_sql(args.index, ids)
    print(
        f"bare SQL read of the same rows: p50 {pct(baseline, 50):.3f} ms, p99 {pct(baseline, 99):.3f} ms "
        f"({len(baseline) / sum(baseline):,.0f} reads/s on one thread)",
        flush=True,
    )
    work = Path(tempfile.mkdtemp(prefix="gdx-bench-lookup-"))
    with kafka(args.bootstrap_servers) as bootstrap, ExitStack() as stack:
        servers = [stack.enter_context(served(args, bootstrap, mode, work)) for mode in modes]
        for server in servers:
            load(server.url, 200, 3, ids, server.tls)  # warm-up: connections, caches
        print(
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} before the run; "
            f"{args.workers} lookup process(es) per server",
            flush=True,
        )
        print(
            f"{'mode':>6} {'offered/s':>10} {'answered/s':>11} {'failed':>7} {'p50 ms':>8} {'p99 ms':>8} "
            f"{'max ms':>8} {'server CPU ms/lookup':>21} {'generator CPU ms':>17} {'sender late p99 ms':>19} "
            f"{'CPU pressure':>13}",
            flush=True,
        )
        sustained = dict.fromkeys(modes, 0.0)
        p99s: dict[tuple[str, float], float] = {}
        for rate in (float(r) for r in args.rates.split(",")):
            for server in servers:
                held, p99s[(server.mode, rate)] = measure(server, rate, args.seconds, ids, args.target_p99_ms)
                if held:
                    sustained[server.mode] = rate
        for mode in modes:
            print(f"{mode}: highest sustained offered load (p99 < {args.target_p99_ms:g} ms): {sustained[mode]:,.0f}/s")
        if args.compare_http:
            for rate in sorted({rate for _, rate in p99s}):
                https, http = p99s[("https", rate)], p99s[("http", rate)]
                print(f"p99 at {rate:,.0f}/s: HTTPS {https:.2f} ms, HTTP {http:.2f} ms, ratio {https / http:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
