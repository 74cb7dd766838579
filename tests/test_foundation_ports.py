"""Free loopback ports for services the tests and benchmarks start and restart."""

from __future__ import annotations

from pathlib import Path

from foundation.ports import ephemeral_low, free_port_block, port_in_use


def test_blocks_stay_below_the_kernels_ephemeral_range_and_are_free() -> None:
    """A port inside that range can be taken by a client connecting to itself while its server is
    down, so a restarted broker could not bind it (seen once in CI)."""
    low = ephemeral_low()
    for _ in range(50):
        base = free_port_block(4)
        assert base >= 20000 and base + 4 <= low
        assert not any(port_in_use(base + offset) for offset in range(4))


def test_the_ephemeral_range_is_read_from_the_kernel_or_defaults(tmp_path: Path) -> None:
    configured = tmp_path / "ip_local_port_range"
    configured.write_text("40000\t60999\n")
    assert ephemeral_low(configured) == 40000
    assert ephemeral_low(tmp_path / "missing") == 32768
