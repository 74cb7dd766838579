"""`gdx lag`: consumer lag per group and partition, once as a table, or `--serve`d as metrics.

`gdx lag --serve` is the lag monitor process of the stack: it measures every `GDX_LAG_INTERVAL_S`
and serves `gdx_consumer_lag_offsets` / `gdx_consumer_lag_seconds` on `/metrics`, announced to
Prometheus like every process. It is ready once a measurement succeeded, and not ready (with the
reason) while Kafka does not answer.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from aiokafka.errors import KafkaError

from foundation.errors import GdxError
from monitoring import scrape_targets
from monitoring.consumer_lag import LagGauges, LagProbe, PartitionLag
from monitoring.health_server import HealthServer, Readiness
from streams.kafka_probe import quiet_client_logs
from streams.security.principals import MONITOR
from streams.settings import Settings, load_settings

log = logging.getLogger("gdx.lag")
PROCESS = "lag-monitor"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    lag = sub.add_parser("lag", help="consumer lag per group and partition, in messages and seconds")
    lag.add_argument(
        "--serve", action="store_true", help="keep measuring and serve /metrics, /healthz, /readyz until Ctrl-C"
    )
    lag.add_argument("--port", type=int, default=None, help="port of --serve (default GDX_LAG_MONITOR_PORT; 0: free)")
    lag.set_defaults(handler=cmd_lag, process=True)


def _probe(settings: Settings) -> LagProbe:
    return LagProbe(settings.kafka_for(MONITOR), settings.topic("gdx."), settings.kafka_request_timeout_s)


async def _measure_once(settings: Settings) -> list[PartitionLag]:
    try:
        with quiet_client_logs():
            async with _probe(settings) as probe:
                return await probe.measure()
    except (KafkaError, OSError, TimeoutError) as exc:
        raise GdxError(
            f"Kafka at {settings.bootstrap_servers} does not answer ({exc or type(exc).__name__})",
            "start it with `gdx kafka up`, or check KAFKA_BOOTSTRAP_SERVERS",
        ) from None


def _print_table(lags: list[PartitionLag], prefix: str) -> None:
    if not lags:
        print(f"no consumer group has committed offsets on topics {prefix}*")
        return
    rows = [
        (
            lag.group,
            lag.topic,
            str(lag.partition),
            str(lag.committed),
            str(lag.end),
            str(lag.lag),
            "unknown" if lag.lag_seconds is None else f"{lag.lag_seconds:.1f}",
        )
        for lag in lags
    ]
    header = ("GROUP", "TOPIC", "PARTITION", "COMMITTED", "END", "LAG", "LAG_S")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


async def _serve(settings: Settings, readiness: Readiness) -> None:
    """Measure until SIGINT/SIGTERM; a failing cluster makes the process not ready, never kills it."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    gauges = LagGauges()
    while not stop.is_set():
        try:
            with quiet_client_logs():
                async with _probe(settings) as probe:
                    while not stop.is_set():
                        gauges.publish(await probe.measure())
                        readiness.set_ready("kafka")
                        await _sleep_unless(stop, settings.lag_interval_s)
        except (KafkaError, OSError, TimeoutError) as exc:
            reason = f"Kafka at {settings.bootstrap_servers} does not answer ({type(exc).__name__})"
            readiness.set_not_ready("kafka", reason)
            log.warning("lag measurement failed", extra={"reason": reason, "error": str(exc)})
            await _sleep_unless(stop, settings.lag_interval_s)


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return


def cmd_lag(args: argparse.Namespace) -> int:
    settings = load_settings()
    if not args.serve:
        _print_table(asyncio.run(_measure_once(settings)), settings.topic("gdx."))
        return 0
    readiness = Readiness()
    readiness.set_not_ready("kafka", "no lag measured yet")
    port = settings.lag_monitor_port if args.port is None else args.port
    server = HealthServer(
        PROCESS,
        "monitor",
        port=port,
        readiness=readiness,
        targets_dir=scrape_targets.targets_dir(settings.state_dir),
        port_setting="GDX_LAG_MONITOR_PORT",
    ).start()
    print(f"lag monitor: {server.url}/metrics, measuring every {settings.lag_interval_s:g} s; Ctrl-C stops", flush=True)
    try:
        asyncio.run(_serve(settings, readiness))
    finally:
        server.stop()
    print("lag monitor: stopped", flush=True)
    return 0
