"""Uniform random picks of one store's entities, cheap enough for rejection sampling.

A life event finds a fitting person, company or title deed by picking random entities until one
fits, often dozens of picks per event and the same rows again and again. A pick draws random
rowids until one holds the wanted dataset (datasets share the table, so a rowid hits a dataset
with the probability of its share of rows, and every row of it is equally likely).

Both halves of a pick are kept in memory, exactly: which dataset each rowid holds (it never
changes: entity rows are inserted or updated in place, never deleted), and the state of rows
picked before. A remembered state is trusted only while nothing can have changed it: this
connection reports its own writes, and `PRAGMA data_version` tells when another connection has
committed anything. Otherwise the row is read again, and its JSON parsed again only if it changed.
"""

from __future__ import annotations

import json
import random
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# Rows whose picked state is kept (oldest dropped first): at the benchmark's scale every row the
# sampling loops visit, while a million-person registry stays within tens of MB.
KEPT_ROWS = 8_192


@dataclass(frozen=True)
class Stored:
    dataset: str
    key: str
    version: int
    state: dict[str, Any]


@dataclass(frozen=True)
class _Kept:
    generation: int  # trusted while it equals the sampler's generation (no other writer since)
    text: str  # the stored JSON the state was parsed from
    stored: Stored


class EntitySampler:
    """Random picks through one connection; told of that connection's writes and rollbacks."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._datasets: list[str | None] = [None]  # index = rowid
        self._kept: dict[int, _Kept] = {}
        self._rowids: dict[tuple[str, str], int] = {}  # (dataset, key) of each kept row
        self._generation = 0
        self._data_version: int | None = None

    def picks(self, dataset: str, rng: random.Random, tries: int = 64) -> Iterator[Stored | None]:
        """Picks of the dataset's entities, as many as asked for; None where `tries` draws missed.

        The picks see the store as it was when they started, so draw them inside one transaction
        (`AgencyStore.reading` or a write) and add no entity while drawing. A picked state may be
        the very object an earlier pick returned: read it, never change it.
        """
        self._catch_up()
        top = len(self._datasets) - 1
        datasets = self._datasets
        while True:
            found = None
            for _ in range(tries if top else 0):
                rowid = rng.randint(1, top)
                if datasets[rowid] == dataset:
                    found = self._state(rowid, dataset)
                    if found is not None:
                        break
            yield found

    def written(self, dataset: str, key: str) -> None:
        """This connection wrote the entity: its kept state, if any, is no longer current."""
        rowid = self._rowids.pop((dataset, key), None)
        if rowid is not None:
            del self._kept[rowid]

    def mark(self) -> int:
        """Where the rowid map stands, for `rolled_back`."""
        return len(self._datasets)

    def rolled_back(self, mark: int) -> None:
        """Rows added since `mark` are gone (their rowids will be reused), and states kept inside
        the transaction never were; rollbacks are rare, so everything kept goes."""
        del self._datasets[mark:]
        self._kept.clear()
        self._rowids.clear()

    def _catch_up(self) -> None:
        """Learn of rows added since the last picks, and whether another connection wrote."""
        version = self.conn.execute("PRAGMA data_version").fetchone()[0]
        if version != self._data_version:
            self._data_version = version
            self._generation += 1
        datasets = self._datasets
        for rowid, dataset in self.conn.execute(
            "SELECT rowid, dataset FROM entity WHERE rowid >= ? ORDER BY rowid", (len(datasets),)
        ):
            datasets.extend([None] * (rowid - len(datasets)))
            datasets.append(sys.intern(dataset))

    def _state(self, rowid: int, dataset: str) -> Stored | None:
        kept = self._kept.get(rowid)
        if kept is not None and kept.generation == self._generation:
            return kept.stored
        row = self.conn.execute(
            "SELECT key, version, state FROM entity WHERE rowid = ? AND dataset = ?", (rowid, dataset)
        ).fetchone()
        if row is None:
            return None
        key, version, text = row
        state = kept.stored.state if kept is not None and kept.text == text else json.loads(text)
        if kept is None and len(self._kept) >= KEPT_ROWS:
            dropped = self._kept.pop(next(iter(self._kept))).stored
            del self._rowids[(dropped.dataset, dropped.key)]
        stored = Stored(dataset, key, version, state)
        self._kept[rowid] = _Kept(self._generation, text, stored)
        self._rowids[(dataset, key)] = rowid
        return stored
