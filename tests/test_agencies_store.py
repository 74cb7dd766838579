"""The agency store: a change and its outbox rows commit together; versions grow by one."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from agencies.events import stamp, stamp_bytes
from agencies.population import Population
from agencies.source import SourceSystem
from tests.support.agencies_support import CODEC, SCHEMAS, routes


@pytest.fixture
def dlt(tmp_path: Path) -> SourceSystem:
    source = SourceSystem("dlt", tmp_path / "dlt.db", routes()["dlt"], SCHEMAS, seed=3)
    yield source
    source.close()


def _licence() -> tuple[str, dict]:
    from datetime import date

    entity = Population(1_000, 3).licence(random.Random(1), 5, "1101700203451", date(2025, 1, 2))
    return entity.key, entity.state


def test_a_change_and_its_event_commit_together(dlt: SourceSystem) -> None:
    key, state = _licence()
    with dlt.change() as changes:
        created = changes.put("driving-licence", key, state)
    with dlt.change() as changes:
        updated = changes.put("driving-licence", key, {**state, "status": "SUSPENDED"})
    assert (created.version, created.change_type, updated.version, updated.change_type) == (1, "CREATE", 2, "UPDATE")
    rows = dlt.store.outbox_rows()
    decoded = [CODEC.decode_stored(value).record for _, _, _, _, value, _ in rows]
    assert [(d["entity_key"], d["entity_version"], d["change_type"]) for d in decoded] == [
        (key, 1, "CREATE"),
        (key, 2, "UPDATE"),
    ]
    assert decoded[1]["payload"]["status"] == "SUSPENDED"
    assert dlt.store.get("driving-licence", key).version == 2


def test_a_failed_change_leaves_neither_state_nor_event(dlt: SourceSystem) -> None:
    key, state = _licence()
    with pytest.raises(RuntimeError), dlt.change() as changes:
        changes.put("driving-licence", key, state)
        raise RuntimeError("the agency's application failed mid-change")
    assert dlt.store.get("driving-licence", key) is None
    assert dlt.store.outbox_rows() == []


def test_stamping_sets_published_time_and_nothing_else(dlt: SourceSystem) -> None:
    key, state = _licence()
    with dlt.change() as changes:
        changes.put("driving-licence", key, state)
    ((_, _, _, _, value, _),) = dlt.store.outbox_rows()
    before = CODEC.decode_stored(value).record
    published = before["source_time"].timestamp() * 1000 + 1234
    after = CODEC.decode_stored(stamp(value, dlt.store.pending(0, 1)[0][4], stamp_bytes(int(published)))).record
    assert after["published_time"].timestamp() * 1000 == int(published)
    assert {k: v for k, v in after.items() if k != "published_time"} == {
        k: v for k, v in before.items() if k != "published_time"
    }
