"""An open-loop HTTP/1.1 load generator that costs its machine as little as it can.

The lookup benchmark runs its load generator on the server's own two cores, so every
microsecond the generator spends is taken from the server and shows as the server's latency.
aiohttp cost about 0.5 ms of CPU per request here, a quarter of a core at 500/s; this generator
writes prebuilt request bytes on keep-alive connections and reads only a response's status line
and Content-Length, from plain event-loop callbacks (no coroutine, no task per request).

Request i is sent at t0 + i / rate whatever happened before, and its latency counts from that
scheduled time, so a server falling behind shows as latency (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import urlsplit

TIMEOUT_S = 10.0
IDLE_CLOSE_S = 2.0
"""An idle connection is closed, not reused, after this long: well inside the server's keep-alive
timeout (uvicorn's is 5 s), so a request is never written into a connection the server is closing."""


@dataclass
class LoadResult:
    """Latencies (s, from the scheduled send) of answers with the expected status; everything else is a failure."""

    latencies: list[float] = field(default_factory=list)
    lateness: list[float] = field(default_factory=list)
    """How late each request left the generator (s): its own share of the latencies, on a shared machine."""
    failures: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    elapsed_s: float = 0.0


class _Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.scheduled = 0.0
        self.busy = False
        self.idle_since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio's classes

    def send(self, request: bytes, scheduled: float) -> None:
        assert self.transport is not None
        self.busy, self.scheduled = True, scheduled
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        at = head.find(b"\r\ncontent-length:")
        if at < 0:  # every answer of the API has a length; anything else is not one we can frame
            self._fail()
            return
        line_end = head.find(b"\r\n", at + 2)
        length = int(head[at + 17 : line_end if line_end > 0 else len(head)])
        if len(self.buffer) < end + 4 + length:
            return
        status = int(self.buffer[9:12])
        del self.buffer[: end + 4 + length]
        self.busy = False
        self.pool.answered(self, status, self.scheduled)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.busy:
            self._fail()

    def _fail(self) -> None:
        self.busy = False
        if self.transport is not None:
            self.transport.close()
            self.transport = None
        self.pool.failed()


class _Pool:
    def __init__(
        self, host: str, port: int, expect: int, result: LoadResult, total: int, tls: ssl.SSLContext | None = None
    ) -> None:
        self.host, self.port, self.expect, self.tls = host, port, expect, tls
        self.result = result
        self.idle: list[_Connection] = []
        self.connections: list[_Connection] = []
        self.outstanding = total
        self.loop = asyncio.get_running_loop()
        self.done: asyncio.Future[None] = self.loop.create_future()

    def submit(self, request: bytes, scheduled: float) -> None:
        self.result.lateness.append(time.monotonic() - scheduled)
        while self.idle:
            connection = self.idle.pop()
            if connection.transport is None:
                continue
            if time.monotonic() - connection.idle_since > IDLE_CLOSE_S:
                connection.transport.close()
                continue
            connection.send(request, scheduled)
            return
        self.loop.create_task(self._connect_and_send(request, scheduled))

    async def _connect_and_send(self, request: bytes, scheduled: float) -> None:
        try:
            _, connection = await self.loop.create_connection(
                lambda: _Connection(self),
                self.host,
                self.port,
                ssl=self.tls,
                server_hostname=self.host if self.tls else None,
            )
        except OSError:
            self.result.failures += 1
            self._finish()
            return
        self.connections.append(connection)
        connection.send(request, scheduled)

    def answered(self, connection: _Connection, status: int, scheduled: float) -> None:
        connection.idle_since = time.monotonic()
        self.idle.append(connection)
        self.result.statuses[status] = self.result.statuses.get(status, 0) + 1
        if status == self.expect:
            self.result.latencies.append(time.monotonic() - scheduled)
        else:
            self.result.failures += 1
        self._finish()

    def failed(self) -> None:
        self.result.failures += 1
        self._finish()

    def _finish(self) -> None:
        self.outstanding -= 1
        if self.outstanding == 0 and not self.done.done():
            self.done.set_result(None)

    def close(self) -> None:
        """Close every connection; requests still on one were counted as failures already."""
        for connection in self.connections:
            connection.busy = False
            if connection.transport is not None:
                connection.transport.close()


def requests_for(url: str, paths: Sequence[str], headers: dict[str, str]) -> tuple[str, int, list[bytes]]:
    """(host, port, the prebuilt GET request of each path)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return host, port, [f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}\r\n".encode() for path in paths]


async def offered_load(
    url: str,
    paths: Sequence[str],
    rate: float,
    seconds: float,
    headers: dict[str, str] | None = None,
    expect: int = 200,
    tls: ssl.SSLContext | None = None,
) -> LoadResult:
    """GET `paths` (round robin) at `rate` per second for `seconds`; requests still unanswered
    TIMEOUT_S after the last send count as failures. `tls`: the client context of an https `url`
    (the handshake happens once per keep-alive connection, so it is counted in few latencies)."""
    host, port, requests = requests_for(url, paths, headers or {})
    total = int(rate * seconds)
    result = LoadResult()
    if total == 0:
        return result
    if url.startswith("https:") and tls is None:
        raise ValueError("an https url needs a TLS context that trusts its certificate")
    pool = _Pool(host, port, expect, result, total, tls)
    loop = asyncio.get_running_loop()
    # Sends are timed by the loop's clock (uvloop's counts whole milliseconds), latencies by the
    # monotonic clock: a send up to a millisecond late is the generator's lateness, and counted;
    # one that the coarser clock lets out early counts from when it left.
    t0, m0 = loop.time() + 0.05, time.monotonic() + 0.05

    def send(i: int) -> None:
        pool.submit(requests[i % len(requests)], min(m0 + i / rate, time.monotonic()))
        if i + 1 < total:
            loop.call_at(t0 + (i + 1) / rate, send, i + 1)

    loop.call_at(t0, send, 0)
    try:
        await asyncio.wait_for(asyncio.shield(pool.done), seconds + 0.05 + TIMEOUT_S)
    except TimeoutError:
        result.failures += pool.outstanding
    result.elapsed_s = time.monotonic() - m0
    pool.close()
    return result
