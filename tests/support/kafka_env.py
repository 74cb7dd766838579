"""Test-side helpers for the real broker: free ports, a started cluster, isolated settings."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from foundation.kafka_clients import KafkaClients
from foundation.ports import free_port_block
from streams.local import kafka_launcher as launcher
from streams.security.pki import pki_root
from streams.settings import CLIENT_VARIABLES, Settings, client_environment


def clients(bootstrap: str) -> KafkaClients:
    """The operator's clients of `bootstrap`, secured as `gdx` itself would reach that cluster
    (the KAFKA_SECURITY_PROTOCOL / KAFKA_SSL_* variables the session sets for its broker)."""
    return Settings(kafka_bootstrap_servers=bootstrap).kafka


_shared_pki: list[Path] = []
"""The PKI of the cluster the session reaches as its operator: every other cluster a test starts
(`running_cluster`) takes the same CA, so that operator's certificate reaches them all."""


@contextmanager
def reached_as_operator(settings: Settings) -> Iterator[None]:
    """The local cluster of `settings` reached as an external secured cluster is: its operator's
    connection security in the environment (never the bootstrap servers, which each test names),
    so in-process `Settings(kafka_bootstrap_servers=…)` and every `gdx` child connect as a user
    pointing the stack at a secured cluster would; the environment is restored afterwards."""
    connection = client_environment(settings.kafka)
    connection.pop("KAFKA_BOOTSTRAP_SERVERS")
    saved = {name: os.environ.get(name) for name in CLIENT_VARIABLES}
    os.environ.update(connection)
    _shared_pki.append(pki_root(settings.state_dir.resolve()))
    try:
        yield
    finally:
        _shared_pki.remove(pki_root(settings.state_dir.resolve()))
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def local_settings(state_dir: Path, brokers: int) -> Settings:
    return Settings(
        state_dir=state_dir,
        kafka_port=free_port_block(2 * brokers),
        kafka_brokers=brokers,
        kafka_heap="384m",
        kafka_start_timeout_s=120,
    )


@contextmanager
def running_cluster(state_dir: Path, brokers: int) -> Iterator[Settings]:
    """Start the project's own cluster (secured, as by default) for a test scope and always stop
    it afterwards; it shares the CA of the cluster the session reaches as its operator, if any.

    Its data and logs stay in pytest's temporary directory (the last few runs are kept), so a
    failure can be read in the brokers' own logs.
    """
    settings = local_settings(state_dir, brokers)
    if _shared_pki and not pki_root(state_dir.resolve()).exists():
        shutil.copytree(_shared_pki[-1], pki_root(state_dir.resolve()))
    try:
        launcher.up(settings, brokers, report=False)
        yield settings
    finally:
        launcher.down(settings)


@contextmanager
def secured_cluster(state_dir: Path, brokers: int, security: str = "mtls", prefix: str = "") -> Iterator[Settings]:
    """The project's own cluster with `security` on (`mtls`: TLS everywhere, principals by
    certificate, deny by default), always stopped afterwards (logs kept in tmp)."""
    base = free_port_block(3 * brokers)
    settings = Settings(
        state_dir=state_dir,
        kafka_port=base,
        kafka_internal_port=base + 2 * brokers,
        kafka_brokers=brokers,
        kafka_heap="384m",
        kafka_start_timeout_s=120,
        kafka_security=security,  # type: ignore[arg-type]
        topic_prefix=prefix,
    )
    try:
        launcher.up(settings, brokers, report=False)
        yield settings
    finally:
        launcher.down(settings)
