"""The backbone under faults, against the real broker: every scenario ends with zero mismatches.

Agencies, workers and checks run as separate `gdx` processes, as in production; the index is
SQLite or a real PostgreSQL server.
"""

from __future__ import annotations

import signal
import time
import uuid
from pathlib import Path

import pytest

from stream_harness import Backbone, Process, dead_letters, injected, wait_caught_up, worker
from streams.settings import Settings

pytestmark = pytest.mark.kafka


@pytest.fixture
def backbone(bootstrap_servers: str, tmp_path: Path, index_url: str) -> Backbone:
    deployment = Backbone(bootstrap_servers, f"f{uuid.uuid4().hex[:8]}.", tmp_path / "state", index_url)
    applied = deployment.gdx("topics", "apply")
    assert applied.code == 0, applied.err
    return deployment


def _assert_reconciled(backbone: Backbone) -> None:
    result = backbone.reconcile()
    assert result.code == 0, result.out + result.err
    assert "no mismatches" in result.out


def test_every_injected_fault_is_absorbed_or_dead_lettered(backbone: Backbone) -> None:
    report = backbone.simulate("--scale", "1000", "--seed", "11", "--count", "400", "--rate", "1000", faults=0.05)
    assert all(injected(report, kind) > 0 for kind in ("duplicate", "out_of_order", "malformed", "invalid_id"))
    with worker(backbone) as process:
        wait_caught_up(backbone, 240, process)
    _assert_reconciled(backbone)
    assert dead_letters(backbone) == injected(report, "malformed") + injected(report, "invalid_id")

    rebuilt = backbone.gdx("index", "rebuild", "--into", f"sqlite:///{backbone.state_dir / 'rebuilt.db'}")
    assert rebuilt.code == 0, rebuilt.out + rebuilt.err
    assert "identical" in rebuilt.out
