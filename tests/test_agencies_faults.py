"""Every fault knob: what the injector counted is exactly what is in the outbox, and off is off."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from agencies.faults import KINDS, FaultRates
from schemas.errors import CodecError, DomainRuleViolation
from schemas.validation import validate_event
from tests.support.agencies_support import CODEC, SCHEMAS, simulate, stores

RATE = 0.3


def _strings(node: Any) -> set[str]:
    if isinstance(node, dict):
        return set().union(*(_strings(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(_strings(v) for v in node)) if node else set()
    return {node} if isinstance(node, str) else set()


def observed(store_dir: Path) -> dict[str, int]:
    """Each fault as a consumer of the outbox would see it, found without the injector's counts."""
    seen = dict.fromkeys(KINDS, 0)
    for _, store in stores(store_dir):
        newest: dict[tuple[str, str], int] = defaultdict(int)
        decoded = []
        for seq, _, topic, key, value, copies in store.outbox_rows():
            seen["duplicate"] += copies - 1
            try:
                event = CODEC.decode_stored(value)
            except CodecError:
                seen["malformed"] += 1
                continue
            record = event.record
            if event.writer_version < SCHEMAS.current[event.schema_name].version:
                seen["old_schema"] += 1
            try:
                validate_event(event)
            except DomainRuleViolation as exc:
                assert "check digit" in str(exc)
                seen["invalid_id"] += 1
                continue
            if record["entity_version"] < newest[(topic, key)]:
                seen["out_of_order"] += 1
            newest[(topic, key)] = max(newest[(topic, key)], record["entity_version"])
            decoded.append((seq, record))
        created = defaultdict(list)
        for seq, record in decoded:
            if record["change_type"] == "CREATE":
                created[record["entity_key"]].append(seq)
        for seq, record in decoded:
            for mentioned in _strings(record["payload"]) - {record["entity_key"]}:
                seen["late_arrival"] += sum(1 for at in created.get(mentioned, []) if at > seq)
    return seen


def injected(store_dir: Path) -> dict[str, int]:
    total = dict.fromkeys(KINDS, 0)
    for _, store in stores(store_dir):
        for kind, count in store.fault_counts().items():
            total[kind] += count
    return total


@pytest.mark.parametrize("kind", KINDS)
def test_each_knob_injects_what_it_counts_and_nothing_else(kind: str, tmp_path: Path) -> None:
    simulate(tmp_path, scale=1_000, seed=21, count=250, faults=FaultRates(**{kind: RATE}))
    counted, found = injected(tmp_path), observed(tmp_path)
    assert counted[kind] > 0
    assert found == counted
    assert all(n == 0 for k, n in counted.items() if k != kind)


def test_all_knobs_together_are_counted_separately(tmp_path: Path) -> None:
    simulate(tmp_path, scale=1_000, seed=22, count=250, faults=FaultRates(**dict.fromkeys(KINDS, 0.1)))
    counted = injected(tmp_path)
    assert all(counted[k] > 0 for k in KINDS)
    assert observed(tmp_path) == counted


def test_faults_are_off_by_default(tmp_path: Path) -> None:
    simulate(tmp_path, scale=1_000, seed=23, count=100)
    assert injected(tmp_path) == dict.fromkeys(KINDS, 0)
    assert observed(tmp_path) == dict.fromkeys(KINDS, 0)


def test_a_rate_outside_zero_to_one_is_refused() -> None:
    from agencies.errors import SimulationError

    with pytest.raises(SimulationError, match="not a probability"):
        FaultRates(duplicate=1.5)
