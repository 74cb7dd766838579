"""Running `gdx up` as an operator does: a process whose output is read without blocking, and the
process tree it spawned, so a test can prove that nothing outlives the stack."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.support.cli_run import clean_env


def children_of(pid: int) -> set[int]:
    """Every live descendant of `pid` (from /proc; zombies count as gone)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] not in ("Z", "X"):
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    """The pids of `pids` that still run (a zombie has exited)."""
    running = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in ("Z", "X"):
            running.add(pid)
    return running


STOP_WITHIN_S = 240.0
"""How long `gdx up` may take to stop before a test calls it hung. It stops its parts one at a
time and kills any that outlasts its stop timeout (30 s each), so on a loaded machine a stop where
several parts are slow still ends, only later; a test that waited less would fail a stack that
kept its promise. The output then says which part was slow."""


class StackProcess:
    """`gdx up ARGS` in the background, its stdout collected line by line by a reader thread."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "up", *args],
            env=clean_env(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._errors: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_errors, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def _read_errors(self) -> None:
        assert self.popen.stderr is not None
        self._errors.extend(self.popen.stderr)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    @property
    def errors(self) -> str:
        return "".join(self._errors)

    def wait_for(self, marker: str, timeout: float) -> bool:
        """True once a line containing `marker` was printed; False at the end of output or the timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return False
            if line is None:
                return False
            self.lines.append(line)
            if marker in line:
                return True
        return False

    def stop(self, sig: int) -> int:
        """Send `sig`, wait for the exit, and collect the rest of the output. Not stopping in time
        fails with what it printed meanwhile: which part it was still stopping."""
        self.popen.send_signal(sig)
        try:
            code = self.popen.wait(timeout=STOP_WITHIN_S)
        except subprocess.TimeoutExpired:
            self.wait_for("no such line: read what it printed", timeout=1)
            raise AssertionError(f"not stopped {STOP_WITHIN_S:g} s after signal {sig}:\n{self.output}") from None
        while (line := self._queue.get(timeout=5)) is not None:
            self.lines.append(line)
        return code

    def kill_tree(self) -> None:
        """After a failed test: SIGKILL the whole tree, so no broker or Prometheus is left behind."""
        for pid in alive(children_of(self.popen.pid) | {self.popen.pid}):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
        self.popen.wait(timeout=30)

    def row(self, label: str) -> str:
        """The value of one row of the "stack is up" table."""
        for line in self.lines:
            if line.startswith(f"  {label:<24} "):
                return line[27:].strip()
        raise AssertionError(f"no row {label!r} in:\n{self.output}")
