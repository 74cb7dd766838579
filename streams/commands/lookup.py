"""`gdx serve` (the lookup API), `gdx audit verify|rotate-key`, `gdx consent grant|revoke|rotate-key` and
`gdx subject-token`."""

from __future__ import annotations

import argparse
import asyncio
import uuid
from collections.abc import Callable

from aiokafka.errors import KafkaError
from pydantic import ValidationError

from foundation.errors import GdxError, located
from linkage.audit import (
    ANCHOR_TOPIC,
    AUDIT_KEY_OWNER,
    AUDIT_TOPIC,
    NOTICE_KEY_OWNER,
    UNSEALED,
    VerifyRules,
    verify_topic,
)
from linkage.consent import (
    CONSENT_KEY_OWNER,
    CONSENT_TOPIC,
    Consent,
    ConsentRecord,
    ConsentRevocation,
    publish_consents,
)
from linkage.consumers import ACCESS_LOG, load_consumers
from linkage.index_store import now_ms
from linkage.subject_tokens import MAX_LIFETIME_S, issue
from schemas.event_signatures import TrustList, TrustListError
from schemas.identifiers import thai_id_problem
from streams.commands.signing import overlap_s, valid_when
from streams.kafka_probe import quiet_client_logs, require_cluster
from streams.security.principals import CONSENT, LOOKUP, OPERATOR
from streams.security.signing_keys import DEFAULT_OVERLAP_S, SigningKeys
from streams.settings import Settings, load_settings

AUTH_EVENT_HELP = (
    "the id of the authentication event in which the person acted (e.g. their ThaID sign-in), kept with the record"
)

EXIT_TAMPERED = 1
PORTAL = "citizen-portal"
DAY_MS = 86_400_000


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser("serve", help="run the lookup API (consent, purpose, least data, audited) until Ctrl-C")
    serve.add_argument("--port", type=int, default=None, help="port (default GDX_LOOKUP_PORT; 0: a free one)")
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        choices=range(1, 17),
        metavar="N",
        help="processes sharing the port, 1-16 (default GDX_LOOKUP_WORKERS, 1); each writes its own "
        "gdx.audit partition",
    )
    serve.add_argument(
        "--insecure-http",
        action="store_true",
        help="serve plain HTTP instead of HTTPS, for development only (as GDX_LOOKUP_TLS=off)",
    )
    serve.set_defaults(handler=cmd_serve, process=True)

    audit = sub.add_parser("audit", help="the audit trail of the lookup API")
    audit_verbs = audit.add_subparsers(dest="verb", required=True, metavar="VERB")
    verify = audit_verbs.add_parser(
        "verify",
        help="check every hash chain and signature of gdx.audit with the public keys only, and that it reaches "
        "every head anchored on gdx.audit.anchors (exit 1: tampered, or a tail left unsealed)",
    )
    verify.add_argument("--topic", default=None, help="another topic to check (default: gdx.audit under the prefix)")
    verify.set_defaults(handler=cmd_audit_verify)
    rotate = audit_verbs.add_parser(
        "rotate-key", help="a new audit signing key; the older ones stay valid --overlap-hours more"
    )
    rotate.add_argument("--overlap-hours", type=float, default=DEFAULT_OVERLAP_S / 3600)
    rotate.add_argument(
        "--notices", action="store_true", help="rotate the stream workers' notice key instead of the lookup API's"
    )
    rotate.set_defaults(handler=cmd_audit_rotate_key)

    consent = sub.add_parser("consent", help="consent records on gdx.consent.v1")
    consent_verbs = consent.add_subparsers(dest="verb", required=True, metavar="VERB")
    grant = consent_verbs.add_parser("grant", help="record a person's consent for a consumer and purpose")
    grant.add_argument("--subject", required=True, help="the person's 13-digit citizen (or juristic) ID")
    grant.add_argument("--consumer", required=True)
    grant.add_argument("--purpose", required=True)
    grant.add_argument("--datasets", required=True, help="comma-separated <agency>.<dataset> list")
    grant.add_argument("--days", type=float, default=30.0, help="valid for this many days (default 30)")
    grant.add_argument("--one-time", action="store_true", help="used up by the first lookup it allows")
    grant.add_argument("--consent-id", default=None, help="default: a new UUID")
    grant.add_argument("--auth-event-id", required=True, help=AUTH_EVENT_HELP)
    grant.set_defaults(handler=cmd_consent_grant)
    revoke = consent_verbs.add_parser(
        "revoke", help="revoke a consent, for good (effective for the next request once applied)"
    )
    revoke.add_argument("consent_id")
    revoke.add_argument("--auth-event-id", required=True, help=AUTH_EVENT_HELP)
    revoke.set_defaults(handler=cmd_consent_revoke)
    consent_rotate = consent_verbs.add_parser(
        "rotate-key", help="a new consent-service signing key; the older ones stay valid --overlap-hours more"
    )
    consent_rotate.add_argument("--overlap-hours", type=float, default=DEFAULT_OVERLAP_S / 3600)
    consent_rotate.set_defaults(handler=cmd_consent_rotate_key)

    token = sub.add_parser(
        "subject-token",
        help="sign, as a consumer (the citizen portal), the short-lived token that proves a signed-in person "
        "to the access log (the consumer's key is made on first use)",
    )
    token.add_argument("subject", metavar="CITIZEN_ID")
    token.add_argument("--consumer", default=PORTAL, help=f"the consumer that signs (default {PORTAL})")
    token.add_argument(
        "--lifetime-s", type=float, default=MAX_LIFETIME_S, help=f"seconds it is valid, at most {MAX_LIFETIME_S}"
    )
    token.set_defaults(handler=cmd_subject_token)


