"""`gdx serve --workers N`: N lookup processes behind one port, because one event loop is one core.

The parent prepares what the processes would otherwise race for (the index's migrations, the
audit signing key), binds the port (a busy port is one clear line), then starts N processes that
all accept on that socket, and supervises them. A process that dies is started again; one that
dies within `EARLY_EXIT_S` of its first start stops them all, as a configuration problem would
only repeat, and a restart that dies as fast is retried with a growing pause.

A process accepts connections only once it can answer (audit chain recovered and sealed, consents
replayed, or `STARTUP_GATE_S` passed): on a shared port any process takes the next connection,
so a starting one would otherwise refuse lookups its siblings could answer.

What must not be shared between the processes is split between them:
- the audit trail: each writes its own hash chain, partition `audit_partition + i` of `gdx.audit`
  (one writer per chain), so the topic needs that many partitions;
- a consumer's rate limit: each enforces 1/N of it (`LookupService`);
- metrics: prometheus_client's multiprocess mode, set for the processes only, with a directory
  per port under the state directory that is emptied at start; whichever process a scrape
  reaches answers for all of them. The parent announces the port as one scrape target, as a
  single process does.
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
import sys
import time
from contextlib import suppress
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess

from prometheus_client import multiprocess

from foundation.errors import GdxError
from foundation.logs import configure_logging
from linkage.database import index_engine
from linkage.migrate import upgrade
from monitoring.health_server import MULTIPROCESS_DIR
from streams.audit_chains import audit_keys, check_chains
from streams.lookup_server import LookupServer, announce, event_loop_factory
from streams.security.principals import LOOKUP
from streams.settings import Settings

log = logging.getLogger("gdx.lookup")

EARLY_EXIT_S = 5.0
RESTART_PAUSE_MAX_S = 30.0
STOP_TIMEOUT_S = 20.0
"""Under the stack's 30 s: the parent must finish stopping its processes before it is killed."""
PR_SET_PDEATHSIG = 1
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(Exception):
    """SIGTERM: stop serving (raised from the signal handler, after uvicorn's own graceful shutdown)."""


def stop_on_sigterm(signum: int, frame: object) -> None:
    raise Stopped


def check_audit_chains(settings: Settings, workers: int) -> None:
    """Every process needs a partition of its own, and the record it will chain from must verify."""
    check_chains(
        settings,
        settings.kafka_for(LOOKUP),
        range(settings.audit_partition, settings.audit_partition + workers),
        f"{workers} lookup processes from audit partition {settings.audit_partition}",
        "use fewer --workers, or add partitions to the topic (kafka-topics.sh --alter --partitions)",
    )


def prepare_shared_state(settings: Settings) -> None:
    """What every process would otherwise create at once on a fresh state directory: the index's
    tables (concurrent migrations fail) and the audit signing key (each could make its own)."""
    engine = index_engine(settings.index_database_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    audit_keys(settings)


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
    try:
        run_until_stopped(LookupServer(settings, sock=sock))
    except GdxError as exc:  # one line, as `gdx` itself says it, not a traceback per process
        print(f"gdx: lookup process {settings.audit_partition}: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(exc.exit_code) from None


def _stop_with_parent(parent: int) -> None:
    """SIGTERM when the parent dies, even by SIGKILL (Linux's PR_SET_PDEATHSIG): an orphan would go
    on answering on the port, unsupervised and unannounced."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # it died before the request took effect
        raise SystemExit(0)


class LookupProcesses:
    """The parent of `workers` lookup processes sharing `sock`."""

    def __init__(self, settings: Settings, sock: socket.socket, workers: int, log_level: str | None = None) -> None:
        self.settings = settings
        self.sock = sock
        self.port = int(sock.getsockname()[1])
        self.workers = workers
        self.log_level = log_level
        self.metrics_dir = settings.state_dir / f"lookup-metrics-{self.port}"
        self._context = multiprocessing.get_context("spawn")
        self._processes: dict[int, BaseProcess] = {}
        self._started: dict[int, float] = {}
        self._restarts: dict[int, int] = {}

    def _start(self, index: int) -> None:
        """Start process `index`; the multiprocess-metrics directory is named in its environment
        only (spawn copies it at start), so nothing else of this process's reads it."""
        settings = self.settings.model_copy(update={"audit_partition": self.settings.audit_partition + index})
        process = self._context.Process(
            target=_worker_main,
            args=(settings, self.sock, self.log_level, os.getpid()),
            name=f"lookup-{index}",
            daemon=True,
        )
        before = os.environ.get(MULTIPROCESS_DIR)
        os.environ[MULTIPROCESS_DIR] = str(self.metrics_dir)
        try:
            process.start()
        finally:
            if before is None:
                del os.environ[MULTIPROCESS_DIR]
            else:
                os.environ[MULTIPROCESS_DIR] = before
        self._processes[index] = process
        self._started[index] = time.monotonic()
        log.info(
            "lookup process started",
            extra={"index": index, "pid": process.pid, "audit_partition": settings.audit_partition},
        )

    def run(self) -> None:
        """Start every process and keep them running until SIGTERM or Ctrl-C (then stop them all)."""
        prepare_shared_state(self.settings)
        shutil.rmtree(self.metrics_dir, ignore_errors=True)  # earlier runs' counts would add to this run's
        self.metrics_dir.mkdir(parents=True)
        previous = signal.signal(signal.SIGTERM, stop_on_sigterm)
        target = announce(self.settings, self.port)
        try:
            for index in range(self.workers):
                self._start(index)
            self._supervise()
        except (Stopped, KeyboardInterrupt):
            pass
        finally:
            target.unlink(missing_ok=True)
            for signum in STOP_SIGNALS:  # a second signal must not cut the stop short
                signal.signal(signum, signal.SIG_IGN)
            self.stop()
            signal.signal(signal.SIGTERM, previous)
            signal.signal(signal.SIGINT, signal.default_int_handler)

    def _supervise(self) -> None:
        while True:
            ready = wait([p.sentinel for p in self._processes.values()])
            for index in [i for i, p in self._processes.items() if p.sentinel in ready]:
                self._restart(index)

    def _restart(self, index: int) -> None:
        process = self._processes[index]
        process.join()
        if process.pid is not None:
            multiprocess.mark_process_dead(process.pid, str(self.metrics_dir))  # type: ignore[no-untyped-call]
        lived = time.monotonic() - self._started[index]
        early = lived < EARLY_EXIT_S
        if early and index not in self._restarts:
            raise GdxError(
                f"lookup process {index} (pid {process.pid}) exited with code {process.exitcode} "
                f"{lived:.1f} s after its start",
                "read its log lines above",
            )
        self._restarts[index] = self._restarts.get(index, 0) + 1 if early else 0
        pause = min(RESTART_PAUSE_MAX_S, 2.0 ** self._restarts[index]) if early else 0.0
        log.error(
            "lookup process died; starting it again",
            extra={"index": index, "pid": process.pid, "exitcode": process.exitcode, "pause_s": pause},
        )
        time.sleep(pause)
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
