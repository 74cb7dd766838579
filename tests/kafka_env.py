"""Test-side helpers for the real broker: free ports, a started cluster, isolated settings."""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from streams import kafka_launcher as launcher
from streams.settings import Settings


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_base(count: int) -> int:
    """A base port with `count` consecutive free ports above it, away from the default 9092."""
    for _ in range(200):
        base = random.randrange(20000, 60000, 2)
        if all(_free(base + offset) for offset in range(count)):
            return base
    raise RuntimeError("no free block of loopback ports found")


def local_settings(state_dir: Path, brokers: int) -> Settings:
    return Settings(
        state_dir=state_dir,
        kafka_port=free_port_base(2 * brokers),
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
