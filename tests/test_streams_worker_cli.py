"""`gdx worker` bad input: a busy metrics port, an unreachable cluster or registry are one clear line each;
a stop that outlasts its deadline is one line too."""

from __future__ import annotations

import signal
import socket
import uuid
from pathlib import Path

import pytest

from foundation.http_get import http_get
from foundation.ports import free_port_block
from foundation.stop_deadline import EXIT_STOP_TIMEOUT
from tests.support.cli_run import run_gdx
from tests.support.lookup_support import wait_until
from tests.support.stream_harness import Backbone, Process


@pytest.fixture(scope="module")
def deployed(bootstrap_servers: str, tmp_path_factory: pytest.TempPathFactory) -> Backbone:
    root = tmp_path_factory.mktemp("worker-cli")
    backbone = Backbone(
        bootstrap_servers, f"r{uuid.uuid4().hex[:8]}.", root / "state", f"sqlite:///{root / 'index.db'}"
    )
    assert backbone.gdx("topics", "apply").code == 0
    return backbone


@pytest.mark.kafka
def test_a_busy_metrics_port_is_reported_and_exits(deployed: Backbone) -> None:
    port = free_port_block(1)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        result = run_gdx("worker", env={**deployed.env, "GDX_WORKER_METRICS_PORT": str(port)}, timeout=120)
    assert result.code != 0
    assert "Traceback" not in result.err
    assert str(port) in result.err and "GDX_WORKER_METRICS_PORT" in result.err


@pytest.mark.kafka
@pytest.mark.parametrize(
    ("partition", "refusal"),
    [
        ("0", "gdx: audit partition 0 is the lookup API's (from 0, 1 processes) — give each worker a partition"),
        ("8", "gdx: notices chained in audit partition 8 need 9 partitions of "),
    ],
)
def test_an_audit_partition_not_its_own_is_one_line(deployed: Backbone, partition: str, refusal: str) -> None:
    """Two writers of one chain would fork it: the lookup API's partitions and missing ones are refused."""
    result = run_gdx("worker", "--audit-partition", partition, env=deployed.env, timeout=120)
    assert result.code == 1 and result.err.startswith(refusal) and len(result.err.strip().splitlines()) == 1


@pytest.mark.kafka
def test_a_registry_that_does_not_answer_is_one_line_before_the_worker_starts(deployed: Backbone) -> None:
    away = f"https://127.0.0.1:{free_port_block(1)}/apis/ccompat/v7"
    result = run_gdx("worker", env={**deployed.env, "GDX_SCHEMA_REGISTRY_URL": away}, timeout=120)
    assert result.code == 1 and "Traceback" not in result.err
    assert result.err.strip().splitlines() == [
        f"gdx: schema registry {away} does not answer — start it (gdx registry up) or set "
        "GDX_SCHEMA_REGISTRY_URL to one that runs"
    ]


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


def _answers(url: str) -> bool:
    try:
        return http_get(url)[0] == 200
    except OSError:
        return False


@pytest.mark.kafka
def test_a_stop_past_its_deadline_exits_with_one_line(bootstrap_servers: str, tmp_path: Path) -> None:
    """A graceful stop longer than GDX_WORKER_STOP_TIMEOUT_S (here any stop: 1 ms) ends the worker
    with EX_TEMPFAIL and a line saying why, instead of leaving it to its supervisor's SIGKILL."""
    backbone = Backbone(
        bootstrap_servers,
        f"r{uuid.uuid4().hex[:8]}.",
        tmp_path / "state",
        f"sqlite:///{tmp_path / 'index.db'}",
        settings={"GDX_WORKER_STOP_TIMEOUT_S": "0.001", "GDX_WORKER_METRICS_PORT": str(port := free_port_block(1))},
    )
    assert backbone.gdx("topics", "apply").code == 0
    process = Process(backbone, "worker", name="worker")
    wait_until(lambda: _answers(f"http://127.0.0.1:{port}/readyz"), timeout_s=120, what="worker ready")
    process.popen.send_signal(signal.SIGTERM)
    assert process.wait(60) == EXIT_STOP_TIMEOUT, process.tail()
    assert "graceful stop did not finish in time" in process.tail() and "Traceback" not in process.tail(200)


def test_a_session_timeout_below_the_brokers_least_is_one_line(tmp_path: Path) -> None:
    """Under 6 s the broker would refuse the worker's every join; said before anything starts."""
    result = run_gdx("worker", env={"GDX_WORKER_SESSION_TIMEOUT_S": "3", "GDX_STATE_DIR": str(tmp_path)})
    assert result.code == 1 and "Traceback" not in result.err
    assert result.err.strip() == (
        "gdx: invalid settings: worker_session_timeout_s: Input should be greater than or equal to 6 "
        "— fix the environment variable or settings file"
    )
