"""`gdx up`: the whole local stack in the foreground until Ctrl-C, then a clean stop.

Start order: the broker, the schema registry, the topic catalog and the schemas in the registry
(and, on a secured broker, the ACLs and every stack principal's certificate), Alertmanager and
Prometheus (when installed), then the stack's own processes (`managed_processes`) — the alert
receiver, the lag monitor, the stream workers, the lookup API, the simulated agencies — each
awaited until its `/readyz` answers, each connecting as its own principal. Ctrl-C, SIGTERM or
SIGHUP stops everything in reverse order.
"""

from __future__ import annotations

import argparse
import os
import time

from agencies.errors import SimulationError
from agencies.population import AGENCIES as SIMULATED_AGENCIES
from agencies.ratios import sizes
from foundation.errors import GdxError
from monitoring import scrape_targets
from streams.commands.acl import apply_table
from streams.commands.prometheus import alertmanager_from, setup_from, start_alertmanager, start_prometheus
from streams.local import alertmanager, prometheus, registry_launcher
from streams.local import kafka_launcher as launcher
from streams.schema_publish import publish_repository
from streams.security.principals import AGENCIES, CONSENT, LOOKUP, MONITOR, WORKER
from streams.security.signing_keys import SigningKeys
from streams.settings import (
    CLIENT_VARIABLES,
    REGISTRY_VARIABLES,
    Settings,
    client_environment,
    load_settings,
    registry_environment,
)
from streams.stack import ManagedProcess, Stack, interrupt_on_stop_signals
from streams.topic_admin import apply_topics
from streams.topic_catalog import load_catalog

PROGRESS_EVERY_S = 10.0
COUNTERS = ("gdx_events_published_total", "gdx_events_applied_total", "gdx_events_dead_lettered_total")
LOAD_RECORDS_PER_PERSON = 4.2
LOAD_RECORDS_PER_S = 1_000
"""The initial load writes about 4.2 records per person at about 1,400 records/s on a laptop-class
machine (scale 2,000: 8,446 records in 6 s); the agencies' start timeout allows for a slower one."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    up = sub.add_parser("up", help="start the whole stack and keep it running until Ctrl-C")
    up.add_argument("--brokers", type=int, choices=(1, 3), default=None, help="local brokers (default 1)")
    up.add_argument("--workers", type=int, default=1, help="stream workers in the consumer group (default 1)")
    up.add_argument(
        "--scale", type=int, default=2_000, help="persons in the simulated agencies' population (default 2,000)"
    )
    up.add_argument("--rate", type=float, default=20.0, help="simulated life events per second (default 20)")
    up.add_argument("--no-agencies", action="store_true", help="start no simulated agencies")
    up.add_argument("--insecure-http", action="store_true", help="the lookup API on plain HTTP, for development only")
    up.set_defaults(handler=cmd_up, process=True)


def _check_args(args: argparse.Namespace) -> None:
    """Refuse bad flags before anything starts, not after the broker is up."""
    if not 1 <= args.workers <= 16:
        raise GdxError(f"--workers {args.workers} is out of range", "choose between 1 and 16")
    if args.rate <= 0:
        raise GdxError(f"--rate {args.rate:g} events/s is not positive", "give a rate above 0, e.g. --rate 20")
    try:
        sizes(args.scale)
    except SimulationError as exc:
        raise GdxError(f"--scale: {exc.what}", exc.fix) from None


def managed_processes(args: argparse.Namespace, settings: Settings) -> list[ManagedProcess]:
    """The stack's own processes in start order (stopped in reverse)."""
    processes = [
        ManagedProcess("alert receiver", ("alerts", "--serve")),
        ManagedProcess("lag monitor", ("lag", "--serve")),
    ]
    names = ["worker"] if args.workers == 1 else [f"worker-{n}" for n in range(1, args.workers + 1)]
    first = settings.notice_audit_partition  # each worker's notices in a chain of its own
    processes += [
        ManagedProcess(name, ("worker", "--audit-partition", str(first + n)), stop_timeout_s=60.0)
        for n, name in enumerate(names)
    ]
    processes.append(ManagedProcess("lookup API", ("serve", "--insecure-http") if args.insecure_http else ("serve",)))
    if not args.no_agencies:
        load_s = args.scale * LOAD_RECORDS_PER_PERSON / LOAD_RECORDS_PER_S
        processes.append(
            ManagedProcess(
                "agencies",
                ("simulate", "--scale", str(args.scale), "--rate", f"{args.rate:g}"),
                ready_timeout_s=120.0 + load_s,
            )
        )
    return processes


