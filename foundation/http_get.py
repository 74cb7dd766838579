"""A plain HTTP(S) GET for probing local services (/readyz, /metrics, Prometheus' API).

An error status is an answer here, not an exception: callers decide what a 503 from a
readiness probe means. An https URL is verified against `cafile` (the project CA for the lookup
API), or the system's trust store when none is given; a certificate it does not verify is an
OSError like a refused connection (ssl.SSLError is one).
"""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from pathlib import Path


def client_context(cafile: Path | str | None = None) -> ssl.SSLContext:
    """Verifying TLS client context (hostname checked) trusting `cafile`, else the system's CAs."""
    return ssl.create_default_context(cafile=None if cafile is None else str(cafile))


def http_get(url: str, timeout: float = 2.0, cafile: Path | str | None = None) -> tuple[int, bytes]:
    """(status, body); connection failures raise OSError (urllib.error.URLError is one)."""
    context = client_context(cafile) if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
