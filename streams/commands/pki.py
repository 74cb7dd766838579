"""`gdx pki issue|list|revoke`: the project's certificate authority and its members' certificates.

The CA is made on first use under `<state_dir>/pki/`. Each principal of the exchange (an agency,
a backbone service, a consumer agency, the operator) holds a certificate with CN=<name>, which the
secured broker maps to `User:<name>`. A revoked principal is recorded in `revoked.json`: no new
certificate is issued for it, and the ACLs derived for the cluster give it nothing.
"""

from __future__ import annotations

import argparse

from streams.security.pki import Pki
from streams.settings import load_settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    pki = sub.add_parser("pki", help="the project's CA: issue, list and revoke members' certificates")
    verbs = pki.add_subparsers(dest="verb", required=True, metavar="VERB")

    issue = verbs.add_parser("issue", help="issue (or reissue) a certificate for a principal, CN=NAME")
    issue.add_argument("name", metavar="NAME", help="the principal, e.g. agency-dopa or consumer-revenue")
    issue.add_argument(
        "--server", action="store_true", default=None, help="also a TLS server (serverAuth, 127.0.0.1/localhost)"
    )
    issue.set_defaults(handler=cmd_issue)

    listing = verbs.add_parser("list", help="every issued certificate: name, serial, not-after, revoked")
    listing.set_defaults(handler=cmd_list)

    revoke = verbs.add_parser("revoke", help="revoke a principal's certificate (its ACLs go with it)")
    revoke.add_argument("name", metavar="NAME")
    revoke.set_defaults(handler=cmd_revoke)


def _pki() -> Pki:
    return Pki.of(load_settings().state_dir.resolve())


def cmd_issue(args: argparse.Namespace) -> int:
    issued = _pki().issue(args.name, server=args.server)
    print(f"issued {args.name}: certificate {issued.cert}, key {issued.key} (0600), CA {issued.ca}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    pki = _pki()
    found = pki.list()
    if not found:
        print(f"no certificates in {pki.root} — `gdx pki issue NAME` issues one (the CA is made then)")
        return 0
    width = max(len(info.name) for info in found)
    print(f"{'name':<{width}}  {'serial':<40}  {'not after (UTC)':<20}  revoked")
    for info in found:
        print(
            f"{info.name:<{width}}  {info.serial:<40}  {info.not_after:%Y-%m-%d %H:%M:%S}  "
            f"{'REVOKED' if info.revoked else 'no'}"
        )
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    info = _pki().revoke(args.name)
    print(f"revoked {info.name} (serial {info.serial}); `gdx acl apply` removes its ACLs")
    return 0
