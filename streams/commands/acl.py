"""`gdx acl apply|list`: the ACL table derived from the registries, made real on the cluster, and
the live view of it (missing and extra bindings)."""

from __future__ import annotations

import argparse
from pathlib import Path

from foundation.errors import GdxError
from linkage.consumers import load_consumers
from linkage.subscriptions import load_subscriptions
from schemas.catalog import load_schema_catalog
from streams.acl_admin import AclDrift, ConfluentAclAdmin, acl_admin_config, acl_drift, apply_acls, is_ours
from streams.acl_table import AclRow, acl_table, principals, wire_fields
from streams.security.pki import Pki
from streams.settings import Settings, load_settings
from streams.topic_catalog import load_catalog

REVOKED_FILE = "revoked-principals.txt"
HEADER = f"{'principal':<24} {'resource':<8} {'pattern':<8} {'name':<46} {'operation':<9} permission"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    acl = sub.add_parser("acl", help="the broker's ACLs, derived from the topic catalog and the registries")
    verbs = acl.add_subparsers(dest="verb", required=True, metavar="VERB")
    apply = verbs.add_parser("apply", help="create missing and delete extra bindings of our principals (idempotent)")
    listing = verbs.add_parser("list", help="the ACL table, and the cluster's drift from it when it answers")
    listing.add_argument("--offline", action="store_true", help="print the table only; do not ask the cluster")
    for verb, handler in ((apply, cmd_apply), (listing, cmd_list)):
        verb.add_argument(
            "--revoked",
            type=Path,
            default=None,
            metavar="FILE",
            help=f"principals that get no rights, one a line (default: <state_dir>/{REVOKED_FILE} if present)",
        )
        verb.set_defaults(handler=handler)


def revoked_principals(settings: Settings, path: Path | None) -> frozenset[str]:
    """Names from the revocation file (one a line, `#` comments and blank lines ignored), and on
    the local broker every principal `gdx pki revoke` revoked: its certificate still passes the TLS
    handshake (the broker reads no revocation list), so it is the ACLs that refuse it."""
    pki_revoked = frozenset() if settings.external_kafka else frozenset(Pki.of(settings.state_dir.resolve()).revoked())
    path = path or settings.state_dir / REVOKED_FILE
    if not path.is_file():
        if path != settings.state_dir / REVOKED_FILE:
            raise GdxError(f"no revocation file {path}", "name an existing file, one principal a line")
        return pki_revoked
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return pki_revoked | frozenset(line.removeprefix("User:") for line in lines if line)


def desired_table(settings: Settings, revoked: frozenset[str]) -> tuple[list[AclRow], list[str]]:
    """The table for this environment, and every principal it speaks for (revoked ones included)."""
    catalog, registry, subscriptions = load_catalog(), load_consumers(settings.consumers_file), load_subscriptions()
    rows = acl_table(
        catalog, registry, subscriptions, wire_fields(load_schema_catalog()), settings.topic_prefix, revoked
    )
    return rows, [*principals(catalog, registry, subscriptions), *sorted(revoked)]


def _admin(settings: Settings) -> ConfluentAclAdmin:
    timeout_s = settings.kafka_request_timeout_s
    return ConfluentAclAdmin(acl_admin_config(settings.kafka, timeout_s=timeout_s), timeout_s)


def cmd_apply(args: argparse.Namespace) -> int:
    settings = load_settings()
    print(apply_table(settings, args.revoked, verbose=True))
    return 0


def apply_table(settings: Settings, revoked_file: Path | None = None, verbose: bool = False) -> str:
    """Make the cluster's ACLs match the table (as the operator); the summary line. `verbose`:
    print each binding created or deleted first."""
    revoked = revoked_principals(settings, revoked_file)
    rows, names = desired_table(settings, revoked)
    found = apply_acls(
        _admin(settings), rows, lambda row: is_ours(row, names, settings.topic_prefix), settings.kafka_request_timeout_s
    )
    for row in found.missing if verbose else ():
        print(f"create  {row}")
    for row in found.extra if verbose else ():
        print(f"delete  {row}")
    summary = (
        f"{len(rows)} bindings: {len(found.missing)} created, {len(found.extra)} deleted, {len(found.held)} unchanged"
    )
    if found.in_step:
        summary += " — the cluster already matches the table"
    if found.foreign:
        summary += f"; {len(found.foreign)} bindings of other principals left alone (`gdx acl list` shows them)"
    if revoked:
        summary += f"; revoked, no rights: {', '.join(sorted(revoked))}"
    return summary


def _print_drift(drift: AclDrift) -> None:
    for state, listed in (("missing", drift.missing), ("extra", drift.extra), ("foreign", drift.foreign)):
        for row in listed:
            print(f"{state:<8} {row}")
    if drift.in_step:
        print(f"cluster: in step with the table ({len(drift.held)} bindings)", end="")
    else:
        print(
            f"cluster: {len(drift.missing)} missing, {len(drift.extra)} extra (run `gdx acl apply`), "
            f"{len(drift.held)} held",
            end="",
        )
    print(f"; {len(drift.foreign)} bindings of other principals, left alone" if drift.foreign else "")


def cmd_list(args: argparse.Namespace) -> int:
    settings = load_settings()
    revoked = revoked_principals(settings, args.revoked)
    rows, names = desired_table(settings, revoked)
    print(HEADER)
    for row in rows:
        print(row)
    print(f"{len(rows)} bindings for {len({r.principal for r in rows})} principals", end="")
    print(f"; revoked, no rights: {', '.join(sorted(revoked))}" if revoked else "")
    if args.offline:
        return 0
    try:
        drift = acl_drift(_admin(settings), rows, lambda row: is_ours(row, names, settings.topic_prefix))
    except GdxError as exc:
        print(f"cluster: drift not shown — {exc}")
        return 0
    _print_drift(drift)
    return 0
