"""Life events keep the agencies' ground truth consistent and announce every change in order."""

from __future__ import annotations

from collections import Counter, defaultdict
from fractions import Fraction
from pathlib import Path

import pytest

from agencies.events import references
from schemas.validation import validate_event
from tests.support.agencies_support import CODEC, simulate, stores, truth

LIFE_EVENTS = 400


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("life")
    simulate(path, scale=1_000, seed=3, count=LIFE_EVENTS)
    return path


def test_every_reference_resolves_after_life_events(store_dir: Path) -> None:
    state = truth(store_dir)
    persons = {k for d, k in state if d == "person"}
    companies = {k for d, k in state if d == "juristic-person"}
    houses = {k for d, k in state if d == "house"}
    unresolved = []
    for (dataset, key), payload in state.items():
        citizens, juristic = references(payload)
        unresolved += [(dataset, key, c) for c in citizens if c not in persons]
        unresolved += [(dataset, key, j) for j in juristic if j not in companies]
        if dataset != "house" and payload.get("house_id") and payload["house_id"] not in houses:
            unresolved.append((dataset, key, payload["house_id"]))
    assert not unresolved


def test_life_events_of_every_agency_happened(store_dir: Path) -> None:
    state = truth(store_dir)
    kinds = Counter(d for d, _ in state)
    for dataset in ("birth", "death", "marriage", "civil-registration"):
        assert kinds[dataset] > 0, dataset
    deceased = {p["citizen_id"] for (d, _), p in state.items() if d == "person" and p["status"] == "DECEASED"}
    assert deceased == {p["citizen_id"] for (d, _), p in state.items() if d == "death"}
    transfers = Counter(
        (s.get("last_transfer") or {}).get("transfer_type") for (d, _), s in state.items() if d == "title-deed"
    )
    assert transfers["SALE"] > 0


def test_title_shares_still_add_up_to_one(store_dir: Path) -> None:
    for (dataset, _), deed in truth(store_dir).items():
        if dataset == "title-deed":
            assert sum(Fraction(o["share_numerator"], o["share_denominator"]) for o in deed["owners"]) == 1


def test_every_event_validates_and_versions_follow_each_other(store_dir: Path) -> None:
    for _, store in stores(store_dir):
        versions: dict[tuple[str, str], list[int]] = defaultdict(list)
        for _, _, topic, key, value, copies in store.outbox_rows():
            event = validate_event(CODEC.decode_stored(value))
            assert copies == 1
            versions[(topic, key)].append(event.entity_version)
        assert versions
        for (topic, key), seen in versions.items():
            assert seen == list(range(1, len(seen) + 1)), (topic, key, seen)
        for entity in store.entities():
            topic = next(t for t, k in versions if k == entity.key and t.split(".")[2] == entity.dataset)
            assert versions[(topic, entity.key)][-1] == entity.version
