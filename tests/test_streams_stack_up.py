"""`gdx up` (what `make run` runs): the stack comes up, says where, and stops cleanly in reverse
order; a part that cannot start stops the rest and says why; bad flags start nothing.

Prometheus is part of the stack; CI installs it (deploy/ensure-tools.sh), so here it must be there.
"""

from __future__ import annotations

import shutil
import signal
import socket
import ssl
import urllib.request
from pathlib import Path

import pytest

from foundation.ports import free_port_block
from tests.support.cli_run import run_gdx
from tests.support.stack_support import StackProcess, alive, children_of

STOP_ORDER = (
    "agencies: stopped",
    "lookup API: stopped",
    "worker: stopped",
    "lag monitor: stopped",
    "prometheus: stopped",
    "node 1: stopped",
)


def _status(url: str, trusted: ssl.SSLContext | None = None) -> int:
    with urllib.request.urlopen(url, timeout=5, context=trusted) as answer:
        return int(answer.status)


@pytest.mark.kafka
def test_up_prints_where_and_stops_everything_in_reverse_order_on_sigterm(tmp_path: Path) -> None:
    assert shutil.which("prometheus"), "Prometheus is not installed — apt-get install prometheus"
    port = free_port_block(2)
    prometheus_port = free_port_block(1)
    state = tmp_path / "state"
    env = {
        "GDX_STATE_DIR": str(state),
        "GDX_KAFKA_PORT": str(port),
        "GDX_KAFKA_HEAP": "384m",
        "GDX_TOPIC_PREFIX": "stack.",
        "GDX_PROMETHEUS_PORT": str(prometheus_port),
        "GDX_LOOKUP_PORT": str(free_port_block(1)),
        "GDX_ALERTMANAGER_PORT": str(free_port_block(1)),
        "GDX_ALERT_RECEIVER_PORT": str(free_port_block(1)),
    }
    stack = StackProcess(env, "--scale", "1000")
    try:
        assert stack.wait_for("Press Ctrl-C", timeout=180), f"{stack.output}\n{stack.errors}"
        children = children_of(stack.popen.pid)
        assert stack.row("Kafka bootstrap servers") == f"127.0.0.1:{port}"
        assert stack.row("Prometheus") == f"http://127.0.0.1:{prometheus_port}"
        assert any("created now" in line for line in stack.lines), stack.output
        # The lookup API serves HTTPS with a certificate from the stack's own CA; the rest plain HTTP.
        trusted = ssl.create_default_context(cafile=str(state / "pki" / "ca.pem"))
        assert stack.row("lookup API (OpenAPI)").startswith("https://127.0.0.1:")
        assert _status(stack.row("lookup API (OpenAPI)"), trusted) == 200
        with urllib.request.urlopen(stack.row("status page"), timeout=10, context=trusted) as page:
            assert page.status == 200 and b"<title>GDX exchange status</title>" in page.read()
        for name in ("lag monitor", "worker", "lookup API", "agencies"):
            metrics_url = stack.row(name)
            scheme = "https" if name == "lookup API" else "http"
            assert metrics_url.startswith(f"{scheme}://127.0.0.1:") and metrics_url.endswith("/metrics")
            base = metrics_url.removesuffix("/metrics")
            assert _status(f"{base}/healthz", trusted) == 200 and _status(f"{base}/readyz", trusted) == 200
        assert stack.row("logs") == str(state / "logs")
        code = stack.stop(signal.SIGTERM)
    finally:
        if stack.popen.poll() is None:
            stack.kill_tree()
    assert code == 0, stack.errors
    positions = [next(i for i, line in enumerate(stack.lines) if line.startswith(what)) for what in STOP_ORDER]
    assert positions == sorted(positions), stack.output
    assert not alive(children), f"left running: {alive(children)}\n{stack.output}"
    assert not (state / "prometheus" / "prometheus.pid").exists()
    assert not (state / "kafka" / "node-1" / "broker.pid").exists()
    assert not list((state / "prometheus" / "targets").glob("*.json"))


@pytest.mark.kafka
def test_a_process_that_cannot_bind_its_port_stops_the_stack_and_says_why(
    bootstrap_servers: str, tmp_path: Path
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
            "GDX_TOPIC_PREFIX": "stackbusy.",
            "GDX_STATE_DIR": str(tmp_path / "state"),
            "GDX_PROMETHEUS_PORT": str(free_port_block(1)),
            "GDX_LOOKUP_PORT": str(free_port_block(1)),
            "GDX_WORKER_METRICS_PORT": str(busy),
        }
        stack = StackProcess(env, "--no-agencies")
        try:
            code = stack.popen.wait(timeout=150)
            stack.wait_for("no such line: read to the end", timeout=10)
            children = children_of(stack.popen.pid)
        finally:
            if stack.popen.poll() is None:
                stack.kill_tree()
    assert code == 1, stack.output
    said = stack.errors.strip()
    assert said.startswith("gdx: worker (pid ") and "exited with code 1" in said and "\n" not in said, said
    assert f"port {busy} on 127.0.0.1 is already in use" in said and "GDX_WORKER_METRICS_PORT" in said
    assert "lag monitor: stopped" in stack.output and "prometheus: stopped" in stack.output
    assert not children


@pytest.mark.kafka
def test_without_prometheus_the_stack_runs_and_says_how_to_install_it(bootstrap_servers: str, tmp_path: Path) -> None:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
        "GDX_TOPIC_PREFIX": "stacknoprom.",
        "GDX_STATE_DIR": str(tmp_path / "state"),
        "PATH": str(tmp_path),
        "GDX_LOOKUP_PORT": str(free_port_block(1)),
        "GDX_ALERTMANAGER_PORT": str(free_port_block(1)),
        "GDX_ALERT_RECEIVER_PORT": str(free_port_block(1)),
    }
    stack = StackProcess(env, "--no-agencies")
    try:
        assert stack.wait_for("Press Ctrl-C", timeout=150), f"{stack.output}\n{stack.errors}"
        children = children_of(stack.popen.pid)
        assert stack.row("Prometheus").startswith("not running — install it with `apt-get install prometheus`")
        assert any(line.startswith("monitoring: Prometheus is not installed") for line in stack.lines), stack.output
        assert stack.row("worker").endswith("/metrics")
        code = stack.stop(signal.SIGINT)
    finally:
        if stack.popen.poll() is None:
            stack.kill_tree()
    assert code == 0, stack.errors
    assert not alive(children)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--rate", "0"], "--rate 0 events/s is not positive"),
        (["--scale", "10"], "--scale: scale 10 persons is out of range"),
        (["--workers", "0"], "--workers 0 is out of range"),
    ],
)
def test_bad_flags_start_nothing_and_say_so_in_one_line(flags: list[str], message: str, tmp_path: Path) -> None:
    done = run_gdx("up", *flags, env={"GDX_STATE_DIR": str(tmp_path / "state")}, timeout=60)
    assert done.code == 1
    assert done.err.strip().startswith(f"gdx: {message}") and "\n" not in done.err.strip()
    assert not (tmp_path / "state").exists()