def _start_kafka(settings: Settings, brokers: int, stack: Stack) -> Settings:
    """The local broker(s), stopped with the stack unless they were running before it."""
    if settings.external_kafka:
        print(f"using the external Kafka cluster at {settings.bootstrap_servers}")
        return settings
    ours = launcher.nodes(settings, brokers)
    if not any(launcher.node_state(node).running for node in ours):
        stack.on_stop(lambda: launcher.down(settings) if any(node.pid_file.exists() for node in ours) else [])
    result = launcher.up(settings, brokers)
    return settings.model_copy(update={"kafka_brokers": len(result.info.broker_ids)})


def _start_registry(settings: Settings, stack: Stack) -> str:
    """The local schema registry, stopped with the stack unless it was running before it; an
    external one only checked. Its URL; a registry that does not answer stops the start here."""
    if settings.external_registry:
        url = str(settings.schema_registry_url)
        if not registry_launcher.probe(settings).ready():
            raise GdxError(
                f"the external schema registry at {url} does not answer",
                "start it, or fix GDX_SCHEMA_REGISTRY_URL and its _CA/_CERTFILE/_KEYFILE",
            )
        print(f"using the external schema registry at {url}", flush=True)
        return url
    files = registry_launcher.files_of(settings)
    if not registry_launcher.state(files).running:
        stack.on_stop(lambda: registry_launcher.down(settings) if files.pid_file.exists() else [])
    return registry_launcher.up(settings).url


def _start_monitoring(settings: Settings, stack: Stack) -> tuple[str | None, str | None]:
    """Prometheus and Alertmanager, each stopped with the stack unless it was running before; the
    URL of each, None when not installed."""
    delivery = alertmanager_from(settings)
    if not alertmanager.state(delivery).running:
        stack.on_stop(lambda: alertmanager.down(delivery) if alertmanager.state(delivery).pid is not None else [])
    alerts_url = start_alertmanager(settings)
    setup = setup_from(settings)
    if not prometheus.state(setup).running:
        stack.on_stop(lambda: prometheus.down(setup) if prometheus.state(setup).pid is not None else [])
    result = start_prometheus(settings)
    return (None if result is None else result.url), alerts_url


def _child_env(settings: Settings) -> dict[str, str]:
    """Children see the stack's settings, whatever the environment said (e.g. the chosen brokers).

    An external cluster is passed on with its connection security. The local broker is passed on
    as the local broker (its ports, brokers and security), not as the operator's connection: each
    child then connects as its own principal (`Settings.kafka_for`, fixed by the code it runs:
    the worker is gdx-worker, each agency's publisher agency-<a>), so no child holds the
    operator's certificate or login. The registry alike: an external one with its configured
    identity, the local one by its port (each child then shows it its own certificate)."""
    replaced = {name for key in CLIENT_VARIABLES for name in (key, f"GDX_{key}")} | set(REGISTRY_VARIABLES)
    inherited = {k: v for k, v in os.environ.items() if k not in replaced}
    if settings.external_kafka:
        connection = client_environment(settings.kafka)
    else:
        connection = {
            "GDX_KAFKA_PORT": str(settings.kafka_port),
            "GDX_KAFKA_BROKERS": str(settings.kafka_brokers),
            "GDX_KAFKA_SECURITY": settings.kafka_security,
            "GDX_KAFKA_INTERNAL_PORT": str(settings.internal_port(1)),
        }
    return {
        **inherited,
        **connection,
        **registry_environment(settings),
        "GDX_STATE_DIR": str(settings.state_dir.resolve()),
        "GDX_TOPIC_PREFIX": settings.topic_prefix,
    }


