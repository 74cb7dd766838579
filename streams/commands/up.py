"""`gdx up`: the whole local stack in the foreground until Ctrl-C, then a clean stop.

For now the stack is the broker, its topics, the lag monitor (`gdx lag --serve`) and Prometheus
(when installed); later services join here, so the README's run command stays `make run`.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading

from streams import kafka_launcher as launcher
from streams.commands.prometheus import start_prometheus, stop_prometheus
from streams.errors import GdxError
from streams.settings import Settings, load_settings
from streams.topic_admin import apply_topics
from streams.topic_catalog import load_catalog


def register(sub: argparse._SubParsersAction) -> None:
    up = sub.add_parser("up", help="start the whole stack and keep it running until Ctrl-C")
    up.add_argument("--brokers", type=int, choices=(1, 3), default=None, help="local brokers (default 1)")
    up.set_defaults(handler=cmd_up)


def cmd_up(args: argparse.Namespace) -> int:
    settings = load_settings()
    started_here = False
    if settings.external_kafka:
        print(f"using the external Kafka cluster at {settings.bootstrap_servers}")
    else:
        result = launcher.up(settings, args.brokers or settings.kafka_brokers)
        started_here = bool(result.started)
        settings = settings.model_copy(update={"kafka_brokers": len(result.info.broker_ids)})
    monitoring = None
    lag_monitor: subprocess.Popen[str] | None = None
    try:
        changes = apply_topics(settings, load_catalog())
        created = sum(1 for c in changes if c.action == "create")
        print(f"topics: {len(changes)} in the catalog, {created} created now")
        lag_monitor, lag_url = _start_lag_monitor(settings)
        monitoring = start_prometheus(settings)
        print("\nThe GDX stack is up:")
        print(f"  Kafka bootstrap servers  {settings.bootstrap_servers}")
        print(f"  lag monitor              {lag_url}")
        if monitoring is not None:
            print(f"  Prometheus               {monitoring.url}")
        print("Press Ctrl-C to stop.", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    finally:
        print("\nstopping …", flush=True)
        if lag_monitor is not None:
            for line in _stop_process(lag_monitor):
                print(line)
        if monitoring is not None and monitoring.started:
            for line in stop_prometheus(settings):
                print(line)
        if started_here:
            for line in launcher.down(settings):
                print(line)
    return 0


def _start_lag_monitor(settings: Settings) -> tuple[subprocess.Popen[str], str]:
    """`gdx lag --serve` as its own process (its own /metrics); returns it and its metrics URL."""
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
           "GDX_STATE_DIR": str(settings.state_dir), "GDX_TOPIC_PREFIX": settings.topic_prefix}
    process = subprocess.Popen([sys.executable, "-m", "streams.cli", "lag", "--serve"], env=env,
                               stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    first = process.stdout.readline()
    if not first.startswith("lag monitor: "):
        process.wait(timeout=10)
        raise GdxError(f"the lag monitor did not start (exit code {process.returncode})", "see its message above")
    return process, first.split()[2].rstrip(",")


def _stop_process(process: subprocess.Popen[str]) -> list[str]:
    """SIGTERM (Ctrl-C may have stopped it already), then what it printed while stopping."""
    process.send_signal(signal.SIGTERM)
    try:
        out, _ = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate()
    return out.splitlines()
