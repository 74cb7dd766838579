"""Per-consumer token buckets: a consumer may burst, but not exceed its registered rate for long.

In-process and lock-free: the buckets are only touched from the API's event loop. Several API
processes behind one port (`gdx serve --workers N`) each enforce 1/N of the registry's rate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    def __init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}

    def take(self, consumer: str, rate_per_s: float, burst: int) -> float | None:
        """None when the request may go; else the seconds until a token is available."""
        now = time.monotonic()
        bucket = self._buckets.setdefault(consumer, _Bucket(float(burst), now))
        bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.stamp) * rate_per_s)
        bucket.stamp = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / rate_per_s if rate_per_s > 0 else 60.0
