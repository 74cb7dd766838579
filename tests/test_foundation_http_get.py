"""The probe the stack and the Prometheus launcher read /readyz and Prometheus' API with."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from foundation.http_get import http_get
from foundation.ports import free_port_block
from tests.support.http_stub import QuietHandler, serving


class _Answers(QuietHandler):
    def do_GET(self) -> None:  # the standard library's name
        status = 503 if self.path == "/readyz" else 200
        body = b"not ready" if status == 503 else b"ok"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[str]:
    with serving(_Answers) as url:
        yield url


def test_an_error_status_is_an_answer_with_its_body(server: str) -> None:
    assert http_get(f"{server}/healthz") == (200, b"ok")
    assert http_get(f"{server}/readyz") == (503, b"not ready")


def test_nothing_listening_raises_an_os_error() -> None:
    with pytest.raises(OSError):
        http_get(f"http://127.0.0.1:{free_port_block(1)}/readyz", timeout=1.0)
