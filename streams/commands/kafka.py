"""`gdx kafka up|down|status|logs|fetch`: the local broker's life cycle, or a check of an external one."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from foundation.errors import GdxError
from streams.kafka_probe import require_cluster
from streams.local import kafka_launcher as launcher
from streams.local.kafka_jars import ensure_jars
from streams.settings import Settings, load_settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    kafka = sub.add_parser("kafka", help="run the project's own Kafka broker(s)")
    verbs = kafka.add_subparsers(dest="verb", required=True, metavar="VERB")

    up = verbs.add_parser("up", help="format (first time), start in the background, wait until ready")
    up.add_argument("--brokers", type=int, choices=(1, 3), default=None, help="1 (default) or 3 on loopback")
    up.set_defaults(handler=cmd_up)

    down = verbs.add_parser("down", help="stop the local broker(s) cleanly")
    down.add_argument("--purge", action="store_true", help="also delete the cluster's data and logs")
    down.set_defaults(handler=cmd_down)

    status = verbs.add_parser("status", help="is the cluster up and answering? (exit 3 if not)")
    status.set_defaults(handler=cmd_status)

    logs = verbs.add_parser("logs", help="show the local brokers' logs")
    logs.add_argument("-n", "--lines", type=int, default=40, help="lines per node (default 40)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines (Ctrl-C stops)")
    logs.set_defaults(handler=cmd_logs)

    fetch = verbs.add_parser("fetch", help="fetch the pinned Kafka jars with Maven (done by `up` when needed)")
    fetch.set_defaults(handler=cmd_fetch)


def cmd_up(args: argparse.Namespace) -> int:
    settings = load_settings()
    if settings.external_kafka:
        return _report_external(settings)
    launcher.up(settings, args.brokers or settings.kafka_brokers)
    return 0


def _report_external(settings: Settings) -> int:
    """With an external cluster nothing local is started or stopped: only check that it answers."""
    info = require_cluster(settings.kafka, settings.kafka_request_timeout_s)
    print(
        f"external cluster {settings.bootstrap_servers}: answering, {len(info.broker_ids)} broker(s), "
        f"cluster {info.cluster_id}; nothing local is started"
    )
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    settings = load_settings()
    if settings.external_kafka:
        print(f"external cluster {settings.kafka_bootstrap_servers}: nothing local to stop")
        return 0
    for line in launcher.down(settings, purge=args.purge):
        print(line)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    settings = load_settings()
    if settings.external_kafka:
        return _report_external(settings)
    local = launcher.local_nodes(settings)
    if not local:
        print(f"no local Kafka cluster in {launcher.cluster_dir(settings)} — start one with `gdx kafka up`")
        return launcher.EXIT_NOT_RUNNING
    healthy = True
    for state in map(launcher.node_state, local):
        if state.running:
            print(
                f"node {state.node.node_id}: running, pid {state.pid}, port {settings.client_port(state.node.node_id)}"
            )
        elif state.stale:
            healthy = False
            print(
                f"node {state.node.node_id}: NOT running — stale pid file {state.node.pid_file} (pid {state.pid} is "
                "gone: the broker crashed or was killed); `gdx kafka up` clears it and restarts the node"
            )
        else:
            healthy = False
            print(f"node {state.node.node_id}: stopped")
    if not healthy:
        return launcher.EXIT_NOT_RUNNING
    started = len(local)
    settings = settings.model_copy(update={"kafka_brokers": started})
    info = require_cluster(settings.kafka, settings.kafka_request_timeout_s)
    print(f"cluster {info.cluster_id}: answering at {settings.bootstrap_servers}, brokers {list(info.broker_ids)}")
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    settings = load_settings()
    local = launcher.local_nodes(settings)
    if not local:
        raise GdxError(f"no local Kafka cluster in {launcher.cluster_dir(settings)}", "start one with `gdx kafka up`")
    for node in local:
        print(f"==> node {node.node_id}: {node.log_file} <==")
        if node.log_file.is_file():
            print("\n".join(node.log_file.read_text(errors="replace").splitlines()[-args.lines :]))
    if args.follow:
        _follow([node.log_file for node in local])
    return 0


def _follow(paths: list[Path]) -> None:
    """Print lines appended to the logs until interrupted, like `tail -f`."""
    handles = {path: path.open("r", errors="replace") for path in paths if path.is_file()}
    for handle in handles.values():
        handle.seek(0, 2)
    while True:
        quiet = True
        for path, handle in handles.items():
            for line in handle:
                quiet = False
                sys.stdout.write(f"[{path.parent.name}] {line}")
        sys.stdout.flush()
        if quiet:
            time.sleep(0.5)


def cmd_fetch(args: argparse.Namespace) -> int:
    path = ensure_jars(load_settings())
    print(f"Kafka jars in {path}")
    return 0
