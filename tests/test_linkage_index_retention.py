"""Nothing the index only needs for a while grows without bound: under a long run with pruning,
link history, notified marks and version gaps stay within their windows,
and the guarantees they serve still hold (a re-delivery changes nothing, a late link notifies
once). On SQLite and a real PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from linkage.index_event import IndexEvent
from linkage.index_store import DUPLICATE, STALE, IndexStore, Retention
from linkage.subscriptions import load_subscriptions
from linkage.tables import link_history, notified, version_gaps
from schemas.examples import MALEE
from schemas.identifiers import with_check_digit
from streams.worker import prune_run_dirs
from tests.support.linkage_support import citizen_party, index_event

HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS
RETENTION = Retention(late_ms=3 * DAY_MS, gaps_ms=3 * DAY_MS)
START_MS = 1_780_000_000_000

BOTH_DATABASES = pytest.mark.parametrize("index_url", ["sqlite", "postgresql"], indirect=True)


def _day(day: int) -> list[IndexEvent]:
    """A person buys a vehicle, sells it on (its history kept), skips a version, and dies."""
    at = START_MS + day * DAY_MS
    person = with_check_digit(f"5{day:011d}")
    chassis = f"MR0FZ29G2{day:08d}"
    return [
        index_event(
            "dlt.vehicle", 1, source_ms=at, chassis_number=chassis, owner=citizen_party(person), possessor=None
        ),
        index_event(
            "dlt.vehicle",
            3,
            "UPDATE",
            source_ms=at + HOUR_MS,
            chassis_number=chassis,
            owner=citizen_party(MALEE),
            possessor=None,
        ),
        index_event(
            "dopa.death",
            source_ms=at + 30 * 60 * 1000,
            certificate_number=f"D-{day}",
            citizen_id=person,
            informant_citizen_id=MALEE,
        ),
    ]


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (link_history, notified, version_gaps)
        }


@BOTH_DATABASES
def test_a_long_run_keeps_the_remembering_tables_bounded(engine: Engine) -> None:
    store = IndexStore(engine, load_subscriptions(), retention=RETENTION)
    days = 40
    peak: dict[str, int] = {}
    for day in range(days):
        now = START_MS + day * DAY_MS + 2 * HOUR_MS
        store.apply(_day(day), applied_ms=now)
        store.prune(now)
        peak = {name: max(count, peak.get(name, 0)) for name, count in _counts(engine).items()}
    assert peak["link_history"] <= 4 and peak["notified"] <= 4 and peak["version_gaps"] <= 4
    assert min(_counts(engine).values()) > 0, "pruning must keep what is inside the window"


@BOTH_DATABASES
def test_pruned_memories_keep_their_guarantees(engine: Engine) -> None:
    store = IndexStore(engine, load_subscriptions(), retention=RETENTION)
    first = _day(0)
    store.apply(first, applied_ms=START_MS + HOUR_MS)
    later = START_MS + 10 * DAY_MS
    store.prune(later)
    again = store.apply(first, applied_ms=later)
    assert set(again.outcomes) <= {DUPLICATE, STALE} and again.notifications == 0
    person = first[2].payload["citizen_id"]  # type: ignore[index]
    deed = index_event(
        "dol.title-deed",
        source_ms=START_MS,
        deed_number="777",
        mortgages=[],
        owners=[{"owner": citizen_party(person), "share_numerator": 1, "share_denominator": 1}],
    )
    assert store.apply([deed], applied_ms=later).notifications == 0, "a death past the horizon is not told again"


def test_run_directories_of_workers_that_are_gone_are_removed(tmp_path: Path) -> None:
    parent = tmp_path / "worker"
    gone, alive = parent / "999999999", parent / str(os.getpid())
    gone.mkdir(parents=True)
    alive.mkdir()
    prune_run_dirs(parent)
    assert not gone.exists() and alive.exists()
