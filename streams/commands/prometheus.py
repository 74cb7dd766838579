"""`gdx prometheus up|down|status`: the project's own Prometheus, and the stack's way to start it."""

from __future__ import annotations

import argparse

from monitoring import prometheus
from monitoring.prometheus import PrometheusNotInstalled, PrometheusSetup
from streams.settings import Settings, load_settings


def register(sub: argparse._SubParsersAction) -> None:
    command = sub.add_parser("prometheus", help="run the project's own Prometheus (scrapes every gdx process)")
    verbs = command.add_subparsers(dest="verb", required=True, metavar="VERB")

    up = verbs.add_parser("up", help="generate the configuration, start in the background, wait until ready")
    up.set_defaults(handler=cmd_up)

    down = verbs.add_parser("down", help="stop it")
    down.add_argument("--purge", action="store_true", help="also delete its stored samples and log")
    down.set_defaults(handler=cmd_down)

    status = verbs.add_parser("status", help="is it running, and which processes does it scrape? (exit 3 if not)")
    status.set_defaults(handler=cmd_status)


def setup_from(settings: Settings) -> PrometheusSetup:
    return PrometheusSetup(
        root=prometheus.prometheus_root(settings.state_dir),
        port=settings.prometheus_port,
        scrape_interval_s=settings.prometheus_scrape_interval_s,
        start_timeout_s=settings.prometheus_start_timeout_s,
    )


def start_prometheus(settings: Settings) -> prometheus.UpResult | None:
    """For the stack: Prometheus started (or found running), or None after saying how to install it.

    Any other failure (a busy port, a crash on start) is raised: the operator asked for monitoring.
    """
    try:
        return prometheus.up(setup_from(settings))
    except PrometheusNotInstalled as exc:
        print(f"monitoring: {exc} — the stack runs without it", flush=True)
        return None


def stop_prometheus(settings: Settings) -> list[str]:
    return prometheus.down(setup_from(settings))


def cmd_up(args: argparse.Namespace) -> int:
    setup = setup_from(load_settings())
    result = prometheus.up(setup)
    if result.started:
        print(f"Prometheus ready at {result.url} after {result.seconds:.1f} s "
              f"(scrape interval {setup.scrape_interval_s:g} s; state in {setup.root})")
    else:
        print(f"Prometheus already running at {result.url}; configuration reloaded")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    for line in prometheus.down(setup_from(load_settings()), purge=args.purge):
        print(line)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    setup = setup_from(load_settings())
    current = prometheus.state(setup)
    if not current.running:
        why = f"stale pid file {setup.pid_file} (pid {current.pid} is gone)" if current.stale else "not running"
        print(f"prometheus: {why} — start it with `gdx prometheus up`")
        return prometheus.EXIT_NOT_RUNNING
    print(f"prometheus: running, pid {current.pid}, {setup.url}")
    targets = prometheus.target_health(setup)
    for target in targets:
        error = f" — {target.last_error}" if target.last_error else ""
        print(f"  {target.process:<24} {target.address:<22} {target.health}{error}")
    return 0
