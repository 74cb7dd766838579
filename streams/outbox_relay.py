"""`python -m streams.outbox_relay --store dopa.db`: one agency's outbox drained to Kafka in a
process of its own (one JSON line of stats a second), as an agency would run its relay beside its
own system rather than inside `gdx simulate`. The cluster is the settings' (or --bootstrap-servers);
the relay connects as the store's agency (`agency-<a>`, the agency named by the store's file,
`<a>.db`, or --agency), whose ACLs allow its own topics only, and asks the schema registry for
its schemas' ids as that agency."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from agencies.outbox import ProducerConfig, Publisher, PublisherBusy
from agencies.population import AGENCIES
from agencies.schema_ids import SchemaIds
from foundation.errors import GdxError
from foundation.schema_registry import SchemaRegistry
from schemas.catalog import load_schema_catalog
from streams.security.principals import agency_principal
from streams.security.signing_keys import SigningKeys
from streams.settings import load_settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m streams.outbox_relay", description="drain one agency's outbox to Kafka"
    )
    parser.add_argument("--store", type=Path, required=True, help="the agency's SQLite store")
    parser.add_argument("--bootstrap-servers", default=None, help="default: the settings' cluster")
    parser.add_argument("--topic-prefix", default=None, help="default: GDX_TOPIC_PREFIX")
    parser.add_argument("--agency", default=None, help="whose outbox it is; default: the store's name (dopa.db: dopa)")
    parser.add_argument("--batch-rows", type=int, default=2_000)
    parser.add_argument("--until-drained", action="store_true", help="exit once the outbox is empty")
    args = parser.parse_args(argv)
    if not args.store.is_file():
        print(f"outbox relay: no store at {args.store}", file=sys.stderr)
        return 2
    agency = args.agency or args.store.stem
    if agency not in AGENCIES:
        print(f"outbox relay: {args.store} is no agency's store; name the agency with --agency", file=sys.stderr)
        return 2
    overrides: dict[str, object] = {}
    if args.bootstrap_servers:
        overrides["kafka_bootstrap_servers"] = args.bootstrap_servers
    if args.topic_prefix is not None:
        overrides["topic_prefix"] = args.topic_prefix
    try:
        settings = load_settings(**overrides)
        publisher = Publisher(
            args.store,
            ProducerConfig(settings.kafka_for(agency_principal(agency))),
            SchemaIds(
                load_schema_catalog(),
                SchemaRegistry(settings.registry_for(agency_principal(agency))),
                register=settings.profile == "development",
            ),
            topic_prefix=settings.topic_prefix,
            signer=SigningKeys.of(settings.state_dir.resolve()).signer(agency),
            batch_rows=args.batch_rows,
            on_progress=lambda s: print(json.dumps(asdict(s)), flush=True),
        )
    except (PublisherBusy, GdxError) as exc:  # another relay on this outbox, or settings to fix
        print(f"outbox relay: {exc}", file=sys.stderr)
        return 2
    try:
        stats = asyncio.run(publisher.run(until_drained=args.until_drained))
    finally:
        publisher.close()
    print(json.dumps(asdict(stats)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
