"""A plain HTTP GET for probing local services (/readyz, /metrics, Prometheus' API).

An error status is an answer here, not an exception: callers decide what a 503 from a
readiness probe means.
"""

from __future__ import annotations

import urllib.error
import urllib.request


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """(status, body); connection failures raise OSError (urllib.error.URLError is one)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
