"""The lookup API on uvicorn: a socket bound up front (so a busy port is a clear error and port 0
is known before serving), served until cancelled or signalled, and announced to Prometheus like
every process of the backbone.

HTTPS by default: uvicorn is given a certificate and key (an operator's, `GDX_LOOKUP_TLS_CERT` /
`GDX_LOOKUP_TLS_KEY`, else the one of the server name `gdx-lookup` issued by the project CA on
first start) and wraps every connection accepted on the pre-bound socket, in each of N processes
sharing it. `GDX_LOOKUP_TLS=off` (`gdx serve --insecure-http`) serves plain HTTP, for development.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import socket
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from foundation.errors import GdxError
from linkage.api import PROCESS
from monitoring import scrape_targets
from streams.lookup_app import create_lookup_app
from streams.security.principals import LOOKUP
from streams.settings import Settings

log = logging.getLogger("gdx.lookup")

SERVER_NAME = LOOKUP
"""The project CA's certificate the API serves: the lookup API's own principal, a server principal
(serverAuth, SAN 127.0.0.1 and localhost) in `streams.security.pki`."""


@dataclass(frozen=True)
class ServerTls:
    """The certificate chain and key uvicorn serves HTTPS with."""

    cert: Path
    key: Path


def server_tls(settings: Settings) -> ServerTls | None:
    """The API's certificate and key (issued from the project CA when missing); None: plain HTTP."""
    if settings.lookup_tls == "off":
        return None
    cert, key = settings.lookup_tls_cert, settings.lookup_tls_key
    if cert is not None or key is not None:
        if cert is None or key is None:
            raise GdxError(
                "GDX_LOOKUP_TLS_CERT and GDX_LOOKUP_TLS_KEY go together; only one is set",
                "set both (PEM files), or neither for a certificate from the project CA",
            )
        for path in (cert, key):
            if not path.is_file():
                raise GdxError(f"lookup API: TLS file {path} does not exist", "check GDX_LOOKUP_TLS_CERT/KEY")
        return ServerTls(cert, key)
    from streams.security.pki import Pki

    issued = Pki.of(settings.state_dir.resolve()).ensure(SERVER_NAME, server=True)
    return ServerTls(issued.cert, issued.key)


def warn_if_plain(settings: Settings) -> None:
    """One warning line when the API serves plain HTTP (said once, by the process that prints the URL)."""
    if settings.lookup_tls == "off":
        log.warning(
            "lookup API serves plain HTTP (GDX_LOOKUP_TLS=off / --insecure-http): API keys and personal data "
            "cross the wire unencrypted — for development only"
        )


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound now: a busy port is one clear line, not a traceback from uvicorn."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        what = "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound ({exc.strerror})"
        raise GdxError(
            f"lookup API: port {port} on {host} {what}",
            "stop the process holding it, or choose another with GDX_LOOKUP_PORT (0 picks a free one)",
        ) from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def api_url(settings: Settings, port: int) -> str:
    return f"{settings.lookup_scheme}://{settings.lookup_host}:{port}"


def announce(settings: Settings, port: int) -> Path:
    """Register the API's port as this process's scrape target (withdraw it by unlinking the path)."""
    return scrape_targets.register(
        scrape_targets.targets_dir(settings.state_dir),
        PROCESS,
        f"{settings.lookup_host}:{port}",
        # file_sd's reserved label: Prometheus scrapes this target over HTTPS (its job has the CA).
        {"role": "api", "__scheme__": settings.lookup_scheme},
    )


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop where it is installed (its sockets cost a fraction of asyncio's), else asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


class LookupServer:
    """The API on uvicorn: `await LookupServer(settings).run()` serves until cancelled or signalled.

    The stack can start it in its own event loop (`asyncio.Runner(loop_factory=event_loop_factory())`
    for uvloop); `url` is known once `started` is set.
    """

    def __init__(
        self, settings: Settings, app: FastAPI | None = None, port: int | None = None, sock: socket.socket | None = None
    ) -> None:
        """`sock`: a listening socket bound by a parent that runs several of these processes on one
        port (`streams.lookup_processes`); the parent then announces the port to Prometheus."""
        self.settings = settings
        self.announces = sock is None
        self.tls = server_tls(settings)  # before binding: a missing certificate leaves no socket behind
        self.socket = sock or bind(settings.lookup_host, settings.lookup_port if port is None else port)
        self.port = int(self.socket.getsockname()[1])
        self.url = api_url(settings, self.port)
        config = uvicorn.Config(
            app or create_lookup_app(settings),
            log_config=None,
            access_log=False,
            lifespan="on",
            proxy_headers=False,  # the API uses no client address; a proxy's headers change nothing
            ssl_certfile=None if self.tls is None else self.tls.cert,
            ssl_keyfile=None if self.tls is None else self.tls.key,
        )
        self.server = uvicorn.Server(config)
        self.started = asyncio.Event()

    async def run(self) -> None:
        serving = asyncio.create_task(self.server.serve(sockets=[self.socket]))
        target = None
        try:
            while not self.server.started and not serving.done():
                await asyncio.sleep(0.02)
            if self.server.started:
                # What start-up built lives as long as the server: keep it out of the collector's
                # full passes, whose pauses would otherwise show in the latency tail.
                gc.freeze()
                if self.announces:
                    target = announce(self.settings, self.port)
                self.started.set()
            await serving
        finally:
            if target is not None:
                target.unlink(missing_ok=True)
            self.server.should_exit = True
            with suppress(asyncio.CancelledError):
                await serving
            self.socket.close()
