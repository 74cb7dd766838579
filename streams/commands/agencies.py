"""`gdx simulate` and `gdx agencies truth|report`: the simulated source agencies on the command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from agencies.errors import SimulationError
from agencies.events import Route
from agencies.faults import KINDS, FaultRates
from agencies.population import AGENCIES
from agencies.simulation import Plan, Simulation, store_path
from agencies.truth import dump, report
from foundation.errors import GdxError
from monitoring import scrape_targets
from monitoring.health_server import HealthServer, Readiness
from schemas.catalog import load_schema_catalog
from streams.publisher_metrics import PublisherMetrics, simulation_ready
from streams.security.principals import agency_principal
from streams.security.signing_keys import SigningKeys
from streams.settings import Settings, load_settings
from streams.topic_catalog import load_catalog

PROCESS = "agencies"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sim = sub.add_parser("simulate", help="run the simulated agencies: initial load, life events, publishing")
    sim.add_argument(
        "--scale", type=int, default=10_000, help="persons in the population, 1,000..1,000,000 (default 10,000)"
    )
    sim.add_argument(
        "--seed", type=int, default=1, help="the population and its life events follow from it (default 1)"
    )
    sim.add_argument("--agency", default="all", help=f"all, or a comma-separated list of {', '.join(AGENCIES)}")
    sim.add_argument("--rate", type=float, default=10.0, help="life events per second (default 10)")
    sim.add_argument(
        "--duration", type=float, default=None, help="seconds of life events (default: until --count or Ctrl-C)"
    )
    sim.add_argument("--count", type=int, default=None, help="number of life events (0: initial load only)")
    sim.add_argument(
        "--store-dir", type=Path, default=None, help="where the agency stores live (default <state_dir>/agencies)"
    )
    sim.add_argument("--reset", action="store_true", help="delete the stores first and load a fresh population")
    sim.add_argument(
        "--load-workers",
        type=int,
        default=min(4, os.cpu_count() or 1),
        help="processes for the initial load, one or more agencies each (default: CPUs, at most 4)",
    )
    mode = sim.add_mutually_exclusive_group()
    mode.add_argument("--no-publish", action="store_true", help="write the stores and outboxes only")
    mode.add_argument("--publish-only", action="store_true", help="only drain the existing outboxes, then exit")
    sim.add_argument(
        "--report", type=Path, default=None, help="write the final report (counts, backlog, faults) as JSON here"
    )
    for kind in KINDS:
        sim.add_argument(
            f"--fault-{kind.replace('_', '-')}",
            type=float,
            default=0.0,
            metavar="RATE",
            dest=f"fault_{kind}",
            help=f"fault injection: probability of '{kind.replace('_', '-')}' (agencies/README.md; default 0: off)",
        )
    sim.set_defaults(handler=cmd_simulate, process=True)

    agencies = sub.add_parser("agencies", help="the simulated agencies' ground truth and fault reports")
    verbs = agencies.add_subparsers(dest="verb", required=True, metavar="VERB")
    truth = verbs.add_parser("truth", help="dump an agency's current state as JSON lines")
    truth.add_argument("--agency", required=True, help=", ".join(AGENCIES))
    truth.add_argument("--dataset", default=None, help="only this dataset (e.g. person)")
    truth.add_argument("--store-dir", type=Path, default=None)
    truth.add_argument("--output", type=Path, default=None, help="file to write (default stdout)")
    truth.set_defaults(handler=cmd_truth)
    rep = verbs.add_parser("report", help="entities, outbox progress and injected faults per agency, as JSON")
    rep.add_argument("--store-dir", type=Path, default=None)
    rep.set_defaults(handler=cmd_report)


def _store_dir(args: argparse.Namespace, settings: Settings) -> Path:
    return args.store_dir if args.store_dir is not None else settings.state_dir / "agencies"


def _agencies(text: str) -> tuple[str, ...]:
    if text.strip() == "all":
        return AGENCIES
    chosen = tuple(dict.fromkeys(a.strip().lower() for a in text.split(",") if a.strip()))
    unknown = [a for a in chosen if a not in AGENCIES]
    if unknown or not chosen:
        raise GdxError(f"unknown agency {', '.join(unknown) or repr(text)}", f"choose from all, {', '.join(AGENCIES)}")
    return chosen


def routes() -> dict[str, dict[str, Route]]:
    """Each agency's datasets with their catalog topic (unprefixed) and Appendix-2 code."""
    catalog = load_catalog()
    return {
        a: {d.name: Route(d.topic, d.codes[0]) for d in catalog.datasets if d.agency == a} for a in catalog.agencies
    }


