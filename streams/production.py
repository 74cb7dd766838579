"""`GDX_PROFILE=production`: a process of the exchange refuses to start on a set-up that would be
unsafe with real citizens' data, and says why in one line per problem.

Refused: a plaintext connection to Kafka (an external cluster without TLS, or the local broker
without `GDX_KAFKA_SECURITY`), a schema registry reached without TLS, a lookup API on plain HTTP, a
consumer registry that still holds one of the demo API keys the repository ships, a private key or
secret file that the group or others may read (the audit and event signing keys, the API's TLS key,
the Kafka and registry client keys and passwords, the project CA's keys), and an index URL that
carries its password in clear (PostgreSQL reads it from a password file instead: `PGPASSFILE`). The
development profile, `make run`'s, allows the demo keys; its wire is secured all the same once the
local broker runs TLS.
"""

from __future__ import annotations

import hashlib
import stat
import sys
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from foundation.errors import GdxError
from linkage.consumers import DEMO_API_KEYS, load_consumers
from streams.security.pki import pki_root
from streams.security.scram import ScramStore
from streams.security.signing_keys import SigningKeys
from streams.settings import Settings

Problem = tuple[str, str]
"""(what is unsafe, what to do)"""


def _readable_by_others(paths: Iterable[Path]) -> list[Problem]:
    return [
        (f"{path} may be read by others (mode {stat.S_IMODE(path.stat().st_mode):04o})", f"chmod 600 {path}")
        for path in paths
        if path.is_file() and path.stat().st_mode & 0o077
    ]


def _kafka(settings: Settings) -> list[Problem]:
    protocol = settings.kafka_protocol
    if protocol in ("SSL", "SASL_SSL"):
        return []
    where = settings.bootstrap_servers
    if settings.external_kafka:
        return [
            (f"the Kafka cluster at {where} is reached in {protocol}", "set KAFKA_SECURITY_PROTOCOL=SSL or SASL_SSL")
        ]
    return [(f"the local Kafka broker at {where} runs {protocol}", "set GDX_KAFKA_SECURITY=mtls (or scram)")]


def _registry(settings: Settings) -> list[Problem]:
    url = settings.schema_registry_url
    if url is None or url.startswith("https://"):
        return []  # the local registry speaks HTTPS with client certificates only
    return [(f"the schema registry at {url} is reached without TLS", "give GDX_SCHEMA_REGISTRY_URL an https:// URL")]


def _lookup_http(settings: Settings) -> list[Problem]:
    if settings.lookup_tls == "on":
        return []
    return [("the lookup API would serve plain HTTP (GDX_LOOKUP_TLS=off or --insecure-http)", "serve it over HTTPS")]


def _demo_keys(settings: Settings) -> list[Problem]:
    demo = {hashlib.sha256(key.encode()).hexdigest(): key for key in DEMO_API_KEYS}
    registry = load_consumers(settings.consumers_file)
    return [
        (f"consumer {consumer.id} still has the shipped demo API key", "give it a key of its own (api_key_sha256)")
        for consumer in registry.consumers.values()
        if consumer.key_sha256 in demo
    ]


def _index_password(settings: Settings) -> list[Problem]:
    try:
        url = make_url(settings.index_database_url)
    except (ArgumentError, ValueError):
        return []  # the index itself reports a malformed URL, without its password
    if url.password is None:
        return []
    return [
        ("the index URL carries its password in clear (GDX_INDEX_URL)", "drop it from the URL and put it in PGPASSFILE")
    ]


def _secrets(settings: Settings) -> list[Problem]:
    configured = [
        settings.lookup_tls_key,
        settings.kafka_ssl_keyfile,
        settings.kafka_sasl_password_file,
        settings.schema_registry_keyfile,
        settings.schema_registry_password_file,
    ]
    local = [
        *pki_root(settings.state_dir).glob("*.key"),
        *ScramStore.of(settings.state_dir).root.glob("*.password"),
        *SigningKeys.of(settings.state_dir).root.glob("*.key"),
        *settings.audit_keys_path.glob("*.key"),
        *settings.subject_token_keys_path.glob("*.key"),
    ]
    return _readable_by_others([path for path in configured if path is not None] + sorted(local))


def unsafe_setup(settings: Settings) -> list[Problem]:
    """Everything the production profile refuses in this configuration, in a stable order."""
    checks = (_kafka, _registry, _lookup_http, _demo_keys, _secrets, _index_password)
    return [problem for check in checks for problem in check(settings)]


def refuse_unsafe(settings: Settings) -> None:
    """Under the production profile, one line per problem on stderr, then a GdxError; else nothing."""
    if settings.profile != "production":
        return
    problems = unsafe_setup(settings)
    for what, fix in problems:
        print(f"gdx: production: {what} — {fix}", file=sys.stderr)
    if problems:
        raise GdxError(f"refusing to start: {len(problems)} unsafe setting(s) under GDX_PROFILE=production")
