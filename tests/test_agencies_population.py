"""The synthetic population: valid and unique IDs, references that resolve, stated proportions."""

from __future__ import annotations

import hashlib
import io
from collections import Counter
from fractions import Fraction
from pathlib import Path

import pytest

from agencies import ratios
from agencies.errors import SimulationError
from agencies.events import references, to_json
from agencies.faults import FaultRates
from agencies.population import AGENCIES, Population
from agencies.simulation import Plan, Simulation
from schemas.identifiers import is_valid_thai_id
from tests.support.agencies_support import CODEC, SCHEMAS, routes, stores

SCALE = 3_000


@pytest.fixture(scope="module")
def records() -> dict[tuple[str, str], dict]:
    population = Population(SCALE, seed=11)
    found: dict[tuple[str, str], dict] = {}
    for agency in AGENCIES:
        for entity in population.records(agency):
            assert (entity.dataset, entity.key) not in found, f"duplicate key {entity.dataset}/{entity.key}"
            found[(entity.dataset, entity.key)] = entity.state
    return found


def test_every_citizen_and_juristic_id_has_a_valid_check_digit(records: dict) -> None:
    ids = [key for (dataset, key) in records if dataset in ("person", "juristic-person")]
    for state in records.values():
        citizens, companies = references(state)
        ids.extend(citizens + companies)
    assert len(ids) > SCALE
    invalid = [i for i in ids if not is_valid_thai_id(i)]
    assert not invalid


def test_every_reference_resolves_in_the_ground_truth(records: dict) -> None:
    persons = {k for d, k in records if d == "person"}
    companies = {k for d, k in records if d == "juristic-person"}
    houses = {k for d, k in records if d == "house"}
    unresolved = []
    for (dataset, key), state in records.items():
        citizens, juristic = references(state)
        unresolved += [(dataset, key, c) for c in citizens if c not in persons]
        unresolved += [(dataset, key, j) for j in juristic if j not in companies]
        for field in ("house_id",):
            if state.get(field) is not None and dataset != "house" and state[field] not in houses:
                unresolved.append((dataset, key, state[field]))
    assert not unresolved


def test_every_person_lives_in_one_house_and_every_house_has_its_householder(records: dict) -> None:
    residences = {k: s for (d, k), s in records.items() if d == "residence"}
    persons = {k: s for (d, k), s in records.items() if d == "person"}
    assert residences.keys() == persons.keys()
    assert all(residences[k]["house_id"] == p["house_id"] for k, p in persons.items())
    for (dataset, key), state in records.items():
        if dataset == "house":
            head = residences[state["householder_citizen_id"]]
            assert head["house_id"] == key and head["role"] == "HOUSEHOLDER"


def test_title_deed_shares_add_up_to_one(records: dict) -> None:
    deeds = [s for (d, _), s in records.items() if d == "title-deed"]
    assert deeds
    for deed in deeds:
        assert sum(Fraction(o["share_numerator"], o["share_denominator"]) for o in deed["owners"]) == 1


def test_registry_sizes_follow_the_stated_ratios(records: dict) -> None:
    counts = Counter(dataset for dataset, _ in records)
    expected = ratios.sizes(SCALE)
    assert counts["person"] == expected.persons
    assert counts["juristic-person"] == expected.juristic_persons
    assert counts["commercial-registration"] == expected.commercial_registrations
    assert counts["title-deed"] == expected.title_deeds
    assert counts["vehicle"] == expected.vehicles
    assert counts["driving-licence"] == expected.driving_licences
    assert 2.5 < counts["person"] / counts["house"] < 3.3


def test_names_are_thai_with_a_romanised_form(records: dict) -> None:
    person = next(s for (d, _), s in records.items() if d == "person")
    assert all("\u0e00" <= ch <= "\u0e7f" for ch in person["name"]["first_name"])
    assert person["name_en"]["first_name"].isascii() and person["name_en"]["first_name"].isalpha()


def _digest(seed: int) -> str:
    population = Population(1_000, seed)
    digest = hashlib.sha256()
    for agency in AGENCIES:
        for entity in population.records(agency):
            digest.update(f"{entity.dataset}|{entity.key}|{to_json(entity.state)}".encode())
    return digest.hexdigest()


def test_the_population_is_a_function_of_its_seed() -> None:
    assert _digest(5) == _digest(5)
    assert _digest(5) != _digest(6)


@pytest.mark.parametrize("scale", [999, 1_000_001, 0, -5])
def test_a_scale_out_of_range_is_refused(scale: int) -> None:
    with pytest.raises(SimulationError, match="out of range"):
        Population(scale, seed=1)


def test_a_parallel_initial_load_writes_the_same_stores_as_a_sequential_one(tmp_path: Path) -> None:
    def load(where: Path, workers: int) -> list[tuple]:
        plan = Plan(where, scale=1_000, seed=8, load_workers=workers, faults=FaultRates(duplicate=0.1))
        simulation = Simulation(plan, routes(), SCHEMAS, out=io.StringIO())
        simulation.open()
        try:
            simulation.initial_load()
        finally:
            simulation.close()
        rows = []
        for agency, store in stores(where):
            for seq, event_id, topic, key, value, copies in store.outbox_rows():
                record = CODEC.decode_stored(value).record
                untimed = {k: v for k, v in record.items() if k not in ("source_time", "published_time")}
                rows.append((agency, seq, event_id, topic, key, copies, untimed))
            rows += [(agency, e.dataset, e.key, e.version, to_json(e.state)) for e in store.entities()]
            rows.append((agency, store.fault_counts()))
        return rows

    # Only the wall-clock source times differ between the two loads.
    sequential, parallel = load(tmp_path / "one", 1), load(tmp_path / "two", 2)
    assert len(sequential) > 8_000
    assert parallel == sequential
