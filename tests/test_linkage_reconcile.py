"""Reconciliation against ground truth: every kind of mismatch is found and named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from linkage.database import index_engine
from linkage.index_store import IndexStore
from linkage.migrate import upgrade
from linkage.reconcile import reconcile, same_state
from tests.support.linkage_support import index_event


def _truth(dataset: str, key: str, version: int, state: dict[str, Any]) -> dict[str, Any]:
    agency, name = dataset.split(".", 1)
    return {"agency": agency, "dataset": name, "key": key, "version": version, "state": state}


def test_equal_data_tolerates_representation_only() -> None:
    assert same_state({"a": "25.50", "b": None}, {"a": "25.5"})
    assert not same_state({"a": "25.50"}, {"a": "25.6"})
    assert not same_state({"id": "0105"}, {"id": "105"})
    assert same_state({"capital": "90000.00"}, {"capital": "90000"})
    assert not same_state([1, 2], [1])


def test_every_mismatch_kind_is_reported(tmp_path: Path) -> None:
    engine = index_engine(f"sqlite:///{tmp_path / 'index.db'}")
    upgrade(engine)
    events = [index_event("dlt.vehicle", 2), index_event("dlt.driving-licence", 1), index_event("dopa.person", 1)]
    IndexStore(engine).apply(events)
    vehicle, licence, person = (json.loads(json.dumps(e.payload, default=str)) for e in events)
    matching = [
        _truth("dlt.vehicle", events[0].entity_key, 2, vehicle),
        _truth("dlt.driving-licence", events[1].entity_key, 1, licence),
    ]
    assert reconcile(engine, matching, ["dlt"]).ok

    changed = {**vehicle, "colour": "ม่วง"}
    report = reconcile(
        engine,
        [
            _truth("dlt.vehicle", events[0].entity_key, 2, changed),
            _truth("dlt.driving-licence", events[1].entity_key, 2, licence),
            _truth("dlt.vehicle", "NOT-IN-INDEX", 1, vehicle),
        ],
        ["dlt", "dopa"],
    )
    assert dict(report.mismatches) == {"state": 1, "version": 1, "missing": 1, "extra": 1}
    assert any("dopa.person" in example for example in report.examples)
    assert person["citizen_id"] == events[2].entity_key
