"""Structured logging: one JSON object per line on stderr, for every process.

Terminal output meant for a person (progress, tables) goes to stdout instead, so both can be used
at once: `gdx kafka up 2>broker-launch.jsonl`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Any

from foundation.errors import GdxError

LEVELS = ("debug", "info", "warning", "error", "critical")
_RESERVED = set(vars(logging.makeLogRecord({})))


class JsonLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update({k: v for k, v in vars(record).items() if k not in _RESERVED})
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def configure_logging(level: str | None = None) -> None:
    """Install the JSON formatter on the root logger (idempotent); an unknown level is a GdxError,
    whether it came from --log-level or GDX_LOG_LEVEL."""
    chosen = level or os.environ.get("GDX_LOG_LEVEL") or "warning"
    if chosen.lower() not in LEVELS:
        source = "--log-level" if level else "GDX_LOG_LEVEL"
        raise GdxError(f"unknown log level {chosen!r} ({source})", f"choose from {', '.join(LEVELS)}")
    root = logging.getLogger()
    root.setLevel(chosen.upper())
    if not any(isinstance(h.formatter, JsonLineFormatter) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonLineFormatter())
        root.handlers = [handler]
