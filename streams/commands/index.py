"""`gdx worker`, `gdx index digest|rebuild|pending|show` and `gdx reconcile`: the linkage index."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from agencies.population import AGENCIES
from agencies.simulation import store_path
from agencies.truth import truth_lines
from foundation.errors import GdxError
from linkage.database import index_engine
from linkage.digest import index_digest
from linkage.index_store import IndexStore
from linkage.link_rules import CITIZEN, JURISTIC
from linkage.migrate import clear_replayed, copy_kept, drop_all, upgrade
from linkage.reconcile import KINDS, reconcile
from linkage.views import party_view
from streams.kafka_probe import require_cluster
from streams.rebuild import replay
from streams.registry_schemas import require_registry
from streams.security.principals import OPERATOR, WORKER
from streams.settings import Settings, load_settings
from streams.signature_check import signature_check
from streams.topic_catalog import load_catalog

EXIT_MISMATCH = 1


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    worker = sub.add_parser("worker", help="run a stream worker: agency topics → linkage index (scale out: start more)")
    worker.add_argument("--log-level-faust", default="warning", help="faust's own log level")
    worker.add_argument(
        "--audit-partition",
        type=int,
        metavar="N",
        help="the gdx.audit partition this worker chains its notices in (default: GDX_WORKER_AUDIT_PARTITION)",
    )
    worker.set_defaults(handler=cmd_worker, process=True)

    index = sub.add_parser("index", help="the linkage index")
    verbs = index.add_subparsers(dest="verb", required=True, metavar="VERB")
    digest = verbs.add_parser("digest", help="deterministic digest of the index's content")
    digest.set_defaults(handler=cmd_digest)
    rebuild = verbs.add_parser("rebuild", help="rebuild the index by replaying the topics (keeps what no topic holds)")
    rebuild.add_argument(
        "--into", metavar="URL", help="rebuild into this database instead, and compare it with the live index"
    )
    rebuild.set_defaults(handler=cmd_rebuild)
    pending = verbs.add_parser("pending", help="links waiting for a party the index does not hold yet")
    pending.set_defaults(handler=cmd_pending)
    show = verbs.add_parser("show", help="a citizen or juristic person with every linked record (JSON)")
    show.add_argument("kind", choices=(CITIZEN, JURISTIC))
    show.add_argument("id")
    show.set_defaults(handler=cmd_show)

    reconcile = sub.add_parser(
        "reconcile", help="compare the index with the agencies' ground truth (exit 1 on mismatch)"
    )
    reconcile.add_argument(
        "--store-dir", type=Path, default=None, help="the agencies' stores (default <state_dir>/agencies)"
    )
    reconcile.add_argument(
        "--agency",
        action="append",
        default=None,
        type=str.lower,
        choices=AGENCIES,
        help="only these agencies (repeatable)",
    )
    reconcile.set_defaults(handler=cmd_reconcile)


def _topic_datasets(settings: Settings) -> dict[str, str]:
    return {settings.topic(d.topic): f"{d.agency}.{d.name}" for d in load_catalog().datasets}


def cmd_worker(args: argparse.Namespace) -> int:
    from streams.worker import check_notice_chain, run_worker

    settings = load_settings()
    if args.audit_partition is not None:
        if args.audit_partition < 0:
            raise GdxError(f"--audit-partition {args.audit_partition} is negative", "give a partition number from 0")
        settings = settings.model_copy(update={"worker_audit_partition": args.audit_partition})
    require_cluster(settings.kafka_for(WORKER), settings.kafka_request_timeout_s)
    require_registry(settings.registry_for(WORKER))
    check_notice_chain(settings)
    run_worker(settings, args.log_level_faust)


def _live_engine(settings: Settings) -> Engine:
    """The index, migrated; a database that cannot be reached is one line, its password hidden."""
    engine = index_engine(settings.index_database_url)
    try:
        upgrade(engine)
    except OperationalError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        raise GdxError(
            f"the index database {engine.url.render_as_string(hide_password=True)} cannot be opened: {reason}",
            "start it, or fix GDX_INDEX_URL",
        ) from None
    return engine


def cmd_digest(args: argparse.Namespace) -> int:
    digest, record_count, link_count = index_digest(_live_engine(load_settings()))
    print(f"{digest}  {record_count} records, {link_count} links")
    return 0


def cmd_rebuild(args: argparse.Namespace) -> int:
    settings = load_settings()
    require_cluster(settings.kafka, settings.kafka_request_timeout_s)
    registry = require_registry(settings.registry_for(OPERATOR))
    live = _live_engine(settings)
    before = index_digest(live)
    if args.into:
        target = index_engine(args.into)
        drop_all(target)
        upgrade(target)
        copy_kept(live, target)
    else:
        target = live
        clear_replayed(target)
    verifier = signature_check(settings)
    report = asyncio.run(
        replay(
            target,
            settings.kafka,
            _topic_datasets(settings),
            verifier,
            registry.schema_by_id,
            max_version_jump=settings.max_version_jump,
        )
    )
    after = index_digest(target)
    print(
        f"replayed {report.records:,} records in {report.seconds:.1f} s ({report.rate:,.0f} records/s): "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(report.outcomes.items()))
    )
    print(f"live index    {before[0]}  {before[1]} records, {before[2]} links")
    print(f"rebuilt index {after[0]}  {after[1]} records, {after[2]} links")
    if before[0] != after[0]:
        print(
            "the rebuilt index differs from the live one (was the live index behind the topics, or a worker running?)"
        )
        return EXIT_MISMATCH
    print("identical")
    return 0


def cmd_pending(args: argparse.Namespace) -> int:
    pending = IndexStore(_live_engine(load_settings())).pending_links()
    for dataset, (count, oldest_ms) in sorted(pending.items()):
        print(f"{dataset:<28} {count:>8} pending, oldest linked at {oldest_ms} ms")
    print(f"total {sum(c for c, _ in pending.values())} pending links")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    view = party_view(_live_engine(load_settings()), args.kind, args.id)
    if view is None:
        raise GdxError(f"the index holds nothing for {args.kind} {args.id}", "check the ID, or wait for the worker")
    print(json.dumps(view, ensure_ascii=False, indent=2))
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    settings = load_settings()
    store_dir = args.store_dir or settings.state_dir / "agencies"
    agencies = args.agency or [a for a in AGENCIES if store_path(store_dir, a).is_file()]
    if not agencies:
        raise GdxError(f"no agency stores in {store_dir}", "run `gdx simulate` first, or give --store-dir")
    truth = (json.loads(line) for agency in agencies for line in truth_lines(agency, store_path(store_dir, agency)))
    report = reconcile(_live_engine(settings), truth, agencies)
    print(f"compared {report.compared:,} entities of {', '.join(agencies)} with the index")
    for kind in KINDS:
        print(f"  {kind:<8} {report.mismatches.get(kind, 0)}")
    for example in report.examples:
        print(f"  - {example}")
    print("no mismatches" if report.ok else f"{sum(report.mismatches.values())} mismatches")
    return 0 if report.ok else EXIT_MISMATCH
