"""Every error path of the broker launcher: one clear line, a non-zero exit, a bounded time.

These run the real `gdx` in a subprocess with a doctored environment (no java on PATH, a busy
port, an unreachable cluster, a crashed broker's pid file) and a real broker where one is needed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from foundation.ports import free_port_block
from streams.local.kafka_jars import jar_dir
from streams.settings import Settings
from tests.support.cli_run import CliResult, run_gdx

BOUND_S = 60


def _assert_clear_failure(result: CliResult, *phrases: str) -> None:
    assert result.code != 0, result.out
    assert "Traceback" not in result.err, result.err
    message = result.err.strip()
    assert message.startswith("gdx: "), message
    for phrase in phrases:
        assert phrase in message, message
    assert result.seconds < BOUND_S


def _bin_dir_with(tmp_path: Path, *tools: str) -> str:
    """A PATH holding only the named tools (as links to the real ones)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in tools:
        real = shutil.which(tool)
        assert real, f"{tool} must be installed for this test"
        (bin_dir / tool).symlink_to(real)
    return str(bin_dir)


def _local_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"GDX_STATE_DIR": str(tmp_path / "state"), "GDX_KAFKA_PORT": str(free_port_block(2)), **extra}


def test_java_missing(tmp_path: Path) -> None:
    result = run_gdx("kafka", "up", env=_local_env(tmp_path, PATH=_bin_dir_with(tmp_path), JAVA_HOME=""))
    _assert_clear_failure(result, "Java not found", "install")


def test_java_too_old(tmp_path: Path) -> None:
    old_jdk = tmp_path / "jdk8" / "bin"
    old_jdk.mkdir(parents=True)
    fake = old_jdk / "java"
    fake.write_text("#!/bin/sh\necho 'openjdk version \"1.8.0_392\"' >&2\n")
    fake.chmod(0o755)
    result = run_gdx("kafka", "up", env=_local_env(tmp_path, JAVA_HOME=str(old_jdk.parent)))
    _assert_clear_failure(result, "Java 8 found", "needs Java 17+")


def test_maven_missing_when_jars_are_not_cached(tmp_path: Path) -> None:
    env = _local_env(
        tmp_path, PATH=_bin_dir_with(tmp_path, "java"), JAVA_HOME="", GDX_CACHE_DIR=str(tmp_path / "empty-cache")
    )
    result = run_gdx("kafka", "up", env=env)
    _assert_clear_failure(result, "Maven not found", "apt-get install maven")
    assert not (tmp_path / "state" / "kafka").exists() or not any((tmp_path / "state" / "kafka").glob("node-*"))


def test_port_already_in_use(tmp_path: Path) -> None:
    env = _local_env(tmp_path)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", int(env["GDX_KAFKA_PORT"])))
        squatter.listen()
        result = run_gdx("kafka", "up", env=env)
    _assert_clear_failure(result, f"port {env['GDX_KAFKA_PORT']}", "already in use", "GDX_KAFKA_PORT")


def test_broker_not_ready_in_time_is_stopped(tmp_path: Path) -> None:
    env = _local_env(tmp_path, GDX_KAFKA_START_TIMEOUT_S="0.5")
    result = run_gdx("kafka", "up", env=env)
    _assert_clear_failure(result, "did not answer a metadata request within 0.5 s", "GDX_KAFKA_START_TIMEOUT_S")
    node = tmp_path / "state" / "kafka" / "node-1"
    assert not (node / "broker.pid").exists(), "the half-started broker was left running"
    leftovers = subprocess.run(["pgrep", "-f", str(node / "server.properties")], capture_output=True, check=False)
    assert leftovers.stdout.strip() == b"", "a broker JVM outlived the failed start"


def test_unreachable_external_cluster(tmp_path: Path) -> None:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port_block(1)}",
        "GDX_KAFKA_REQUEST_TIMEOUT_S": "2",
        "GDX_STATE_DIR": str(tmp_path / "state"),
    }
    for command in (("kafka", "up"), ("kafka", "status"), ("topics", "apply"), ("topics", "list")):
        result = run_gdx(*command, env=env)
        _assert_clear_failure(result, "unreachable", "KAFKA_BOOTSTRAP_SERVERS")
        assert result.seconds < 20
    assert not (tmp_path / "state" / "kafka").exists(), "an external cluster must not start anything local"


def test_invalid_setting(tmp_path: Path) -> None:
    result = run_gdx("kafka", "status", env={"GDX_KAFKA_PORT": "ninety"})
    _assert_clear_failure(result, "invalid settings", "kafka_port")


def test_stale_pid_file_after_a_crash(tmp_path: Path) -> None:
    env = _local_env(tmp_path)
    first = run_gdx("kafka", "up", env=env)
    assert first.code == 0, first.err
    assert "ready in" in first.out
    node = tmp_path / "state" / "kafka" / "node-1"
    pid = int((node / "broker.pid").read_text())
    try:
        os.kill(pid, 9)
        _wait_gone(pid)
        status = run_gdx("kafka", "status", env=env)
        assert status.code == 3
        assert "stale pid file" in status.out and "`gdx kafka up`" in status.out

        again = run_gdx("kafka", "up", env=env)
        assert again.code == 0, again.err
        assert "removing stale pid file" in again.out and "ready in" in again.out
        assert run_gdx("kafka", "status", env=env).code == 0
    finally:
        down = run_gdx("kafka", "down", "--purge", env=env)
    assert down.code == 0 and "stopped" in down.out


def _wait_gone(pid: int) -> None:
    for _ in range(100):
        if not Path(f"/proc/{pid}").exists():
            return
        time.sleep(0.1)


def test_jar_cache_is_outside_the_repository() -> None:
    repo = Path(__file__).resolve().parent.parent
    assert repo not in jar_dir(Settings()).resolve().parents