def _reachable(settings: Settings, principal: str = OPERATOR) -> None:
    require_cluster(settings.kafka_for(principal), settings.kafka_request_timeout_s)


def cmd_serve(args: argparse.Namespace) -> int:
    from streams.lookup_processes import LookupProcesses, check_audit_chains, run_until_stopped
    from streams.lookup_server import LookupServer, api_url, bind, server_tls, warn_if_plain

    settings = load_settings()
    if args.workers is not None:
        settings = settings.model_copy(update={"lookup_workers": args.workers})
    if args.insecure_http:
        settings = settings.model_copy(update={"lookup_tls": "off"})
    server_tls(settings)  # the certificate issued (or an operator's checked) once, before any process starts
    warn_if_plain(settings)
    _reachable(settings, LOOKUP)
    check_audit_chains(settings, settings.lookup_workers)
    port = settings.lookup_port if args.port is None else args.port
    if settings.lookup_workers == 1:
        server = LookupServer(settings, port=port)
        print(f"lookup API: {server.url} (OpenAPI: {server.url}/docs); Ctrl-C stops", flush=True)
        run_until_stopped(server)
    else:
        sock = bind(settings.lookup_host, port)
        url = api_url(settings, sock.getsockname()[1])
        print(
            f"lookup API: {url} (OpenAPI: {url}/docs) in {settings.lookup_workers} processes; Ctrl-C stops", flush=True
        )
        LookupProcesses(settings, sock, settings.lookup_workers, args.log_level).run()
    print("lookup API: stopped", flush=True)
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    settings = load_settings()
    try:
        trust = TrustList.load(settings.audit_trust_list_path)
    except TrustListError as exc:
        raise GdxError(
            f"audit trust list: {exc}", "give the lookup service's public audit keys (GDX_AUDIT_TRUST_LIST_FILE)"
        ) from None
    _reachable(settings)
    topic = args.topic or settings.topic(AUDIT_TOPIC)
    rules = VerifyRules(trust, settings.audit_checkpoint_interval_s, now_ms())
    with quiet_client_logs():
        report = asyncio.run(verify_topic(settings.kafka, topic, settings.topic(ANCHOR_TOPIC), rules))
    for partition in sorted(report.records):
        anchored = report.anchored.get(partition)
        print(
            f"partition {partition}: {report.records[partition]} records, {report.checkpoints[partition]} checkpoints, "
            f"{report.unsealed[partition]} after the last checkpoint; "
            + ("no anchored head" if anchored is None else f"reaches its anchored head, seq {anchored}")
        )
    for problem in report.problems:
        where = "anchors" if problem.partition < 0 else f"partition {problem.partition}"
        print(f"{problem.kind} {where} offset {problem.offset}: {problem.what}")
    if report.ok:
        print(f"{topic}: every chain intact, signed and sealed")
        return 0
    tampered = [p for p in report.problems if p.kind != UNSEALED]
    print(f"{topic}: {len(tampered)} signs of tampering, {len(report.problems) - len(tampered)} unsealed tails")
    return EXIT_TAMPERED


