"""The stack's own child processes (workers, agencies, lag monitor, later the lookup API).

`gdx up` describes each as a `ManagedProcess` — a name, the `gdx` arguments, how long it may take
to become ready and how to stop it — and starts them in order. A child is ready when its
`/readyz` answers 200; its address is found through the scrape-target file its health server
writes (`<targets_dir>/<name>-<pid>.json`), so no port is fixed and no log line is parsed; the
file's `__scheme__` label says when it is HTTPS (the lookup API), verified with the stack's CA.

Children run in their own process group: a Ctrl-C in the terminal reaches `gdx up` alone, which
then stops them one by one in reverse order of start (SIGTERM, then SIGKILL after the timeout), so
the agencies stop publishing before the workers stop consuming.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from foundation.errors import GdxError
from foundation.http_get import http_get

POLL_S = 0.2


@dataclass(frozen=True)
class ManagedProcess:
    """One long-running `gdx` subcommand of the stack."""

    name: str
    args: tuple[str, ...]
    ready_timeout_s: float = 120.0
    stop_signal: int = signal.SIGTERM
    stop_timeout_s: float = 30.0


class RunningProcess:
    """A started `ManagedProcess`: its pid, log file and, once known, its base URL."""

    def __init__(
        self, spec: ManagedProcess, env: Mapping[str, str], log_dir: Path, targets_dir: Path, cafile: Path | None = None
    ) -> None:
        self.spec = spec
        self.targets_dir = targets_dir
        self.cafile = cafile
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_file = log_dir / f"{spec.name.replace(' ', '-')}.log"
        with self.log_file.open("ab") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", *spec.args],
                env=dict(env),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                process_group=0,
            )
        self.url: str | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def metrics_url(self) -> str:
        return f"{self.url}/metrics"

    def log_tail(self, lines: int = 10) -> str:
        text = self.log_file.read_text(errors="replace") if self.log_file.is_file() else ""
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def exited(self) -> GdxError | None:
        """The error to report when the process has exited; None while it runs."""
        code = self.popen.poll()
        if code is None:
            return None
        said = [line for line in self.log_tail(lines=20).splitlines() if line.startswith("gdx: ")]
        if said:  # the child's own one-line error says it best
            return GdxError(f"{self.spec.name} (pid {self.pid}) exited with code {code}: {said[-1][5:]}")
        return GdxError(
            f"{self.spec.name} (pid {self.pid}) exited with code {code}; last lines of its log:\n{self.log_tail()}",
            f"read {self.log_file}",
        )

    def _announced_url(self) -> str | None:
        for path in self.targets_dir.glob(f"*-{self.pid}.json"):
            try:
                group = json.loads(path.read_text())[0]
                return f"{group.get('labels', {}).get('__scheme__', 'http')}://{group['targets'][0]}"
            except (OSError, ValueError, LookupError):
                return None
        return None

    def wait_ready(self, progress: Callable[[str], None]) -> float:
        """Poll until `/readyz` answers 200; returns the seconds it took. A dead child or the
        timeout is a GdxError naming what was not ready."""
        began = time.monotonic()
        deadline = began + self.spec.ready_timeout_s
        reason = "its health server has not announced itself yet"
        said = 0.0
        while time.monotonic() < deadline:
            if (error := self.exited()) is not None:
                raise error
            self.url = self.url or self._announced_url()
            if self.url is not None:
                try:
                    status, body = http_get(f"{self.url}/readyz", cafile=self.cafile)
                except OSError as exc:
                    status, body = 0, str(exc).encode()
                if status == 200:
                    return time.monotonic() - began
                reason = _failing(body)
            elapsed = time.monotonic() - began
            if elapsed - said >= 5.0:
                said = elapsed
                progress(f"{self.spec.name}: not ready after {elapsed:.0f} s ({reason})")
            time.sleep(POLL_S)
        raise GdxError(
            f"{self.spec.name} (pid {self.pid}) was not ready within {self.spec.ready_timeout_s:g} s "
            f"({reason}); last lines of its log:\n{self.log_tail()}",
            f"read {self.log_file}",
        )

    def stop(self) -> str:
        """The stop signal, then SIGKILL after the timeout; one line saying how it ended."""
        if self.popen.poll() is not None:
            return f"{self.spec.name}: had already exited with code {self.popen.returncode}"
        began = time.monotonic()
        self.popen.send_signal(self.spec.stop_signal)
        try:
            code = self.popen.wait(timeout=self.spec.stop_timeout_s)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            return f"{self.spec.name}: killed after {self.spec.stop_timeout_s:g} s without stopping"
        return f"{self.spec.name}: stopped in {time.monotonic() - began:.1f} s (exit code {code})"


def _failing(body: bytes) -> str:
    try:
        failing = json.loads(body).get("failing", {})
    except ValueError:
        return body.decode(errors="replace")[:200]
    return "; ".join(f"{name}: {why}" for name, why in failing.items()) or "not ready"


def scrape_totals(url: str, series: tuple[str, ...], cafile: Path | None = None) -> dict[str, float]:
    """Each counter summed over its labels in one process's `/metrics`; empty if unreachable."""
    try:
        status, body = http_get(url, cafile=cafile)
    except OSError:
        return {}
    if status != 200:
        return {}
    totals = dict.fromkeys(series, 0.0)
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name in totals:
                totals[sample.name] += sample.value
    return totals


