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


class Members:
    """`column IN (values)` in the driver's style. On PostgreSQL it is `column = ANY(%b)` with the
    values as one binary array: the statement's text is then the same for every batch, where psycopg
    parses the placeholders of each query text it has not met, and a batch's IN lists of up to
    500 marks, a new length each time, made that parsing cost more than running the statements."""

    def __init__(self, engine: Engine) -> None:
        self.mark = placeholder(engine)
        self._array = engine.dialect.name == "postgresql"

    def __call__(self, column: str, count: int) -> str:
        return f"{column} = ANY(%b)" if self._array else f"{column} IN ({placeholders(self.mark, count)})"

    def values(self, items: Sequence[object]) -> tuple[object, ...]:
        return (list(items),) if self._array else tuple(items)


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
    its own. The arrays go in binary (`%b`): as text, every element of them was searched for
    characters to quote, which made the records' JSON payloads cost more than executemany. Applying
    42,030 simulated events took 112 µs of CPU an event with text arrays for links and event ids and
    executemany for records, 70 µs with binary arrays for all. SQLite, in process, takes
    executemany at the driver as cheaply."""

    def __init__(self, engine: Engine, table: Table, columns: Sequence[str], tail: str = "") -> None:
        names = ", ".join(columns)
        if engine.dialect.name == "postgresql":
            typed = ", ".join(f"%b::{table.c[c].type.compile(dialect=engine.dialect)}[]" for c in columns)
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
