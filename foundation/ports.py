"""Finding free loopback ports for local services started next to others (tests, benchmarks)."""

from __future__ import annotations

import random
import socket
from pathlib import Path


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something holds the port; a port in TIME_WAIT after a stopped server counts as free."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


LOWEST = 20000
"""Above the defaults (9092, 9090) and the usual fixed service ports."""


def ephemeral_low(range_file: Path = Path("/proc/sys/net/ipv4/ip_local_port_range")) -> int:
    """The lowest port the kernel hands out for outgoing connections (32768 on Linux by default)."""
    try:
        return int(range_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port_block(count: int) -> int:
    """A base port with `count` consecutive free ports from it, below the kernel's ephemeral range.

    Why below: a server restarted on a port inside that range can find it taken by a client. A
    client reconnecting to 127.0.0.1:P while nothing listens there may be given P itself as its
    own local port and connect to itself (TCP simultaneous open), holding P; a broker restarted
    mid-test then cannot bind it."""
    top = ephemeral_low() - count
    for _ in range(200):
        base = random.randrange(LOWEST, top, 2)
        if not any(port_in_use(base + offset) for offset in range(count)):
            return base
    raise RuntimeError("no free block of loopback ports found")
