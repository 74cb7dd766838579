"""`gdx serve --workers N`: N lookup processes behind one port, because one event loop is one core.

The parent binds the port (a busy port is one clear line), then starts N processes that all accept
on that socket, and supervises them: a process that dies is started again, unless it dies within
`EARLY_EXIT_S` of its start, which is a configuration problem that a restart would only repeat.

What must not be shared between the processes is split between them:
- the audit trail: each writes its own hash chain, partition `audit_partition + i` of `gdx.audit`
  (one writer per chain), so the topic needs that many partitions;
- a consumer's rate limit: each enforces 1/N of it (`LookupService`);
- metrics: prometheus_client's multiprocess mode, with a directory under the state directory that
  is emptied at start; whichever process a scrape reaches answers for all of them. The parent
  announces the port as one scrape target, as a single process does.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import time
from contextlib import suppress
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess

from prometheus_client import multiprocess

from linkage.api import LookupServer, announce, event_loop_factory
from linkage.audit import AUDIT_TOPIC
from monitoring.health_server import MULTIPROCESS_DIR
from streams.errors import GdxError
from streams.kafka_probe import topic_partitions
from streams.logs import configure_logging
from streams.settings import Settings

log = logging.getLogger("gdx.lookup")

EARLY_EXIT_S = 5.0
PR_SET_PDEATHSIG = 1
STOP_TIMEOUT_S = 30.0


class Stopped(Exception):
    """SIGTERM: stop serving (raised from the signal handler, after uvicorn's own graceful shutdown)."""


def stop_on_sigterm(signum: int, frame: object) -> None:
    raise Stopped


def check_audit_partitions(settings: Settings, workers: int) -> None:
    """Every process needs a partition of its own; say so before starting any."""
    topic = settings.topic(AUDIT_TOPIC)
    found = len(asyncio.run(topic_partitions(settings.bootstrap_servers, [topic])))
    needed = settings.audit_partition + workers
    if found == 0:
        raise GdxError(f"topic {topic} does not exist", "create the catalog's topics with `gdx topics apply`")
    if found < needed:
        raise GdxError(f"{workers} lookup processes from audit partition {settings.audit_partition} need {needed} "
                       f"partitions of {topic}; it has {found}",
                       "use fewer --workers, or add partitions to the topic (kafka-topics.sh --alter --partitions)")


def run_until_stopped(server: LookupServer) -> None:
    """Serve until SIGTERM or Ctrl-C: the body of `gdx serve` and of each of its processes."""
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again under the handler it
    # found; the default one would kill the process before it withdraws its scrape target.
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    with suppress(Stopped, KeyboardInterrupt), asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(server.run())


def _worker_main(settings: Settings, sock: socket.socket, log_level: str | None, parent: int) -> None:
    configure_logging(log_level)
    _stop_with_parent(parent)
    run_until_stopped(LookupServer(settings, sock=sock))


def _stop_with_parent(parent: int) -> None:
    """SIGTERM when the parent dies, even by SIGKILL (Linux's PR_SET_PDEATHSIG): an orphan would go
    on answering on the port, unsupervised and unannounced."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before the request took effect
        raise SystemExit(0)


class LookupProcesses:
    """The parent of `workers` lookup processes sharing `sock`."""

    def __init__(self, settings: Settings, sock: socket.socket, workers: int, log_level: str | None = None) -> None:
        self.settings = settings
        self.sock = sock
        self.workers = workers
        self.log_level = log_level
        self.metrics_dir = settings.state_dir / "lookup-metrics"
        self._context = multiprocessing.get_context("spawn")
        self._processes: dict[int, BaseProcess] = {}
        self._started: dict[int, float] = {}

    def prepare_metrics_dir(self) -> None:
        """An empty directory, named in the environment the processes inherit: files of earlier runs
        would add their counts to this run's."""
        shutil.rmtree(self.metrics_dir, ignore_errors=True)
        self.metrics_dir.mkdir(parents=True)
        os.environ[MULTIPROCESS_DIR] = str(self.metrics_dir)

    def _start(self, index: int) -> None:
        settings = self.settings.model_copy(update={"audit_partition": self.settings.audit_partition + index})
        process = self._context.Process(target=_worker_main, args=(settings, self.sock, self.log_level, os.getpid()),
                                        name=f"lookup-{index}", daemon=False)
        process.start()
        self._processes[index] = process
        self._started[index] = time.monotonic()
        log.info("lookup process started", extra={"index": index, "pid": process.pid,
                                                  "audit_partition": settings.audit_partition})

    def run(self) -> None:
        """Start every process and keep them running until SIGTERM or Ctrl-C (then stop them all)."""
        self.prepare_metrics_dir()
        previous = signal.signal(signal.SIGTERM, stop_on_sigterm)
        target = announce(self.settings, int(self.sock.getsockname()[1]))
        try:
            for index in range(self.workers):
                self._start(index)
            self._supervise()
        except (Stopped, KeyboardInterrupt):
            pass
        finally:
            target.unlink(missing_ok=True)
            signal.signal(signal.SIGTERM, previous)
            self.stop()

    def _supervise(self) -> None:
        while True:
            sentinels = {p.sentinel: index for index, p in self._processes.items()}
            for ready in wait(list(sentinels)):
                index = sentinels[ready]  # type: ignore[index]
                process = self._processes[index]
                process.join()
                if process.pid is not None:
                    multiprocess.mark_process_dead(process.pid)
                lived = time.monotonic() - self._started[index]
                if lived < EARLY_EXIT_S:
                    raise GdxError(f"lookup process {index} (pid {process.pid}) exited with code {process.exitcode} "
                                   f"{lived:.1f} s after its start", "read its log lines above")
                log.error("lookup process died; starting it again",
                          extra={"index": index, "pid": process.pid, "exitcode": process.exitcode})
                self._start(index)

    def stop(self) -> None:
        """SIGTERM to every process (each finishes its requests), SIGKILL to any still there after the timeout."""
        for process in self._processes.values():
            if process.is_alive():
                process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in self._processes.values():
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
