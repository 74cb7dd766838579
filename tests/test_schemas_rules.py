"""The stream's rules (schemas.rules) find exactly what the pydantic models find, in the same words.

Every dataset's example event, each leaf of it broken in the ways its type can be broken while
still encoding as valid Avro (empty, too long, a control character, a wrong check digit, a
Buddhist-Era year, a bound crossed, a decimal too long, a list emptied or doubled, an optional
emptied), and the life-event simulator's valid events: for each, the problems both report are the
same list. The model tests' own cases check both as well (tests/test_schemas_models.py).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.errors import CodecError
from schemas.models import EVENT_MODELS
from schemas.rules import DATASETS, problems
from schemas.validation import violations
from tests.support.agencies_support import simulate, stores
from tests.support.schema_helpers import SCHEMA_NAMES, codec, example_record

Where = tuple[str | int, ...]


def model_problems(name: str, record: dict[str, Any]) -> list[str]:
    try:
        EVENT_MODELS[name].model_validate(record)
    except ValidationError as exc:
        return list(violations(exc))
    return []


def leaves(node: Any, path: Where = ()) -> Iterator[tuple[Where, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, (*path, key))
    elif isinstance(node, list):
        yield path, node
        for index, value in enumerate(node):
            yield from leaves(value, (*path, index))
    else:
        yield path, node


def broken(value: Any) -> list[Any]:
    """Values of the same Avro type as `value` that a rule may refuse."""
    if isinstance(value, bool):
        return []
    if isinstance(value, str):
        found: list[Any] = ["", "x" * 70, "a\x01b", "ABC", "1" * 13, "0" * 32, value.upper(), value + "/"]
        if len(value) == 13 and value.isdigit():
            found.append(value[:12] + str((int(value[12]) + 1) % 10))
            found.append("1" + value[1:12] + "0")
        return found
    if isinstance(value, int):
        return [0, -1, 4, 100, 10_000, 10**9]
    if isinstance(value, datetime):
        return [value.replace(year=value.year + 543), value.replace(year=1700), value.replace(year=2199)]
    if isinstance(value, date):
        return [value.replace(year=value.year + 543), value.replace(year=1799), date(2000, 1, 1), date(2040, 1, 1)]
    if isinstance(value, Decimal):
        exponent = value.as_tuple().exponent
        assert isinstance(exponent, int)
        return [-value - 1, Decimal(0).scaleb(exponent), Decimal(10**20).scaleb(exponent), Decimal(100), Decimal(0)]
    if isinstance(value, list):
        return [[], value + value[:1]]
    return []


def mutated(name: str) -> Iterator[tuple[str, dict[str, Any]]]:
    original = example_record(name)
    for path, value in leaves(original):
        for replacement in [*broken(value), None]:
            record = copy.deepcopy(original)
            target: Any = record
            for part in path[:-1]:
                target = target[part]
            target[path[-1]] = replacement
            yield f"{'.'.join(map(str, path))}={replacement!r:.20}", record


def decoded_record(name: str, record: dict[str, Any]) -> dict[str, Any] | None:
    """The record as the worker sees it, or None when Avro itself refuses it (no rule's business)."""
    try:
        return codec().decode_stored(codec().encode(name, record)).record
    except CodecError:
        return None


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_the_rules_find_what_the_model_finds_in_every_broken_field(name: str) -> None:
    compared = refused = 0
    for what, record in mutated(name):
        decoded = decoded_record(name, record)
        if decoded is None:
            continue
        expected = model_problems(name, decoded)
        assert problems(name, decoded) == expected, what
        compared += 1
        refused += bool(expected)
    assert refused > 20 and compared > refused, (compared, refused)


def test_every_dataset_has_rules() -> None:
    assert set(DATASETS) == set(EVENT_MODELS) == set(SCHEMA_NAMES)


def test_the_simulators_events_pass_both(tmp_path: Path) -> None:
    simulate(tmp_path, scale=1_000, seed=11, count=400)
    seen: set[str] = set()
    for _, store in stores(tmp_path):
        for _, _, _, _, value, _ in store.outbox_rows():
            decoded = codec().decode_stored(value)
            assert (
                problems(decoded.schema_name, decoded.record)
                == []
                == model_problems(decoded.schema_name, decoded.record)
            )
            seen.add(decoded.schema_name)
    assert seen == set(SCHEMA_NAMES)
