"""The health server every non-HTTP process runs: its three endpoints, its scrape target, its errors."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from foundation.errors import GdxError
from monitoring import metrics, scrape_targets
from monitoring.health_server import HealthServer, Readiness


def _get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.headers["Content-Type"], answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


@contextmanager
def _listening() -> Iterator[int]:
    """A loopback port some other socket holds."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_metrics_endpoint_serves_the_exchange_metrics() -> None:
    metrics.EVENTS_PUBLISHED.labels(agency="dopa", dataset="health-test").inc(3)
    with HealthServer("publisher-dopa", "publisher") as server:
        status, content_type, body = _get(f"{server.url}/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    assert 'gdx_events_published_total{agency="dopa",dataset="health-test"} 3.0' in body


def test_healthz_is_alive_and_unknown_paths_are_404() -> None:
    with HealthServer("worker-1", "worker") as server:
        assert _get(f"{server.url}/healthz")[0] == 200
        status, _, body = _get(f"{server.url}/nope")
    assert status == 404 and "/readyz" in body


def test_readyz_names_every_failing_check_until_all_pass() -> None:
    readiness = Readiness()
    assigned = {"value": False}
    readiness.add_check("partitions", lambda: None if assigned["value"] else "no partitions assigned yet")
    readiness.add_check("broken", lambda: 1 / 0)
    readiness.set_not_ready("kafka", "broker 127.0.0.1:9092 unreachable")
    with HealthServer("worker-1", "worker", readiness=readiness) as server:
        status, content_type, body = _get(f"{server.url}/readyz")
        assert status == 503 and content_type == "application/json"
        failing = json.loads(body)["failing"]
        assert failing["partitions"] == "no partitions assigned yet"
        assert failing["kafka"] == "broker 127.0.0.1:9092 unreachable"
        assert "ZeroDivisionError" in failing["broken"]

        readiness.add_check("broken", lambda: None)
        readiness.set_ready("kafka")
        assigned["value"] = True
        status, _, body = _get(f"{server.url}/readyz")
    assert status == 200 and json.loads(body) == {"status": "ready"}


def test_a_busy_port_is_a_clear_error_naming_it() -> None:
    with _listening() as port:
        server = HealthServer("publisher-dol", "publisher", port=port, port_setting="GDX_PUBLISHER_METRICS_PORT")
        with pytest.raises(GdxError) as caught:
            server.start()
    message = str(caught.value)
    assert f"port {port}" in message and "already in use" in message
    assert "GDX_PUBLISHER_METRICS_PORT" in message and caught.value.exit_code != 0
    # A whole process on a busy port (one line, non-zero exit): tests/test_monitoring_lag.py.


def test_the_process_announces_itself_as_a_scrape_target_and_withdraws(tmp_path: Path) -> None:
    targets = scrape_targets.targets_dir(tmp_path)
    with HealthServer("publisher-dbd", "publisher", targets_dir=targets) as server:
        files = list(targets.glob("*.json"))
        assert len(files) == 1
        group = json.loads(files[0].read_text())
        assert group == [
            {"targets": [f"127.0.0.1:{server.port}"], "labels": {"process": "publisher-dbd", "role": "publisher"}}
        ]
    assert not list(targets.glob("*.json"))


def test_targets_of_dead_processes_are_pruned(tmp_path: Path) -> None:
    targets = scrape_targets.targets_dir(tmp_path)
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    targets.mkdir(parents=True)
    leftover = targets / f"worker-crashed-{gone.stdout.strip()}.json"
    leftover.write_text("[]")
    with HealthServer("worker-new", "worker", targets_dir=targets):
        names = sorted(p.name for p in targets.glob("*.json"))
    assert not leftover.exists()
    assert len(names) == 1 and names[0].startswith("worker-new-")


def test_process_names_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="process name"):
        HealthServer("Bad Name", "worker", targets_dir=tmp_path)


def test_start_is_logged_as_a_structured_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gdx.health")
    with HealthServer("worker-logged", "worker") as server:
        url = server.url
    started = [r for r in caplog.records if r.getMessage() == "health server listening"]
    assert len(started) == 1
    assert started[0].__dict__["process_name"] == "worker-logged" and started[0].__dict__["url"] == url
