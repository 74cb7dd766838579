"""A real Prometheus, started by the project's launcher, scrapes a process's health server and
evaluates the project's rules; and the paths where it cannot run (not installed, busy port)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from foundation.ports import free_port_block
from monitoring import metrics
from monitoring.health_server import HealthServer
from streams.commands.prometheus import start_prometheus
from streams.local.prometheus import PrometheusSetup, prometheus_root, render_config
from streams.settings import Settings
from tests.support.cli_run import run_gdx

AGENCY = "itest"


def _require_prometheus() -> None:
    if shutil.which("prometheus") is None or shutil.which("promtool") is None:
        pytest.fail("Prometheus is not installed — apt-get install prometheus (deploy/ensure-tools.sh does it in CI)")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "GDX_STATE_DIR": str(tmp_path / "state"),
        "GDX_PROMETHEUS_PORT": str(free_port_block(1)),
        "GDX_ALERTMANAGER_PORT": str(free_port_block(1)),
        "GDX_PROMETHEUS_SCRAPE_INTERVAL_S": "1",
    }


def _query(port: str, promql: str) -> list[dict]:
    url = f"http://127.0.0.1:{port}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    with urllib.request.urlopen(url, timeout=5) as answer:
        body = json.loads(answer.read())
    assert body["status"] == "success", body
    return body["data"]["result"]


def _eventually(what: str, probe: Callable[[], list[dict]], timeout: float = 45) -> list[dict]:
    """Poll `probe` until it returns series; fail naming `what` and the last answer."""
    deadline = time.monotonic() + timeout
    result: list[dict] = []
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(0.5)
    pytest.fail(f"no series for {what} within {timeout:.0f} s (last answer {result})")


def _value(result: list[dict]) -> float:
    assert len(result) == 1, result
    return float(result[0]["value"][1])


@pytest.fixture
def feeding() -> Iterator[None]:
    """A worker's metrics as it applies events: 10 applied and 1 dead-lettered per step, each
    applied event 0.3 s after its source commit; counters preloaded like a long-running process."""
    applied = metrics.EVENTS_APPLIED.labels(agency=AGENCY, dataset="person")
    dead = metrics.EVENTS_DEAD_LETTERED.labels(agency=AGENCY, dataset="person", reason="invalid")
    freshness = metrics.FRESHNESS.labels(agency=AGENCY, dataset="person")
    applied.inc(1000)
    dead.inc(100)
    metrics.CONSUMER_LAG_OFFSETS.labels(group="linkage-itest", topic="gdx.itest.person.v1", partition="0").set(40)
    metrics.CONSUMER_LAG_OFFSETS.labels(group="linkage-itest", topic="gdx.itest.person.v1", partition="1").set(2)
    metrics.CONSUMER_LAG_SECONDS.labels(group="linkage-itest", topic="gdx.itest.person.v1", partition="0").set(3.5)
    stop = threading.Event()

    def feed() -> None:
        while not stop.wait(0.05):
            applied.inc(10)
            dead.inc(1)
            for _ in range(10):
                freshness.observe(0.3)

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join()


def test_prometheus_scrapes_processes_and_evaluates_the_rules(env: dict[str, str], feeding: None) -> None:
    _require_prometheus()
    port = env["GDX_PROMETHEUS_PORT"]
    targets = prometheus_root(Path(env["GDX_STATE_DIR"])) / "targets"
    worker = HealthServer("worker-itest", "worker", targets_dir=targets).start()
    late: HealthServer | None = None
    try:
        started = run_gdx("prometheus", "up", env=env, timeout=90)
        assert started.code == 0, started.err
        assert f"Prometheus ready at http://127.0.0.1:{port}" in started.out

        again = run_gdx("prometheus", "up", env=env)
        assert again.code == 0 and "already running" in again.out and "reloaded" in again.out, again.out + again.err

        up = _eventually("up of the worker", lambda: _query(port, 'up{job="gdx",process="worker-itest"} == 1'))
        assert up[0]["metric"]["role"] == "worker"

        lag = _eventually("lag in offsets", lambda: _query(port, 'gdx_consumer_lag_offsets{group="linkage-itest"}'))
        assert sorted(float(s["value"][1]) for s in lag) == [2.0, 40.0]
        assert {s["metric"]["process"] for s in lag} == {"worker-itest"}
        seconds = _query(port, 'gdx_consumer_lag_seconds{group="linkage-itest"}')
        assert _value(seconds) == 3.5
        summed = _eventually(
            "recorded lag", lambda: _query(port, 'group_topic:gdx_consumer_lag_offsets:sum{group="linkage-itest"}')
        )
        assert _value(summed) == 42

        # A 5-minute rate of a series seconds old is its increase spread over 5 minutes: only > 0
        # is meaningful for the recorded rate; the short-window rate shows the real pace.
        _eventually(
            "recorded applied rate",
            lambda: _query(port, f'agency_dataset:gdx_events_applied:rate5m{{agency="{AGENCY}"}} > 0'),
        )
        applied_rate = _eventually(
            "applied rate", lambda: _query(port, f'rate(gdx_events_applied_total{{agency="{AGENCY}"}}[5s])')
        )
        assert 20 < _value(applied_rate) < 250, "about 10 events per 50 ms"

        success = _eventually(
            "exchange success KPI",
            lambda: _query(port, f'agency:gdx_exchange_success:ratio_rate5m{{agency="{AGENCY}"}}'),
        )
        assert _value(success) == pytest.approx(10 / 11, abs=0.01)

        mean = _eventually(
            "mean freshness",
            lambda: _query(
                port,
                f'sum(gdx_freshness_seconds_sum{{agency="{AGENCY}"}})'
                f' / sum(gdx_freshness_seconds_count{{agency="{AGENCY}"}})',
            ),
        )
        assert _value(mean) == pytest.approx(0.3)
        p95 = _eventually(
            "freshness p95", lambda: _query(port, f'agency:gdx_freshness_seconds:p95_5m{{agency="{AGENCY}"}}')
        )
        assert _value(p95) == pytest.approx(0.25 + 0.95 * (0.5 - 0.25)), "interpolated inside the 0.25-0.5 s bucket"

        late = HealthServer("publisher-late", "publisher", targets_dir=targets).start()
        _eventually(
            "a process started after Prometheus", lambda: _query(port, 'up{job="gdx",process="publisher-late"} == 1')
        )
        status = run_gdx("prometheus", "status", env=env)
        assert status.code == 0, status.err
        assert "worker-itest" in status.out and "publisher-late" in status.out and "down" not in status.out

        late.stop()
        late = None
        _eventually(
            "the stopped process leaving the targets",
            lambda: [] if "publisher-late" in run_gdx("prometheus", "status", env=env).out else [{}],
        )
    finally:
        if late is not None:
            late.stop()
        worker.stop()
        stopped = run_gdx("prometheus", "down", env=env, timeout=60)
    assert stopped.code == 0 and "prometheus: stopped" in stopped.out, stopped.out + stopped.err
    assert not (prometheus_root(Path(env["GDX_STATE_DIR"])) / "prometheus.pid").exists()
    assert run_gdx("prometheus", "status", env=env).code == 3


def test_the_generated_configuration_passes_promtool(tmp_path: Path) -> None:
    _require_prometheus()
    setup = PrometheusSetup(
        root=tmp_path / "prometheus",
        port=19090,
        scrape_interval_s=1.5,
        start_timeout_s=5,
        alertmanager="127.0.0.1:19099",
    )
    setup.root.mkdir()
    setup.config_file.write_text(render_config(setup))
    checked = subprocess.run(
        ["promtool", "check", "config", str(setup.config_file)], capture_output=True, text=True, timeout=60, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout and "rules found" in checked.stdout
    assert '"scrape_interval": "1500ms"' in setup.config_file.read_text()
    alerting = json.loads(setup.config_file.read_text().split("\n", 1)[1])["alerting"]
    assert alerting == {"alertmanagers": [{"static_configs": [{"targets": ["127.0.0.1:19099"]}]}]}


def test_not_installed_is_one_line_saying_how_to_install(env: dict[str, str], tmp_path: Path) -> None:
    done = run_gdx("prometheus", "up", env={**env, "PATH": str(tmp_path)})
    assert done.code != 0
    assert done.err.count("\n") == 1 and "apt-get install prometheus" in done.err, done.err


def test_the_stack_runs_on_without_prometheus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert start_prometheus(Settings(state_dir=tmp_path / "state")) is None
    out = capsys.readouterr().out
    assert "not installed" in out and "apt-get install prometheus" in out and "runs without it" in out


def test_a_busy_port_stops_prometheus_up_with_a_clear_error(env: dict[str, str]) -> None:
    _require_prometheus()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = run_gdx("prometheus", "up", env={**env, "GDX_PROMETHEUS_PORT": str(port)})
    assert done.code == 1
    assert f"port {port} on 127.0.0.1 is already in use" in done.err and "GDX_PROMETHEUS_PORT" in done.err
    assert not (prometheus_root(Path(env["GDX_STATE_DIR"])) / "prometheus.pid").exists()
