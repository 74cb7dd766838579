"""Registrations in one process go one at a time: the project's Apicurio fails two registrations
of new content made at once (the same content id given twice, a 500), and the four agencies of one
`gdx simulate`, registering together on a fresh registry, met it again at every retry."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from foundation.schema_registry import RegistryAccess, SchemaRegistry
from tests.support.http_stub import QuietHandler, serving

AGENCIES = 4


class _RacingRegistry(QuietHandler):
    """Answers a registration after 50 ms, unless another one is in progress: then a 500, as
    Apicurio on H2 answers the second of two registrations that overlap."""

    lock = threading.Lock()
    in_progress = 0
    registered: list[str] = []

    def do_POST(self) -> None:  # the standard library's name
        self.rfile.read(int(self.headers["Content-Length"]))
        cls = type(self)
        with cls.lock:
            cls.in_progress += 1
            overlapping = cls.in_progress > 1
        time.sleep(0.05)
        with cls.lock:
            cls.in_progress -= 1
            if not overlapping:
                cls.registered.append(self.path)
            schema_id = len(cls.registered)
        if overlapping:
            self._answer(500, {"error_code": 50001, "message": "Unique index or primary key violation: CONTENT"})
        else:
            self._answer(200, {"id": schema_id})

    def _answer(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def registry() -> Iterator[str]:
    _RacingRegistry.registered = []
    with serving(_RacingRegistry) as url:
        yield url


def test_agencies_registering_at_once_in_one_process_each_get_their_id(registry: str) -> None:
    start = threading.Barrier(AGENCIES)

    def register(agency: int) -> int:
        client = SchemaRegistry(RegistryAccess(registry))  # each publisher has a client of its own
        start.wait()
        return client.register(f"agency-{agency}.person-value", '"string"')

    with ThreadPoolExecutor(AGENCIES) as pool:
        ids = list(pool.map(register, range(AGENCIES)))
    assert sorted(ids) == list(range(1, AGENCIES + 1))
    assert len(_RacingRegistry.registered) == AGENCIES
