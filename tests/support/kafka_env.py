"""Test-side helpers for the real broker: free ports, a started cluster, isolated settings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from foundation.ports import free_port_block
from streams.local import kafka_launcher as launcher
from streams.settings import Settings


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
    """Start the project's own cluster for a test scope and always stop it afterwards.

    Its data and logs stay in pytest's temporary directory (the last few runs are kept), so a
    failure can be read in the brokers' own logs.
    """
    settings = local_settings(state_dir, brokers)
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
