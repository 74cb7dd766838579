"""The schema sources and released files keep the house rules: documented, namespaced, typed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from schemas.catalog import RELEASED_DIR, read_released
from schemas.compose import full_name
from tests.support.schema_helpers import SCHEMA_NAMES, catalog


def walk(schema: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every named type and every field, with where it is."""
    if isinstance(schema, list):
        for branch in schema:
            yield from walk(branch, path)
    elif isinstance(schema, dict):
        if schema.get("type") in ("record", "enum", "fixed"):
            yield path or full_name(schema), schema
        for field in schema.get("fields", []):
            where = f"{path}.{field['name']}" if path else field["name"]
            yield where, field
            yield from walk(field["type"], where)
        if "items" in schema:
            yield from walk(schema["items"], f"{path}[]")
        if isinstance(schema.get("type"), (dict, list)):
            yield from walk(schema["type"], path)


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_every_field_and_type_is_documented(name: str) -> None:
    undocumented = [where for where, node in walk(catalog().current[name].schema) if not node.get("doc", "").strip()]
    assert undocumented == []


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_every_named_type_lives_in_the_project_namespace(name: str) -> None:
    schema = catalog().current[name].schema
    assert full_name(schema) == name and name.startswith("th.go.gdx.")
    for where, node in walk(schema):
        if node.get("type") in ("record", "enum") and "namespace" in node:
            assert node["namespace"].startswith("th.go.gdx."), where


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_envelope_uses_the_logical_types(name: str) -> None:
    fields = {f["name"]: f["type"] for f in catalog().current[name].schema["fields"]}
    assert fields["event_id"] == {"type": "string", "logicalType": "uuid"}
    assert fields["source_time"]["logicalType"] == fields["published_time"]["logicalType"] == "timestamp-millis"
    assert fields["payload"][0] == "null"


def test_money_and_area_are_decimals() -> None:
    decimals = {
        where
        for name in SCHEMA_NAMES
        for where, node in walk(catalog().current[name].schema)
        if isinstance(node.get("type"), dict)
        and node["type"].get("logicalType") == "decimal"
        or isinstance(node.get("type"), list)
        and any(isinstance(b, dict) and b.get("logicalType") == "decimal" for b in node["type"])
    }
    assert {
        "payload.registered_capital",
        "payload.capital",
        "payload.unit_area_sqm",
        "payload.land_area.square_wah",
        "payload.mortgages[].amount",
        "payload.last_transfer.declared_price",
    } <= decimals


def test_released_folders_hold_their_own_schema_and_consecutive_versions() -> None:
    for name, versions in read_released(RELEASED_DIR).items():
        assert [v for v, _ in versions] == list(range(1, len(versions) + 1)), name
        assert all(full_name(schema) == name for _, schema in versions), name
