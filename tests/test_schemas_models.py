"""The pydantic models mirror the .avsc exactly, and enforce the domain rules on every dataset."""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import StrEnum
from typing import Any

import pytest
from pydantic import BaseModel

from schemas.codec import Decoded
from schemas.errors import DomainRuleViolation
from schemas.identifiers import with_check_digit
from schemas.models import EVENT_MODELS
from schemas.validation import check_event, validate_event
from tests.support.schema_helpers import SCHEMA_NAMES, catalog, codec, example_record

Mutation = Callable[[dict[str, Any]], None]


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0], len(args) < len(typing.get_args(annotation))
    return annotation, False


def _base_type(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


AVRO_PRIMITIVE = {"string": str, "int": int, "long": int, "boolean": bool}
AVRO_LOGICAL = {"date": date, "timestamp-millis": datetime, "decimal": Decimal}


def assert_mirrors(model: type[BaseModel], schema: dict[str, Any], path: str) -> None:
    """Field by field: same names in the same order, same optionality, same types and enum symbols."""
    fields = model.model_fields
    assert list(fields) == [f["name"] for f in schema["fields"]], path
    for avro_field in schema["fields"]:
        where = f"{path}.{avro_field['name']}"
        annotation, optional = _strip_optional(_base_type(fields[avro_field["name"]].annotation))
        annotation = _base_type(annotation)
        avro_type = avro_field["type"]
        if isinstance(avro_type, list):
            assert avro_type[0] == "null" and len(avro_type) == 2 and optional, where
            assert avro_field["default"] is None and fields[avro_field["name"]].default is None, where
            avro_type = avro_type[1]
        else:
            assert not optional, where
        assert_type_mirrors(annotation, avro_type, where)


def assert_type_mirrors(annotation: Any, avro_type: Any, where: str) -> None:
    if isinstance(avro_type, str):
        if avro_type in AVRO_PRIMITIVE:
            assert annotation is AVRO_PRIMITIVE[avro_type], where
        else:  # a reference to a named type defined earlier: the model names the same class
            assert isinstance(annotation, type) and annotation.__name__ == avro_type.rsplit(".", 1)[-1], where
        return
    kind = avro_type["type"]
    if "logicalType" in avro_type:
        if avro_type["logicalType"] == "uuid":
            assert annotation.__name__ == "UUID", where
        else:
            assert issubclass(annotation, AVRO_LOGICAL[avro_type["logicalType"]]), where
    elif kind == "record":
        assert issubclass(annotation, BaseModel) and annotation.__name__ == avro_type["name"], where
        assert_mirrors(annotation, avro_type, where)
    elif kind == "enum":
        assert issubclass(annotation, StrEnum) and annotation.__name__ == avro_type["name"], where
        assert [m.value for m in annotation] == avro_type["symbols"], where
    elif kind == "array":
        assert typing.get_origin(annotation) is list, where
        assert_type_mirrors(_base_type(typing.get_args(annotation)[0]), avro_type["items"], f"{where}[]")
    else:
        raise AssertionError(f"{where}: unexpected Avro type {avro_type}")


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_model_mirrors_the_avro_schema(name: str) -> None:
    model = EVENT_MODELS[name]
    schema = catalog().current[name].schema
    assert model.avro_name() == name
    assert_mirrors(model, schema, name)


def _set(path: str, value: Any) -> Mutation:
    def mutate(record: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = record
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[last] = value

    return mutate


def _bad_digit(path: str) -> Mutation:
    def mutate(record: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = record
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        good = target[last]
        target[last] = good[:12] + str((int(good[12]) + 1) % 10)

    return mutate


def _be_year(path: str) -> Mutation:
    def mutate(record: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = record
        for part in parents:
            target = target[part]
        target[last] = target[last].replace(year=target[last].year + 543)

    return mutate


def _same_spouses(record: dict[str, Any]) -> None:
    record["payload"]["spouse_b_citizen_id"] = record["payload"]["spouse_a_citizen_id"]
    record["references"]["citizen_ids"] = [record["payload"]["spouse_a_citizen_id"]]


OTHER = with_check_digit("510990000001")

DOMAIN_CASES: list[tuple[str, Mutation, str]] = [
    ("dopa.PersonEvent", _bad_digit("payload.citizen_id"), "check digit"),
    ("dopa.PersonEvent", _be_year("payload.date_of_birth"), "Buddhist-Era"),
    ("dopa.PersonEvent", _set("payload.card.expires_on", date(2020, 1, 1)), "not after issued_on"),
    ("dopa.PersonEvent", _set("payload.house_id", "1030012345"), "house_id"),
    ("dopa.HouseEvent", _bad_digit("payload.householder_citizen_id"), "check digit"),
    ("dopa.HouseEvent", _set("payload.address.postcode", "1011"), "postcode"),
    ("dopa.ResidenceEvent", _be_year("payload.moved_in_on"), "Buddhist-Era"),
    ("dopa.CivilRegistrationEvent", _set("payload.house_id", None), "names the house"),
    ("dopa.BirthEvent", _set("payload.registered_on", date(2023, 7, 1)), "before date_of_birth"),
    ("dopa.DeathEvent", _set("payload.registered_on", date(2023, 12, 31)), "before date_of_death"),
    ("dopa.MarriageEvent", _same_spouses, "same citizen ID"),
    ("dopa.NameChangeEvent", _set("payload.kind", "FIRST_NAME"), "names show SURNAME"),
    ("dbd.JuristicPersonEvent", _bad_digit("payload.juristic_id"), "check digit"),
    ("dbd.JuristicPersonEvent", _set("payload.directors", []), "at least one director"),
    ("dbd.JuristicPersonEvent", _set("payload.juristic_id", OTHER), "not a juristic-person ID"),
    ("dbd.JuristicPersonEvent", _set("payload.registered_capital", Decimal("-1.00")), "registered_capital"),
    ("dbd.CommercialRegistrationEvent", _bad_digit("payload.owner.id"), "check digit"),
    ("dbd.CommercialRegistrationEvent", _set("payload.business_category", "1071"), "business_category"),
    ("dol.TitleDeedEvent", _set("payload.owners.0.share_denominator", 3), "add up to 5/6"),
    ("dol.TitleDeedEvent", _set("payload.land_area.ngan", 4), "ngan"),
    ("dol.TitleDeedEvent", _set("payload.land_area", None), "land_area"),
    ("dol.TitleDeedEvent", _bad_digit("payload.mortgages.0.mortgagee.id"), "check digit"),
    ("dol.TitleDeedEvent", _set("payload.owners.0.owner.kind", "JURISTIC_PERSON"), "not a juristic-person ID"),
    ("dlt.VehicleEvent", _set("payload.plate.number", 0), "plate.number"),
    ("dlt.VehicleEvent", _set("payload.possessor", None), "references.citizen_ids"),
    ("dlt.DrivingLicenceEvent", _set("payload.expires_on", date(2019, 5, 4)), "not after issued_on"),
    ("dlt.DrivingLicenceEvent", _be_year("payload.issued_on"), "Buddhist-Era"),
]


def assert_refused_alike(decoded: Decoded, expected: str) -> None:
    """The model and the stream's rules (schemas.rules) refuse the event, in the same words."""
    with pytest.raises(DomainRuleViolation) as by_model:
        validate_event(decoded)
    with pytest.raises(DomainRuleViolation) as by_rules:
        check_event(decoded)
    assert by_model.value.reason == by_rules.value.reason == "domain-rule"
    assert expected in str(by_model.value), str(by_model.value)
    assert str(by_rules.value) == str(by_model.value)


@pytest.mark.parametrize(
    ("short", "mutate", "expected"), DOMAIN_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(DOMAIN_CASES)]
)
def test_domain_rule_violations_are_typed_and_explained(short: str, mutate: Mutation, expected: str) -> None:
    name = f"th.go.gdx.{short}"
    record = example_record(name)
    mutate(record)
    data = codec().encode(name, record)  # well-typed Avro: only the domain rules can catch it
    assert_refused_alike(codec().decode_stored(data), expected)


def test_every_dataset_has_a_domain_rule_case() -> None:
    assert {f"th.go.gdx.{short}" for short, _, _ in DOMAIN_CASES} == set(SCHEMA_NAMES)


NOW = datetime(2024, 6, 1, 9, 30, tzinfo=UTC)

ENVELOPE_CASES: list[tuple[dict[str, Any], str]] = [
    ({"change_type": "DELETE"}, "a DELETE carries no payload"),
    ({"payload": None}, "carries the entity as payload"),
    ({"entity_key": "1100000000000"}, "does not match the payload's key"),
    ({"references": {"citizen_ids": [], "juristic_ids": []}}, "references.citizen_ids"),
    ({"references": {"citizen_ids": [OTHER, OTHER], "juristic_ids": []}}, "lists an ID twice"),
    ({"source_time": NOW, "published_time": NOW - timedelta(seconds=1)}, "published_time is before source_time"),
    ({"trace_id": "0" * 32}, "all-zero trace id"),
    ({"trace_id": "4BF92F3577B34DA6A3CE929D0E0E4736"}, "trace_id"),
    ({"dataset_code": 34}, "not a person code"),
    ({"source_agency": "DLT"}, "owned by DOPA"),
    ({"entity_version": 0}, "entity_version"),
    ({"source_time": NOW.replace(year=2567)}, "Buddhist-Era"),
]


@pytest.mark.parametrize(("changes", "expected"), ENVELOPE_CASES, ids=[c[1][:30] for c in ENVELOPE_CASES])
def test_envelope_rules(changes: dict[str, Any], expected: str) -> None:
    name = "th.go.gdx.dopa.PersonEvent"
    record = example_record(name)
    record.update(changes)
    assert_refused_alike(codec().decode_stored(codec().encode(name, record)), expected)


def test_timestamps_are_normalised_to_utc_milliseconds() -> None:
    name = "th.go.gdx.dopa.PersonEvent"
    record = example_record(name)
    bangkok = timezone(timedelta(hours=7))
    record["source_time"] = datetime(2024, 6, 1, 16, 30, 0, 125999, tzinfo=bangkok)
    model = EVENT_MODELS[name].model_validate(record)
    assert model.source_time == datetime(2024, 6, 1, 9, 30, 0, 125000, tzinfo=UTC)
    assert validate_event(codec().decode_stored(codec().encode(name, model.to_avro()))) == model