def _apply_topics(settings: Settings) -> None:
    """Make the catalog topics exist; an unreachable broker is not fatal, the publishers retry.

    On a secured broker the agencies connect as themselves, who may not create topics: that is the
    operator's `gdx topics apply` (which `gdx up` runs), so nothing is applied from here."""
    from streams.topic_admin import apply_topics

    if settings.secured:
        print("gdx: topics are the operator's on a secured broker (`gdx topics apply`); not applied here", flush=True)
        return

    try:
        apply_topics(settings, load_catalog())
    except GdxError as exc:
        print(f"gdx: topics not applied ({exc}); publishing will retry until the broker answers", file=sys.stderr)


def cmd_simulate(args: argparse.Namespace) -> int:
    settings = load_settings()
    store_dir = _store_dir(args, settings)
    chosen = _agencies(args.agency)
    plan = Plan(
        store_dir=store_dir,
        scale=args.scale,
        seed=args.seed,
        agencies=chosen,
        rate=args.rate,
        duration_s=args.duration,
        count=args.count,
        faults=FaultRates(**{k: getattr(args, f"fault_{k}") for k in KINDS}),
        topic_prefix=settings.topic_prefix,
        reset=args.reset,
        load_workers=args.load_workers,
    )
    if args.publish_only:
        missing = [a for a in chosen if not store_path(store_dir, a).is_file()]
        if missing:
            raise SimulationError(
                f"no store for {', '.join(missing)} in {store_dir}",
                "run `gdx simulate` without --publish-only first",
            )
    if not args.no_publish:  # only once the plan and its stores are valid: a mistake makes no key material
        keys = SigningKeys.of(settings.state_dir.resolve())
        plan = replace(
            plan,
            kafka={a: settings.kafka_for(agency_principal(a)) for a in chosen},
            registry={a: settings.registry_for(agency_principal(a)) for a in chosen},
            register_schemas=settings.profile == "development",
            signers={a: keys.signer(a) for a in chosen},
        )
    agency_routes = routes()
    simulation = Simulation(
        plan, agency_routes, load_schema_catalog(), observer=PublisherMetrics(agency_routes, plan.agencies)
    )
    readiness = Readiness()
    publishing = plan.agencies if plan.kafka is not None else ()
    readiness.add_check("agencies", simulation_ready(simulation.progress, publishing))
    with HealthServer(
        PROCESS,
        "publisher",
        port=settings.agencies_metrics_port,
        readiness=readiness,
        targets_dir=scrape_targets.targets_dir(settings.state_dir),
        port_setting="GDX_AGENCIES_METRICS_PORT",
    ) as health:
        print(f"agencies: {health.url}/metrics", flush=True)
        if plan.kafka is not None:
            _apply_topics(settings)
        life = asyncio.run(simulation.run(load=not args.publish_only, life=not args.publish_only and args.count != 0))
    final: dict[str, Any] = {
        "life_events": dict(sorted(life.items())),
        "agencies": [report(a, store_path(store_dir, a)) for a in AGENCIES],
    }
    for item in final["agencies"]:
        faults = ", ".join(f"{k} {v:,}" for k, v in item["faults"].items()) or "none"
        print(
            f"{item['agency']:>5}: {item['entities']:,} entities, {item['outbox_events']:,} outbox events, "
            f"backlog {item['backlog']:,}, injected faults: {faults}"
        )
    if args.report is not None:
        args.report.write_text(json.dumps(final, indent=2) + "\n", encoding="utf-8")
    return 0


def cmd_truth(args: argparse.Namespace) -> int:
    settings = load_settings()
    agency = args.agency.strip().lower()
    if agency not in AGENCIES:
        raise GdxError(f"unknown agency {args.agency!r}", f"choose from {', '.join(AGENCIES)}")
    path = store_path(_store_dir(args, settings), agency)
    if args.output is None:
        dump(agency, path, sys.stdout, args.dataset)
    else:
        with args.output.open("w", encoding="utf-8") as out:
            count = dump(agency, path, out, args.dataset)
        print(f"{count:,} {agency} entities written to {args.output}", file=sys.stderr)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    store_dir = _store_dir(args, load_settings())
    found = [report(a, store_path(store_dir, a)) for a in AGENCIES if store_path(store_dir, a).is_file()]
    if not found:
        raise GdxError(f"no agency stores in {store_dir}", "run `gdx simulate` first, or give --store-dir")
    print(json.dumps(found, indent=2))
    return 0
