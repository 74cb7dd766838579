"""Random picks remember what they read, yet always return the store's current state."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from agencies.population import Population
from agencies.source import SourceSystem
from agencies.store import AgencyStore
from tests.support.agencies_support import SCHEMAS, routes

LICENCE = "driving-licence"


@pytest.fixture
def dlt(tmp_path: Path) -> Iterator[SourceSystem]:
    source = SourceSystem("dlt", tmp_path / "dlt.db", routes()["dlt"], SCHEMAS, seed=3)
    yield source
    source.close()


def _licence(ordinal: int) -> tuple[str, dict]:
    entity = Population(1_000, 3).licence(random.Random(ordinal), ordinal, "1101700203451", date(2025, 1, 2))
    return entity.key, entity.state


def _status(store: AgencyStore) -> str:
    with store.reading():
        found = next(store.random_entities(LICENCE, random.Random(1)))
    assert found is not None
    return found.state["status"]


def _licensed(dlt: SourceSystem) -> tuple[str, dict]:
    key, state = _licence(5)
    with dlt.change() as changes:
        changes.put(LICENCE, key, state)
    assert _status(dlt.store) == state["status"] != "SUSPENDED"
    return key, state


def test_a_pick_sees_this_connections_own_write(dlt: SourceSystem) -> None:
    key, state = _licensed(dlt)
    with dlt.change() as changes:
        changes.put(LICENCE, key, {**state, "status": "SUSPENDED"})
    assert _status(dlt.store) == "SUSPENDED"


def test_a_pick_sees_another_connections_commit(dlt: SourceSystem) -> None:
    key, state = _licensed(dlt)
    other = AgencyStore(dlt.store.path)
    try:
        with other.transaction() as tx:
            tx.put(LICENCE, key, {**state, "status": "SUSPENDED"})
    finally:
        other.close()
    assert _status(dlt.store) == "SUSPENDED"


def test_a_state_picked_inside_a_rolled_back_change_is_forgotten(dlt: SourceSystem) -> None:
    key, state = _licensed(dlt)
    with pytest.raises(RuntimeError), dlt.change() as changes:
        changes.put(LICENCE, key, {**state, "status": "SUSPENDED"})
        assert _status(dlt.store) == "SUSPENDED"
        raise RuntimeError("the agency's application failed mid-change")
    assert _status(dlt.store) == state["status"]


def test_picks_of_rows_added_since_the_last_picks_include_them(dlt: SourceSystem) -> None:
    first, _ = _licensed(dlt)
    second, state = _licence(6)
    with dlt.change() as changes:
        changes.put(LICENCE, second, state)
    with dlt.store.reading():
        keys = {
            found.key
            for found in (next(dlt.store.random_entities(LICENCE, random.Random(seed))) for seed in range(20))
            if found
        }
    assert keys == {first, second}


def test_a_change_whose_commit_fails_is_rolled_back_and_forgotten(dlt: SourceSystem) -> None:
    """COMMIT itself can fail (a full disk, an I/O error; here a deferred constraint): the change
    must not stay open on the connection, and what was picked inside it must not be served."""
    key, state = _licensed(dlt)
    conn = dlt.store.conn
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("CREATE TEMP TABLE parent (id INTEGER PRIMARY KEY)")
    conn.execute("CREATE TEMP TABLE child (parent_id INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)")
    with pytest.raises(sqlite3.IntegrityError), dlt.change() as changes:
        changes.put(LICENCE, key, {**state, "status": "SUSPENDED"})
        assert _status(dlt.store) == "SUSPENDED"
        conn.execute("INSERT INTO child VALUES (1)")  # checked only at COMMIT, which it fails
    assert not conn.in_transaction
    assert _status(dlt.store) == state["status"]
    with dlt.change() as changes:
        changes.put(LICENCE, key, {**state, "status": "SUSPENDED"})
    assert _status(dlt.store) == "SUSPENDED"
