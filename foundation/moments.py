"""A moment as people read it in a page, a report or a command's output: UTC to the second."""

from __future__ import annotations

import time


def utc_stamp(ms: int) -> str:
    """`2026-12-07 03:52:30 UTC` for a time in milliseconds since the epoch."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ms / 1000))
