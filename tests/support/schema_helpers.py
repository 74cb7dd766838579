"""Shared test inputs: the repository's catalog, a codec over it, and one example event per schema.

`schema_by_id` is the codec's registry seam filled from the catalog (ids 1, 2, … by fingerprint),
for unit tests that decode the wire format without a registry; `wire` frames a stored event with
those ids. Tests against a real registry use `tests.support.registry_support` instead."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from schemas.catalog import SchemaCatalog, load_schema_catalog
from schemas.codec import HEADER_SIZE, Codec, to_wire
from schemas.examples import example_events
from schemas.fingerprint import schema_json
from schemas.models.envelope import ChangeEvent


@cache
def catalog() -> SchemaCatalog:
    return load_schema_catalog()


@cache
def _ids() -> dict[bytes, int]:
    return {fp: number for number, fp in enumerate(sorted(catalog().by_fingerprint), start=1)}


@cache
def _texts() -> dict[int, str]:
    return {number: schema_json(catalog().by_fingerprint[fp].schema) for fp, number in _ids().items()}


def schema_by_id(schema_id: int) -> str | None:
    return _texts().get(schema_id)


def wire(stored: bytes) -> bytes:
    """A stored event in the wire format, under the catalog's own ids."""
    return to_wire(stored, _ids()[stored[2:HEADER_SIZE]])


@cache
def codec() -> Codec:
    return Codec(catalog(), schema_by_id)


@cache
def _examples() -> dict[str, ChangeEvent]:
    return example_events()


def example(name: str) -> ChangeEvent:
    return _examples()[name]


def example_record(name: str) -> dict[str, Any]:
    """A fresh, mutable Avro-shaped copy of the example event."""
    return copy.deepcopy(example(name).to_avro())


SCHEMA_NAMES = sorted(load_schema_catalog().current)