def _issue_principals(settings: Settings) -> None:
    """Every stack principal's certificate (or login) and every agency's signing key, made once
    here rather than by children starting at the same moment; the worker, started before the
    agencies, then finds every key on the trust list."""
    keys = SigningKeys.of(settings.state_dir.resolve())
    for agency in SIMULATED_AGENCIES:
        keys.signer(agency)
    if settings.external_kafka or not settings.secured:
        return
    for principal in (WORKER, LOOKUP, MONITOR, CONSENT, *AGENCIES):
        settings.kafka_as(principal)


def _row(label: str, value: str) -> None:
    print(f"  {label:<24} {value}")


def _watch(stack: Stack) -> None:
    """Until interrupted: a child that dies stops the stack; a progress line every few seconds."""
    began = time.monotonic()
    last = stack.totals(*COUNTERS)
    last_at = began
    while True:
        time.sleep(0.5)
        stack.check_alive()
        now = time.monotonic()
        if now - last_at < PROGRESS_EVERY_S:
            continue
        totals = stack.totals(*COUNTERS)
        published, applied, dead = (totals[name] for name in COUNTERS)
        rates = [(totals[name] - last[name]) / (now - last_at) for name in COUNTERS[:2]]
        elapsed = int(now - began)
        print(
            f"[{elapsed // 60:4d}m{elapsed % 60:02d}s] published {published:,.0f} ({rates[0]:,.1f}/s) | "
            f"applied {applied:,.0f} ({rates[1]:,.1f}/s) | dead-lettered {dead:,.0f}",
            flush=True,
        )
        last, last_at = totals, now


def cmd_up(args: argparse.Namespace) -> int:
    _check_args(args)
    settings = load_settings()
    interrupt_on_stop_signals()
    stack = Stack(
        settings.state_dir,
        scrape_targets.targets_dir(settings.state_dir),
        say=lambda line: print(line, flush=True),
        cafile=settings.lookup_ca_file,  # the lookup API's HTTPS, probed and scraped like Prometheus does
    )
    try:
        settings = _start_kafka(settings, args.brokers or settings.kafka_brokers, stack)
        registry_url = _start_registry(settings, stack)
        changes = apply_topics(settings, load_catalog())
        created = sum(1 for c in changes if c.action == "create")
        held, _ = publish_repository(settings)
        print(
            f"topics: {len(changes)} in the catalog, {created} created now; {held} schema versions "
            f"registered in {registry_url}",
            flush=True,
        )
        if settings.secured:
            print(f"acls: {apply_table(settings)}", flush=True)
            _issue_principals(settings)
        prometheus_url, alertmanager_url = _start_monitoring(settings, stack)
        env = _child_env(settings)
        for spec in managed_processes(args, settings):
            stack.start(spec, env)
        print("\nThe GDX stack is up:")
        _row("Kafka bootstrap servers", settings.bootstrap_servers)
        _row("schema registry", registry_url)
        _row("Prometheus", prometheus_url or f"not running — {prometheus.INSTALL_HINT}")
        _row("Alertmanager", alertmanager_url or f"not running — {alertmanager.INSTALL_HINT}")
        for process in stack.processes:
            _row(process.spec.name, process.metrics_url)
            if process.spec.name == "lookup API":
                _row("lookup API (OpenAPI)", process.metrics_url.removesuffix("/metrics") + "/docs")
                _row("status page", process.metrics_url.removesuffix("/metrics") + "/status")
        _row("logs", str(stack.log_dir))
        print("Every process also answers /healthz and /readyz. Press Ctrl-C to stop.", flush=True)
        _watch(stack)
    except KeyboardInterrupt:
        pass
    finally:
        print("\nstopping …", flush=True)
        stack.stop()
    print("stopped: everything the stack started is down", flush=True)
    return 0
