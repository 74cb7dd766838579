"""`gdx up` (what `make run` runs): the stack comes up, says where, and Ctrl-C stops it cleanly.

Prometheus is part of the stack; CI installs it (deploy/ensure-tools.sh), so here it must be there.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streams.ports import free_port_block

pytestmark = pytest.mark.kafka


def test_up_prints_where_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    assert shutil.which("prometheus"), "Prometheus is not installed — apt-get install prometheus"
    port = free_port_block(2)
    prometheus_port = free_port_block(1)
    env = {**os.environ, "GDX_STATE_DIR": str(tmp_path / "state"), "GDX_KAFKA_PORT": str(port),
           "GDX_TOPIC_PREFIX": "stack.", "GDX_PROMETHEUS_PORT": str(prometheus_port)}
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 150
        assert process.stdout is not None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Press Ctrl-C" in line:
                break
        assert any(f"127.0.0.1:{port}" in line for line in lines), "".join(lines)
        assert any("created now" in line for line in lines), "".join(lines)
        assert any(f"Prometheus               http://127.0.0.1:{prometheus_port}" in line for line in lines), "".join(lines)
        assert any(line.startswith("  lag monitor              http://127.0.0.1:") for line in lines), "".join(lines)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            subprocess.run([sys.executable, "-m", "streams.cli", "prometheus", "down"], env=env, check=False)
            subprocess.run([sys.executable, "-m", "streams.cli", "kafka", "down"], env=env, check=False)
    assert process.returncode == 0, err
    assert "node 1: stopped" in out
    assert "prometheus: stopped" in out and "lag monitor: stopped" in out
    assert not (tmp_path / "state" / "prometheus" / "prometheus.pid").exists()
    assert not (tmp_path / "state" / "kafka" / "node-1" / "broker.pid").exists()
