"""The lookup benchmark's load generator counts what a server really answered: statuses, framing by
Content-Length across reads, keep-alive reuse, and a connection dropped mid-answer as a failure."""

from __future__ import annotations

import asyncio
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from streams.security.pki import Pki

sys.path.insert(0, str(Path(__file__).parent.parent / "bench"))
from open_loop import offered_load

BODY = b'{"answer": "' + b"x" * 3000 + b'"}'


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, connections: list[int]) -> None:
    connections.append(1)
    try:
        while request := await reader.readuntil(b"\r\n\r\n"):
            path = request.split(b" ", 2)[1]
            if path == b"/drop":
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial")
                await writer.drain()
                break
            status = b"200 OK" if path == b"/ok" else b"404 Not Found"
            head = (
                b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(BODY)
            )
            writer.write(head + BODY[:10])  # the body arrives in two reads
            await writer.drain()
            await asyncio.sleep(0.001)
            writer.write(BODY[10:])
            await writer.drain()
    except asyncio.IncompleteReadError:
        pass
    finally:
        writer.close()


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, list[int]]]:
    connections: list[int] = []
    listening = await asyncio.start_server(lambda r, w: _answer(r, w, connections), "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    async with listening:
        yield f"http://127.0.0.1:{port}", connections


async def test_statuses_latencies_and_keep_alive(server: tuple[str, list[int]]) -> None:
    url, connections = server
    result = await offered_load(url, ["/ok", "/missing"], rate=200, seconds=0.5)
    assert result.statuses == {200: 50, 404: 50}
    assert len(result.latencies) == 50 and result.failures == 50  # a 404 is not the expected answer
    assert all(0 < latency < 1 for latency in result.latencies)
    assert len(result.lateness) == 100
    assert len(connections) < 20  # answered connections are reused, not one per request


async def test_a_connection_dropped_mid_answer_is_a_failure(server: tuple[str, list[int]]) -> None:
    url, _ = server
    result = await offered_load(url, ["/ok", "/drop"], rate=100, seconds=0.2)
    assert result.statuses == {200: 10}
    assert len(result.latencies) == 10 and result.failures == 10


async def test_over_tls_the_generator_verifies_the_servers_certificate(tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki")
    issued = pki.issue("gdx-lookup", server=True)
    serving = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    serving.load_cert_chain(issued.cert, issued.key)
    connections: list[int] = []
    listening = await asyncio.start_server(lambda r, w: _answer(r, w, connections), "127.0.0.1", 0, ssl=serving)
    url = f"https://127.0.0.1:{listening.sockets[0].getsockname()[1]}"
    async with listening:
        trusting = ssl.create_default_context(cafile=str(pki.ca_cert))
        result = await offered_load(url, ["/ok"], rate=100, seconds=0.2, tls=trusting)
        assert result.statuses == {200: 20} and result.failures == 0
        untrusting = ssl.create_default_context(cafile=str(Pki(tmp_path / "other").ensure_ca()))
        refused = await offered_load(url, ["/ok"], rate=100, seconds=0.1, tls=untrusting)
        assert refused.statuses == {} and refused.failures == 10