class Stack:
    """Everything the stack started, in order; `stop()` undoes it in reverse.

    Services that are not children of ours (the broker, Prometheus) register their own stop with
    `on_stop`; a child process registers its stop the moment it is spawned, so an interrupt while
    it is still starting stops it too.
    """

    def __init__(
        self, state_dir: Path, targets_dir: Path, say: Callable[[str], None], cafile: Path | None = None
    ) -> None:
        """`cafile`: what the children's HTTPS addresses are verified with (the system's CAs when None)."""
        self.log_dir = state_dir / "logs"
        self.targets_dir = targets_dir
        self.cafile = cafile
        self.say = say
        self.processes: list[RunningProcess] = []
        self._stops: list[Callable[[], list[str]]] = []

    def on_stop(self, stop: Callable[[], list[str]]) -> None:
        self._stops.append(stop)

    def start(self, spec: ManagedProcess, env: Mapping[str, str]) -> RunningProcess:
        """Spawn the child with `env`, and return once it is ready (or raise a GdxError saying why not)."""
        process = RunningProcess(spec, env, self.log_dir, self.targets_dir, self.cafile)
        self.processes.append(process)
        self.on_stop(lambda: [process.stop()])
        self.say(f"{spec.name}: started pid {process.pid}, log {process.log_file}")
        seconds = process.wait_ready(self.say)
        self.say(f"{spec.name}: ready in {seconds:.1f} s")
        return process

    def check_alive(self) -> None:
        """Raise the first child's exit as a GdxError: a stack with a dead part is not running."""
        for process in self.processes:
            if (error := process.exited()) is not None:
                raise error

    def totals(self, *series: str) -> dict[str, float]:
        """Each counter summed over every child, from their `/metrics` (unreachable ones skipped)."""
        totals = dict.fromkeys(series, 0.0)
        for process in self.processes:
            if process.url is not None:
                for name, value in scrape_totals(process.metrics_url, series, process.cafile).items():
                    totals[name] += value
        return totals

    def stop(self) -> None:
        """Stop everything in reverse order of start; a further stop signal cannot cut it short."""
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
        while self._stops:
            for line in self._stops.pop()():
                self.say(line)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""Ctrl-C, a service manager or `kill`, a closed terminal: each stops the stack the same clean way
(the children, in their own process group, would not hear the terminal's hang-up themselves)."""


def interrupt_on_stop_signals() -> None:
    """SIGTERM and SIGHUP raise KeyboardInterrupt, as SIGINT does, so one code path stops the stack."""

    def _raise(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    for signum in STOP_SIGNALS[1:]:
        signal.signal(signum, _raise)
