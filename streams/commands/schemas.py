"""`gdx schemas check|asyncapi|publish`: the evolution gate, the AsyncAPI document, the registry.

The schema machinery (models, Avro, Kafka client) is imported inside the handlers, so that every
other `gdx` command starts without paying for it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from foundation.errors import GdxError

if TYPE_CHECKING:
    from schemas.catalog import SchemaCatalog
    from streams.settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    schemas = sub.add_parser("schemas", help="event schemas: evolution gate, AsyncAPI, schema registry")
    verbs = schemas.add_subparsers(dest="verb", required=True, metavar="VERB")

    check = verbs.add_parser("check", help="every schema against its released versions (exit 1 on a break)")
    check.add_argument(
        "--release", action="store_true", help="after a clean check, release changed schemas as new versions"
    )
    check.add_argument("--sources", type=Path, default=None, help=argparse.SUPPRESS)
    check.add_argument("--released", type=Path, default=None, help=argparse.SUPPRESS)
    check.add_argument("--policy", type=Path, default=None, help=argparse.SUPPRESS)
    check.set_defaults(handler=cmd_check)

    asyncapi = verbs.add_parser("asyncapi", help="write the AsyncAPI 3.0 document (JSON) of every channel")
    asyncapi.add_argument("--out", type=Path, default=None, help="file to write (default: stdout)")
    asyncapi.set_defaults(handler=cmd_asyncapi)

    publish = verbs.add_parser(
        "publish", help="register every released schema in the registry, under its topic's subject"
    )
    publish.set_defaults(handler=cmd_publish)


def _catalog(sources: Path | None = None, released: Path | None = None) -> SchemaCatalog:
    from streams.schema_publish import repository_catalog

    return repository_catalog(sources, released)


def cmd_check(args: argparse.Namespace) -> int:
    from schemas.catalog import RELEASED_DIR
    from schemas.compatibility import POLICY_FILE, PolicyError, check_catalog, load_policy, release_pending
    from streams.settings import load_settings

    catalog = _catalog(args.sources, args.released)
    try:
        policy = load_policy(args.policy or POLICY_FILE)
        findings = check_catalog(catalog, policy)
    except PolicyError as exc:
        raise GdxError(str(exc), "fix compatibility.toml") from None
    for name in sorted(catalog.current):
        known = catalog.current[name]
        state = "released" if known.released else "changed, not yet released"
        print(f"{name:<48} v{known.version} {state:<26} {policy.mode(name).value}")
    refusals = registry_refusals(load_settings(), catalog)
    broken = {f.schema for f in findings} | {name for name, _ in refusals}
    if findings or refusals:
        for finding in findings:
            print(f"INCOMPATIBLE {finding}")
        for name, subject in refusals:
            print(f"INCOMPATIBLE {name}: the schema registry refuses it under {subject}")
        raise GdxError(
            f"{len(findings) + len(refusals)} compatibility break(s) in {len(broken)} schema(s)",
            "make the change compatible (add fields with defaults, never remove or retype one) "
            "or publish a new major version on a new topic",
        )
    pending = catalog.pending()
    if args.release:
        for path in release_pending(catalog, args.released or RELEASED_DIR):
            print(f"released {path}")
    elif pending:
        print(f"{len(pending)} changed schema(s) pass the gate; release with `gdx schemas check --release`")
    print(f"ok: {len(catalog.current)} schemas, {len(catalog.by_fingerprint)} versions, no compatibility break")
    return 0


def registry_refusals(settings: Settings, catalog: SchemaCatalog) -> list[tuple[str, str]]:
    """(schema, subject) of every changed schema the registry's own check refuses under the
    subject's level. Without a registry that answers, the repository's gate decides alone, and
    says so: the gate runs before a commit, where no registry may run."""
    from foundation.schema_registry import SchemaRegistry
    from schemas.fingerprint import schema_json
    from streams.schema_publish import subjects
    from streams.security.pki import Pki
    from streams.security.principals import OPERATOR

    if not settings.external_registry and not Pki.of(settings.state_dir.resolve()).ca_cert.is_file():
        print("no local schema registry (no project CA yet): checked by the repository's gate alone")
        return []  # and no CA or certificate is made by a check
    registry = SchemaRegistry(settings.registry_for(OPERATOR))
    if not registry.ready():
        print(f"schema registry {registry.access.url} does not answer: checked by the repository's gate alone")
        return []
    pending = {known.name: known for known in catalog.pending()}
    refused = [
        (entry.schema, entry.subject)
        for entry in subjects(settings, catalog)
        if entry.schema in pending
        and not registry.is_compatible(entry.subject, schema_json(pending[entry.schema].schema))
    ]
    print(f"schema registry {registry.access.url}: {len(pending)} changed schema(s) checked, {len(refused)} refused")
    return refused


def cmd_asyncapi(args: argparse.Namespace) -> int:
    from streams.asyncapi import build_document
    from streams.settings import load_settings
    from streams.topic_catalog import load_catalog

    document = build_document(load_catalog(), _catalog(), load_settings())
    text = json.dumps(document, ensure_ascii=False, indent=2) + "\n"
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
        channels, messages = len(document["channels"]), len(document["components"]["messages"])
        print(f"wrote {args.out}: {channels} channels, {messages} messages")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from streams.schema_publish import publish_repository
    from streams.settings import load_settings

    held, url = publish_repository(load_settings())
    print(f"registered the released schemas: {held} versions in the subjects of {url}")
    return 0
