"""Finding free loopback ports for local services started next to others (tests, benchmarks)."""

from __future__ import annotations

import random
import socket


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port_block(count: int) -> int:
    """A base port with `count` consecutive free ports from it, away from the defaults (9092, 9090)."""
    for _ in range(200):
        base = random.randrange(20000, 60000, 2)
        if all(port_free(base + offset) for offset in range(count)):
            return base
    raise RuntimeError("no free block of loopback ports found")
