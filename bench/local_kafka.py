"""A broker for a benchmark: the one named by --bootstrap-servers, or a private one for the run,
with a private schema registry beside it (unless GDX_SCHEMA_REGISTRY_URL names one).

A private broker is secured as the project's broker is by default (mTLS); the benchmark then
reaches it as a user reaches an external secured cluster, with the operator's certificate in the
KAFKA_SECURITY_PROTOCOL / KAFKA_SSL_* variables, so `Settings(kafka_bootstrap_servers=…)` in the
benchmark and every `gdx` it starts connect alike. A named cluster takes its security from those
variables as given."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from foundation.kafka_clients import KafkaClients
from foundation.ports import free_port_block
from foundation.schema_registry import RegistryAccess, SchemaRegistry
from schemas.catalog import load_schema_catalog
from schemas.codec import Codec, SchemaById
from streams.local import kafka_launcher, registry_launcher
from streams.security.principals import OPERATOR
from streams.settings import Settings, client_environment


def registry_access() -> RegistryAccess:
    """The operator's access to the registry the environment names (the benchmark's own, or the user's)."""
    return Settings().registry_for(OPERATOR)


def registry_schemas() -> SchemaById:
    """That registry's schema text by id: what the worker's codec asks, once per id."""
    return SchemaRegistry(registry_access()).schema_by_id


def registry_codec() -> Codec:
    """A codec that resolves the wire format's ids at that registry."""
    return Codec(load_schema_catalog(), registry_schemas())


def clients(bootstrap: str) -> KafkaClients:
    """The operator's clients of `bootstrap`, with the connection security of the environment."""
    return Settings(kafka_bootstrap_servers=bootstrap).kafka


@contextmanager
def registry(state: Path) -> Iterator[None]:
    """A private schema registry for the run (its files and PKI in `state`), put in the environment
    as an external one for the benchmark and every `gdx` it starts; none when
    GDX_SCHEMA_REGISTRY_URL already names one."""
    settings = Settings(state_dir=state, schema_registry_port=free_port_block(1))
    if settings.external_registry:
        yield
        return
    print(f"starting a private schema registry at {settings.local_registry_url} …", flush=True)
    registry_launcher.up(settings, report=False)
    access = settings.registry_for(OPERATOR)
    os.environ.update(
        GDX_SCHEMA_REGISTRY_URL=access.url,
        GDX_SCHEMA_REGISTRY_CA=str(access.cafile),
        GDX_SCHEMA_REGISTRY_CERTFILE=str(access.certfile),
        GDX_SCHEMA_REGISTRY_KEYFILE=str(access.keyfile),
    )
    try:
        yield
    finally:
        registry_launcher.down(settings)


@contextmanager
def kafka(bootstrap_servers: str | None, heap: str = "1g") -> Iterator[str]:
    if bootstrap_servers:
        yield bootstrap_servers
        return
    with tempfile.TemporaryDirectory(prefix="gdx-bench-") as state:
        settings = Settings(state_dir=Path(state), kafka_port=free_port_block(2), kafka_heap=heap)
        print(f"starting a private Kafka broker at {settings.bootstrap_servers} …", flush=True)
        kafka_launcher.up(settings, 1, report=False)
        connection = client_environment(settings.kafka)
        connection.pop("KAFKA_BOOTSTRAP_SERVERS")
        os.environ.update(connection)
        try:
            with registry(Path(state) / "registry-run"):
                yield settings.bootstrap_servers
        finally:
            kafka_launcher.down(settings)
