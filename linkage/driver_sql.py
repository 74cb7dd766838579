"""SQL in the database driver's own parameter style, for the hot paths.

The index's hot paths (a batch apply, a lookup) run a few statements each; SQLAlchemy's per-call
compilation cache, parameter processing and result wrapping cost several times what SQLite itself
does for them, so those paths hand plain SQL straight to the driver. SQLite's driver takes `?`
placeholders and psycopg takes `%s`.
"""

from __future__ import annotations

from sqlalchemy import Engine


def placeholder(engine: Engine) -> str:
    return "%s" if engine.dialect.paramstyle in ("format", "pyformat") else "?"


def placeholders(mark: str, count: int) -> str:
    """`count` parameter marks, comma-separated, for an IN list or a VALUES row."""
    return ", ".join([mark] * count)
