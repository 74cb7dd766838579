"""A server binary the project runs in the background on loopback: Prometheus, Alertmanager.

Each owns one directory (`<state_dir>/<name>/`) with `<name>.yml` (generated on every start;
edits are overwritten), `<name>.pid`, `<name>.log` and `data/`. A pid counts as ours only while
that process runs with our configuration file, so a recycled pid is never signalled. Both speak
Prometheus's lifecycle API (`/-/ready`, `/-/reload`), so a running one reloads instead of starting
twice. Debian's packages provide the binaries; their own services are never used.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from foundation.errors import GdxError
from foundation.http_get import http_get
from foundation.ports import port_in_use

STOP_GRACE_S = 20.0


@dataclass(frozen=True)
class ServerFiles:
    """Where one local server keeps its configuration, pid, log and data."""

    name: str
    root: Path

    @property
    def config_file(self) -> Path:
        return self.root / f"{self.name}.yml"

    @property
    def pid_file(self) -> Path:
        return self.root / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.root / f"{self.name}.log"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"


@dataclass(frozen=True)
class Listener:
    """Where a local server answers, and the settings a user changes when that goes wrong."""

    host: str
    port: int
    port_setting: str
    timeout_setting: str

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True)
class ProcessState:
    pid: int | None
    running: bool
    stale: bool


def _is_ours(pid: int, files: ServerFiles) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return str(files.config_file.resolve()) in cmdline


def state(files: ServerFiles) -> ProcessState:
    if not files.pid_file.is_file():
        return ProcessState(None, running=False, stale=False)
    try:
        pid = int(files.pid_file.read_text().strip())
    except ValueError:
        return ProcessState(None, running=False, stale=True)
    running = _is_ours(pid, files)
    return ProcessState(pid, running=running, stale=not running)


def log_tail(files: ServerFiles, lines: int = 8) -> str:
    if not files.log_file.is_file():
        return "(no log)"
    return "\n".join(files.log_file.read_text(errors="replace").splitlines()[-lines:])


def is_ready(listener: Listener) -> bool:
    try:
        return http_get(f"{listener.url}/-/ready")[0] == 200
    except OSError:
        return False


def up(files: ServerFiles, listener: Listener, command: Sequence[str], timeout_s: float) -> tuple[bool, float]:
    """Reload ours if it runs, else run `command` in its own session (logging to the log file) and
    wait until it is ready: (started, seconds taken). A server that exits or stays unready is
    stopped and raised as a GdxError, as is a port another process holds."""
    began = time.monotonic()
    current = state(files)
    if current.running:
        try:
            urllib.request.urlopen(urllib.request.Request(f"{listener.url}/-/reload", method="POST"), timeout=5).close()
        except OSError as exc:
            raise GdxError(
                f"{files.name} (pid {current.pid}) is running but did not reload its configuration: {exc}",
                "restart it with `gdx prometheus down` and `gdx prometheus up`",
            ) from None
        return False, time.monotonic() - began
    if current.stale:
        files.pid_file.unlink()
    if port_in_use(listener.port, listener.host):
        raise GdxError(
            f"port {listener.port} on {listener.host} is already in use by another process (needed by {files.name})",
            f"stop that process, or choose another port with {listener.port_setting}",
        )
    with files.log_file.open("ab") as log:
        process = subprocess.Popen(
            list(command), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    files.pid_file.write_text(f"{process.pid}\n")
    while time.monotonic() < began + timeout_s:
        if process.poll() is not None:
            files.pid_file.unlink(missing_ok=True)
            raise GdxError(
                f"{files.name} exited with code {process.returncode} while starting:\n{log_tail(files)}",
                f"see {files.log_file}",
            )
        if is_ready(listener):
            return True, time.monotonic() - began
        time.sleep(0.2)
    stop_pid(process.pid)
    files.pid_file.unlink(missing_ok=True)
    raise GdxError(
        f"{files.name} did not become ready within {timeout_s:.0f} s:\n{log_tail(files)}",
        f"see {files.log_file}, or raise {listener.timeout_setting}",
    )


def _gone(pid: int) -> bool:
    """True when `pid` has exited; a zombie (exited, not yet reaped by its parent) counts as gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return True
    return fields[0] in ("Z", "X")


def stop_pid(pid: int) -> bool:
    """SIGTERM, then SIGKILL after the grace period; True when it stopped within the grace."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + STOP_GRACE_S
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if _gone(pid):
            return True
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return False


def down(files: ServerFiles, purge: bool = False) -> list[str]:
    """Stop the server; with `purge` also delete its data and log."""
    lines = []
    current = state(files)
    if current.running and current.pid is not None:
        graceful = stop_pid(current.pid)
        lines.append(f"{files.name}: stopped" if graceful else f"{files.name}: killed after {STOP_GRACE_S:.0f} s")
    elif current.stale:
        lines.append(f"{files.name}: was not running (stale pid file {files.pid_file} removed)")
    else:
        lines.append(f"{files.name}: not running")
    files.pid_file.unlink(missing_ok=True)
    if purge:
        shutil.rmtree(files.data_dir, ignore_errors=True)
        files.log_file.unlink(missing_ok=True)
        lines.append(f"{files.name}: removed {files.data_dir}")
    return lines