def _rotate(keys: SigningKeys, owner: str, overlap_hours: float, what: str, then: str) -> int:
    new = keys.rotate(owner, overlap_s=overlap_s(overlap_hours))
    print(
        f"new {what} {new.key_id}, valid from {valid_when(new.not_before_ms)}; the earlier keys stay valid "
        f"{overlap_hours:g} h more. {then} ({keys.trust_list_path})."
    )
    return 0


def cmd_audit_rotate_key(args: argparse.Namespace) -> int:
    keys = SigningKeys(load_settings().audit_keys_path)
    if args.notices:
        then = "Restart the stream workers to sign their notices with it, and give auditors the new trust list"
        return _rotate(keys, NOTICE_KEY_OWNER, args.overlap_hours, "notice key", then)
    then = "Restart the lookup API to sign with it, and give auditors the new trust list"
    return _rotate(keys, AUDIT_KEY_OWNER, args.overlap_hours, "audit key", then)


def cmd_consent_rotate_key(args: argparse.Namespace) -> int:
    keys = SigningKeys(load_settings().consent_keys_path)
    then = "The next consent record is signed with it; give the lookup API the new trust list"
    return _rotate(keys, CONSENT_KEY_OWNER, args.overlap_hours, "consent key", then)


def cmd_subject_token(args: argparse.Namespace) -> int:
    problem = thai_id_problem(args.subject)
    if problem is not None:
        raise GdxError(f"{args.subject!r}: {problem}", "give the person's 13-digit citizen ID")
    if not 0 < args.lifetime_s <= MAX_LIFETIME_S:
        raise GdxError(f"--lifetime-s {args.lifetime_s:g} is out of range", f"give 1 to {MAX_LIFETIME_S} seconds")
    settings = load_settings()
    consumer = load_consumers(settings.consumers_file).consumers.get(args.consumer)
    if consumer is None or not any(ACCESS_LOG in p.operations for p in consumer.purposes.values()):
        raise GdxError(
            f"consumer {args.consumer!r} has no purpose that shows an access log",
            "give a consumer of the registry with an access-log purpose (the citizen portal)",
        )
    keys = SigningKeys(settings.subject_token_keys_path)
    print(issue(keys.signer(consumer.id), args.subject, args.lifetime_s))
    return 0


def _publish(settings: Settings, make: Callable[[int], Consent]) -> Consent:
    """As the consent service: its principal and its signing key, the record made for the moment
    it is signed (after a first key is made, so the record's time falls within the key's validity);
    bad arguments are one line before anything is reached."""
    from streams.lookup_app import consent_signer

    try:
        make(now_ms())
    except ValidationError as exc:
        raise GdxError(f"invalid consent: {located(exc.errors())}", "fix the arguments") from None
    _reachable(settings, CONSENT)
    signer = consent_signer(settings)
    record = make(now_ms())
    try:
        with quiet_client_logs():
            asyncio.run(publish_consents(settings.kafka_for(CONSENT), settings.topic(CONSENT_TOPIC), [record], signer))
    except KafkaError as exc:
        raise GdxError(f"consent not written: {exc!r}", "check the cluster with `gdx kafka status`") from None
    return record


def cmd_consent_grant(args: argparse.Namespace) -> int:
    consent_id = args.consent_id or str(uuid.uuid4())

    def grant(now: int) -> ConsentRecord:
        return ConsentRecord(
            consent_id=consent_id,
            subject_id=args.subject,
            consumer=args.consumer,
            purpose=args.purpose,
            datasets=[d.strip() for d in args.datasets.split(",") if d.strip()],
            kind="one-time" if args.one_time else "periodic",
            granted_ms=now,
            expires_ms=now + int(args.days * DAY_MS),
            auth_event_id=args.auth_event_id,
        )

    print(_publish(load_settings(), grant).consent_id)
    return 0


def cmd_consent_revoke(args: argparse.Namespace) -> int:
    def revoke(now: int) -> ConsentRevocation:
        return ConsentRevocation(consent_id=args.consent_id, revoked_ms=now, auth_event_id=args.auth_event_id)

    _publish(load_settings(), revoke)
    print(f"revoked {args.consent_id}")
    return 0
