"""Shared test inputs: the repository's catalog, a codec over it, and one example event per schema."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from schemas.catalog import SchemaCatalog, load_schema_catalog
from schemas.codec import Codec
from schemas.examples import example_events
from schemas.models.envelope import ChangeEvent


@cache
def catalog() -> SchemaCatalog:
    return load_schema_catalog()


@cache
def codec() -> Codec:
    return Codec(catalog())


@cache
def _examples() -> dict[str, ChangeEvent]:
    return example_events()


def example(name: str) -> ChangeEvent:
    return _examples()[name]


def example_record(name: str) -> dict[str, Any]:
    """A fresh, mutable Avro-shaped copy of the example event."""
    return copy.deepcopy(example(name).to_avro())


SCHEMA_NAMES = sorted(load_schema_catalog().current)
