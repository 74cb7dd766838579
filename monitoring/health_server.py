"""`/metrics`, `/healthz` and `/readyz` for a process that has no HTTP server of its own.

Agency publishers and stream workers start one `HealthServer`; it answers from a daemon thread, so
it needs nothing from the process's event loop. It announces itself as a Prometheus scrape target
(see `monitoring.scrape_targets`) when given the targets directory, and withdraws on stop.

- `/healthz`: the process is alive and its HTTP thread answers — 200 always.
- `/readyz`: the process can do its work (connected, partitions assigned, store open…) — 200, or
  503 with a JSON body naming every failing check and why, so an operator sees *what* is not ready.
- `/metrics`: the Prometheus text exposition of the registry.

A process with its own HTTP app (the lookup API) serves the same answers from `Readiness.probe`
and `metrics_payload` instead of running a second server.
"""

from __future__ import annotations

import errno
import json
import logging
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Self

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from foundation.errors import GdxError
from monitoring import scrape_targets

log = logging.getLogger("gdx.health")

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"

Check = Callable[[], str | None]
"""A readiness check: None when ready, else the reason it is not (one short line)."""

Answer = tuple[int, bytes, str]
"""An HTTP answer: status, body, content type."""
Route = Callable[[bytes, Mapping[str, str]], Answer]
"""A process's own endpoint beside the three: (request body, request headers) -> its answer."""
MAX_BODY_BYTES = 1 << 20


class Readiness:
    """The readiness of one process: polled checks plus conditions the process sets as they change.

    Checks run on every `/readyz` request, so keep them cheap (read a flag, not a network call).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._checks: dict[str, Check] = {}
        self._conditions: dict[str, str | None] = {}

    def add_check(self, name: str, check: Check) -> None:
        with self._lock:
            self._checks[name] = check

    def set_not_ready(self, name: str, reason: str) -> None:
        with self._lock:
            self._conditions[name] = reason

    def set_ready(self, name: str) -> None:
        with self._lock:
            self._conditions[name] = None

    def failing(self) -> dict[str, str]:
        """Every failing check or condition with its reason; empty when the process is ready."""
        with self._lock:
            checks = dict(self._checks)
            failing = {name: reason for name, reason in self._conditions.items() if reason is not None}
        for name, check in checks.items():
            try:
                reason = check()
            except Exception as exc:  # noqa: BLE001 — a broken check means "not ready", never a broken endpoint
                reason = f"check raised {type(exc).__name__}: {exc}"
            if reason is not None:
                failing[name] = reason
        return failing

    def probe(self) -> tuple[int, dict[str, object]]:
        """The `/readyz` answer as (HTTP status, JSON body)."""
        failing = self.failing()
        if failing:
            return 503, {"status": "not ready", "failing": failing}
        return 200, {"status": "ready"}


def metrics_payload(registry: CollectorRegistry = REGISTRY) -> tuple[bytes, str]:
    """The `/metrics` answer as (body, content type)."""
    return generate_latest(registry), CONTENT_TYPE_LATEST


def multiprocess_registry() -> CollectorRegistry:
    """The metrics of every process writing to the directory `PROMETHEUS_MULTIPROC_DIR` names
    (prometheus_client's multiprocess mode), summed: for processes that share one port."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # unannotated in prometheus_client
    return registry


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            body, content_type = metrics_payload(self.server.registry)
            self._send(200, body, content_type)
        elif path == "/healthz":
            self._send_json(200, {"status": "alive", "process": self.server.process_name})
        elif path == "/readyz":
            self._send_json(*self.server.readiness.probe())
        else:
            self._route("GET", path, b"")

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self._send_json(
                413 if length > MAX_BODY_BYTES else 400,
                {"error": f"a body needs a Content-Length of at most {MAX_BODY_BYTES} bytes"},
            )
            return
        self._route("POST", self.path.split("?", 1)[0], self.rfile.read(length))

    def _route(self, method: str, path: str, body: bytes) -> None:
        route = self.server.routes.get((method, path))
        if route is None:
            endpoints = ["/metrics", "/healthz", "/readyz", *sorted({p for _, p in self.server.routes})]
            self._send_json(404, {"error": f"no such endpoint {method} {path}", "endpoints": endpoints})
            return
        self._send(*route(body, {k.lower(): v for k, v in self.headers.items()}))

    def _send_json(self, status: int, body: dict[str, object]) -> None:
        self._send(status, json.dumps(body).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("health request", extra={"request": format % args})


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        registry: CollectorRegistry,
        readiness: Readiness,
        process_name: str,
        routes: Mapping[tuple[str, str], Route],
    ) -> None:
        self.routes = routes
        self.registry = registry
        self.readiness = readiness
        self.process_name = process_name
        super().__init__(address, _Handler)


class HealthServer:
    """The three endpoints of one process, on `host:port` (port 0: a free one, see `.port`).

    Use as a context manager, or `start()` / `stop()`. `port_setting` names the setting that
    chooses the port, so a busy port's error says how to pick another.
    """

    def __init__(
        self,
        name: str,
        role: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        readiness: Readiness | None = None,
        registry: CollectorRegistry = REGISTRY,
        targets_dir: Path | None = None,
        port_setting: str | None = None,
        routes: Mapping[tuple[str, str], Route] | None = None,
    ) -> None:
        """`routes`: the process's own endpoints by (method, path), e.g. a webhook."""
        if not scrape_targets.NAME.match(name):
            raise ValueError(
                f"process name {name!r} must match {scrape_targets.NAME.pattern} (it names a scrape target)"
            )
        self.name = name
        self.role = role
        self.host = host
        self.requested_port = port
        self.readiness = readiness or Readiness()
        self.registry = registry
        self.targets_dir = targets_dir
        self.port_setting = port_setting
        self.routes = dict(routes or {})
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._target_file: Path | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the health server is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        """Bind (or raise a GdxError naming the port), serve in the background, announce the target."""
        try:
            self._server = _Server(
                (self.host, self.requested_port), self.registry, self.readiness, self.name, self.routes
            )
        except OSError as exc:
            raise self._bind_error(exc) from None
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"health-{self.name}", daemon=True)
        self._thread.start()
        if self.targets_dir is not None:
            self._target_file = scrape_targets.register(
                self.targets_dir, self.name, f"{self.host}:{self.port}", {"role": self.role}
            )
        log.info("health server listening", extra={"process_name": self.name, "url": self.url})
        return self

    def _bind_error(self, exc: OSError) -> GdxError:
        where = f"{self.host}:{self.requested_port}"
        if exc.errno == errno.EADDRINUSE:
            what = (
                f"{self.name}: port {self.requested_port} on {self.host} is already in use; cannot serve /metrics there"
            )
        elif exc.errno == errno.EACCES:
            what = f"{self.name}: not allowed to listen on {where} (ports below 1024 need privileges)"
        else:
            what = f"{self.name}: cannot listen on {where}: {exc.strerror or exc}"
        choose = f"choose another with {self.port_setting}" if self.port_setting else "choose another port"
        return GdxError(what, f"stop the process holding it, or {choose} (0 picks a free port)")

    def stop(self) -> None:
        """Withdraw the scrape target, then stop answering."""
        if self._target_file is not None:
            self._target_file.unlink(missing_ok=True)
            self._target_file = None
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
