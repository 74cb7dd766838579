"""`gdx alerts`: what Alertmanager delivered — firing first, then resolved — and, with `--serve`,
the receiver process itself (Alertmanager's webhook), announced to Prometheus like every process."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from foundation.errors import GdxError
from foundation.moments import utc_stamp
from monitoring import scrape_targets
from monitoring.alert_receiver import AlertBook, ReceiverUnavailable, fetch_alerts, load_token, routes
from monitoring.health_server import HealthServer
from streams.commands.prometheus import receiver_token_file
from streams.settings import Settings, load_settings

PROCESS = "alert-receiver"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    alerts = sub.add_parser("alerts", help="the alerts Alertmanager delivered, firing first")
    alerts.add_argument(
        "--serve",
        action="store_true",
        help="run the receiver: Alertmanager's webhook, /metrics, /healthz, /readyz until Ctrl-C",
    )
    alerts.set_defaults(handler=cmd_alerts, process=True)


def cmd_alerts(args: argparse.Namespace) -> int:
    settings = load_settings()
    if args.serve:
        return _serve(settings.state_dir / "alerts" / "alerts.json", settings)
    try:
        alerts = fetch_alerts(settings.alert_receiver_base_url, settings.kafka_request_timeout_s)
    except ReceiverUnavailable as exc:
        raise GdxError(
            f"the alert receiver at {settings.alert_receiver_base_url} does not answer ({exc})",
            "start the stack (`gdx up`) or the receiver (`gdx alerts --serve`)",
        ) from None
    if not alerts:
        print("no alert has been delivered")
        return 0
    for alert in alerts:
        labels = alert["labels"]
        where = "/".join(labels[k] for k in ("agency", "dataset") if k in labels)
        print(
            f"{alert['status'].upper():<9} {labels.get('severity', ''):<7} {labels.get('alertname', '?'):<24} "
            f"{where:<24} since {alert['starts_at'][:19]}Z, last heard {utc_stamp(alert['received_ms'])}"
        )
        summary = alert["annotations"].get("summary")
        if summary:
            print(f"          {summary}")
    return 0


def _serve(book_file: Path, settings: Settings) -> int:
    book = AlertBook(book_file)
    server = HealthServer(
        PROCESS,
        "alerts",
        port=settings.alert_receiver_port,
        targets_dir=scrape_targets.targets_dir(settings.state_dir),
        port_setting="GDX_ALERT_RECEIVER_PORT",
        routes=routes(book, load_token(receiver_token_file(settings))),
    ).start()
    print(f"alert receiver: {server.url}/alerts ({len(book.alerts())} alerts held); Ctrl-C stops", flush=True)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        stop.wait()
    finally:
        server.stop()
    print("alert receiver: stopped", flush=True)
    return 0
