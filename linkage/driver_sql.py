"""SQL in the database driver's own parameter style, for the hot paths.

The index's hot paths (a batch apply, a lookup) run a few statements each; SQLAlchemy's per-call
compilation cache, parameter processing and result wrapping cost several times what SQLite itself
does for them, so those paths hand plain SQL straight to the driver. SQLite's driver takes `?`
placeholders and psycopg takes `%s`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

from sqlalchemy import Engine

T = TypeVar("T")
CHUNK = 500
"""Values per IN list: well under SQLite's and PostgreSQL's limits on bound parameters."""


def placeholder(engine: Engine) -> str:
    return "%s" if engine.dialect.paramstyle in ("format", "pyformat") else "?"


def placeholders(mark: str, count: int) -> str:
    """`count` parameter marks, comma-separated, for an IN list or a VALUES row."""
    return ", ".join([mark] * count)


def grouped(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Pairs grouped by their first item (keys by dataset, party IDs by kind), for IN lists that
    the (dataset, key) and (kind, ID) indexes can serve."""
    groups: dict[str, list[str]] = {}
    for first, second in pairs:
        groups.setdefault(first, []).append(second)
    return groups


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
