"""`gdx prometheus up|down|status`: the project's own Prometheus with its Alertmanager, and the
stack's way to start them. Alertmanager is optional like Prometheus: without it the alerts are
still evaluated (and shown by Prometheus) but reach nobody, and the command says how to install it."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from monitoring.alert_receiver import load_token
from streams.local import alertmanager, prometheus
from streams.local.alertmanager import AlertmanagerSetup
from streams.local.prometheus import PrometheusNotInstalled, PrometheusSetup
from streams.settings import Settings, load_settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = sub.add_parser("prometheus", help="run the project's own Prometheus (scrapes every gdx process)")
    verbs = command.add_subparsers(dest="verb", required=True, metavar="VERB")

    up = verbs.add_parser("up", help="generate the configurations, start Prometheus and Alertmanager, wait until ready")
    up.set_defaults(handler=cmd_up)

    down = verbs.add_parser("down", help="stop Prometheus and Alertmanager")
    down.add_argument("--purge", action="store_true", help="also delete its stored samples and log")
    down.set_defaults(handler=cmd_down)

    status = verbs.add_parser("status", help="is it running, and which processes does it scrape? (exit 3 if not)")
    status.set_defaults(handler=cmd_status)


def alertmanager_from(settings: Settings) -> AlertmanagerSetup:
    return AlertmanagerSetup(
        root=settings.state_dir / "alertmanager",
        port=settings.alertmanager_port,
        receiver_url=f"{settings.alert_receiver_base_url}/alerts",
        token_file=receiver_token_file(settings),
        start_timeout_s=settings.prometheus_start_timeout_s,
    )


def receiver_token_file(settings: Settings) -> Path:
    return settings.state_dir / "alerts" / "receiver.token"


def setup_from(settings: Settings) -> PrometheusSetup:
    """Prometheus, sending its alerts to the local Alertmanager whenever that is installed."""
    return PrometheusSetup(
        root=prometheus.prometheus_root(settings.state_dir),
        port=settings.prometheus_port,
        scrape_interval_s=settings.prometheus_scrape_interval_s,
        start_timeout_s=settings.prometheus_start_timeout_s,
        alertmanager=alertmanager_from(settings).address if shutil.which(alertmanager.BINARY) else None,
        ca_file=settings.lookup_ca_file,  # the lookup API is scraped over HTTPS
    )


def start_alertmanager(settings: Settings) -> str | None:
    """Alertmanager started (or reloaded), its URL; None after saying how to install it."""
    setup = alertmanager_from(settings)
    try:
        load_token(setup.token_file)
        alertmanager.up(setup)
    except alertmanager.AlertmanagerNotInstalled as exc:
        print(f"monitoring: {exc} — alerts are evaluated but delivered to nobody", flush=True)
        return None
    return setup.url


def start_prometheus(settings: Settings) -> prometheus.UpResult | None:
    """For the stack: Prometheus started (or found running), or None after saying how to install it.

    Any other failure (a busy port, a crash on start) is raised: the operator asked for monitoring.
    """
    try:
        return prometheus.up(setup_from(settings))
    except PrometheusNotInstalled as exc:
        print(f"monitoring: {exc} — the stack runs without it", flush=True)
        return None


def cmd_up(args: argparse.Namespace) -> int:
    settings = load_settings()
    setup = setup_from(settings)
    result = prometheus.up(setup)
    if result.started:
        print(
            f"Prometheus ready at {result.url} after {result.seconds:.1f} s "
            f"(scrape interval {setup.scrape_interval_s:g} s; state in {setup.root})"
        )
    else:
        print(f"Prometheus already running at {result.url}; configuration reloaded")
    delivered = start_alertmanager(settings)
    if delivered is not None:
        print(f"Alertmanager ready at {delivered}, delivering to {alertmanager_from(settings).receiver_url}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    settings = load_settings()
    for line in [
        *alertmanager.down(alertmanager_from(settings), purge=args.purge),
        *prometheus.down(setup_from(settings), purge=args.purge),
    ]:
        print(line)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    settings = load_settings()
    setup = setup_from(settings)
    current = prometheus.state(setup)
    if not current.running:
        why = f"stale pid file {setup.pid_file} (pid {current.pid} is gone)" if current.stale else "not running"
        print(f"prometheus: {why} — start it with `gdx prometheus up`")
        return prometheus.EXIT_NOT_RUNNING
    print(f"prometheus: running, pid {current.pid}, {setup.url}")
    delivery = alertmanager.state(alertmanager_from(settings))
    print(
        f"alertmanager: running, pid {delivery.pid}"
        if delivery.running
        else "alertmanager: not running — alerts reach nobody"
    )
    targets = prometheus.target_health(setup)
    for target in targets:
        error = f" — {target.last_error}" if target.last_error else ""
        print(f"  {target.process:<24} {target.address:<22} {target.health}{error}")
    return 0
