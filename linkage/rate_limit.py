"""Token buckets: a caller may burst, but not exceed its rate for long.

In-process and lock-free: the buckets are only touched from the API's event loop. Several API
processes behind one port (`gdx serve --workers N`) each enforce 1/N of the registry's rate.
Buckets are keyed by whatever is limited (a consumer, unauthenticated callers, a consumer's
verify attempts on one subject); a bucket that has refilled is forgotten, so keys without
recent requests cost no memory.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

PRUNE_EVERY = 4096


@dataclass
class _Bucket:
    tokens: float
    stamp: float
    full_at: float


class RateLimiter:
    def __init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}
        self._takes = 0

    def __len__(self) -> int:
        """How many keys hold a bucket: what the limiter costs in memory."""
        return len(self._buckets)

    def take(self, key: str, rate_per_s: float, burst: int) -> float | None:
        """None when the request may go; else the seconds until a token is available."""
        now = time.monotonic()
        self._takes += 1
        if self._takes % PRUNE_EVERY == 0:
            self._buckets = {k: b for k, b in self._buckets.items() if b.full_at > now}
        bucket = self._buckets.setdefault(key, _Bucket(float(burst), now, now))
        bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.stamp) * rate_per_s)
        bucket.stamp = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            bucket.full_at = now + (burst - bucket.tokens) / rate_per_s if rate_per_s > 0 else float("inf")
            return None
        return (1.0 - bucket.tokens) / rate_per_s if rate_per_s > 0 else 60.0
