"""SQL in the database driver's own parameter style, for the hot paths.

The index's hot paths (a batch apply, a lookup) run a few statements each; SQLAlchemy's per-call
compilation cache, parameter processing and result wrapping cost several times what SQLite itself
does for them, so those paths hand plain SQL straight to the driver. SQLite's driver takes `?`
placeholders and psycopg takes `%s`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

from sqlalchemy import Connection, Engine, Table

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


class RowInsert:
    """An INSERT of many rows into `table`'s `columns`, with an optional tail (ON CONFLICT …).

    On PostgreSQL the rows go as one array per column into `INSERT … SELECT FROM unnest(…)`: one
    statement for the batch, where psycopg's executemany sends and the server runs every row on
    its own: measured on a batch's links and event ids, about 40% less time. Not for long text
    (`arrays=False`): quoting the records' JSON payloads into array literals cost more than it
    saved (the records' upsert took half as long again). SQLite, in process, takes executemany
    at the driver as cheaply."""

    def __init__(
        self, engine: Engine, table: Table, columns: Sequence[str], tail: str = "", arrays: bool = True
    ) -> None:
        names = ", ".join(columns)
        if arrays and engine.dialect.name == "postgresql":
            typed = ", ".join(f"%s::{table.c[c].type.compile(dialect=engine.dialect)}[]" for c in columns)
            self.sql = f"INSERT INTO {table.name} ({names}) SELECT * FROM unnest({typed}) {tail}"
            self.by_column = True
        else:
            self.sql = (
                f"INSERT INTO {table.name} ({names}) VALUES ({placeholders(placeholder(engine), len(columns))}) {tail}"
            )
            self.by_column = False

    def __call__(self, conn: Connection, rows: Sequence[tuple[object, ...]]) -> None:
        if not rows:
            return
        if self.by_column:
            conn.exec_driver_sql(self.sql, tuple(list(column) for column in zip(*rows, strict=True)))
        else:
            conn.exec_driver_sql(self.sql, list(rows))
