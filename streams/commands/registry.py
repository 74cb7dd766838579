"""`gdx registry up|down|status|fetch`: the local schema registry's life cycle, or a check of an external one."""

from __future__ import annotations

import argparse

from streams.local import registry_launcher as launcher
from streams.local.registry_build import ensure_build
from streams.settings import Settings, load_settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    registry = sub.add_parser("registry", help="run the project's own schema registry (Apicurio)")
    verbs = registry.add_subparsers(dest="verb", required=True, metavar="VERB")

    up = verbs.add_parser("up", help="start in the background (HTTPS, mutual TLS) and wait until it answers")
    up.set_defaults(handler=cmd_up)

    down = verbs.add_parser("down", help="stop the local registry")
    down.add_argument("--purge", action="store_true", help="also delete its database and log")
    down.set_defaults(handler=cmd_down)

    status = verbs.add_parser("status", help="is the registry up and answering? (exit 3 if not)")
    status.set_defaults(handler=cmd_status)

    fetch = verbs.add_parser("fetch", help="build the pinned registry with Maven (done by `up` when needed)")
    fetch.set_defaults(handler=cmd_fetch)


def _report_external(settings: Settings, verb: str) -> int:
    """With an external registry nothing local is started or stopped: only check that it answers."""
    url = settings.schema_registry_url
    if not launcher.probe(settings).ready():
        print(f"external schema registry {url}: NOT answering; nothing local is {verb}")
        return launcher.EXIT_NOT_RUNNING
    print(f"external schema registry {url}: answering; nothing local is {verb}")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    settings = load_settings()
    if settings.external_registry:
        return _report_external(settings, "started")
    launcher.up(settings)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    settings = load_settings()
    if settings.external_registry:
        print(f"external schema registry {settings.schema_registry_url}: nothing local to stop")
        return 0
    for line in launcher.down(settings, purge=args.purge):
        print(line)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    settings = load_settings()
    if settings.external_registry:
        return _report_external(settings, "running")
    files = launcher.files_of(settings)
    current = launcher.state(files)
    if current.stale:
        print(
            f"schema registry: NOT running — stale pid file {files.pid_file} (pid {current.pid} is gone: it "
            "crashed or was killed); `gdx registry up` clears it and starts it"
        )
        return launcher.EXIT_NOT_RUNNING
    if not current.running:
        print(f"schema registry: stopped (state in {files.root}) — start it with `gdx registry up`")
        return launcher.EXIT_NOT_RUNNING
    if not launcher.probe(settings).ready():
        print(f"schema registry: running (pid {current.pid}) but NOT answering at {settings.local_registry_url}")
        return launcher.EXIT_NOT_RUNNING
    print(f"schema registry: running (pid {current.pid}), answering at {settings.local_registry_url}")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    jar = ensure_build(load_settings())
    print(f"schema registry build in {jar.parent}")
    return 0
