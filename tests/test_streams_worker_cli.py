"""`gdx worker` bad input: a busy metrics port and an unreachable cluster are one clear line each."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from foundation.ports import free_port_block
from tests.support.cli_run import run_gdx


@pytest.mark.kafka
def test_a_busy_metrics_port_is_reported_and_exits(bootstrap_servers: str, tmp_path: Path) -> None:
    port = free_port_block(1)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        result = run_gdx(
            "worker",
            env={
                "KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
                "GDX_STATE_DIR": str(tmp_path),
                "GDX_WORKER_METRICS_PORT": str(port),
            },
            timeout=120,
        )
    assert result.code != 0
    assert "Traceback" not in result.err
    assert str(port) in result.err and "GDX_WORKER_METRICS_PORT" in result.err


def test_an_unreachable_cluster_is_reported_and_exits(tmp_path: Path) -> None:
    result = run_gdx(
        "worker",
        env={
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port_block(1)}",
            "GDX_KAFKA_REQUEST_TIMEOUT_S": "2",
            "GDX_STATE_DIR": str(tmp_path),
        },
        timeout=60,
    )
    assert result.code != 0 and "unreachable" in result.err and "Traceback" not in result.err


def test_a_bad_index_url_is_reported(tmp_path: Path) -> None:
    result = run_gdx("index", "digest", env={"GDX_INDEX_URL": "nonsense", "GDX_STATE_DIR": str(tmp_path)})
    assert result.code != 0 and "not a database URL" in result.err and "Traceback" not in result.err
