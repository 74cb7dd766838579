"""The schema catalog as Kafka records: every known schema in the compacted topic `gdx.schemas`.

A consumer without this repository reads the topic once, builds a SchemaCatalog from it and can
then decode any event by its header fingerprint. Record key: the 8 fingerprint bytes as 16 hex
digits (wire order); value: the full schema JSON (logical types and defaults included, which the
Parsing Canonical Form would drop); headers: schema name and version. The same schema always
lands under the same key, so compaction keeps one record per schema.

This is the record format only, part of the contract: the reading and writing of the topic is the
runtime's (`streams.schema_topic`) and the producers' (`agencies.schema_announcer`).
"""

from __future__ import annotations

import json

from schemas.catalog import KnownSchema
from schemas.fingerprint import fingerprint, schema_json

SCHEMA_TOPIC = "gdx.schemas"
NAME_HEADER = "gdx-schema-name"
VERSION_HEADER = "gdx-schema-version"

Headers = list[tuple[str, bytes]]


class SchemaTopicError(Exception):
    """The topic holds a record that is not a schema under its own fingerprint, or cannot be read in time."""


def schema_record(known: KnownSchema) -> tuple[bytes, bytes, Headers]:
    """(key, value, headers) of the record that registers `known`."""
    return (
        known.fingerprint.hex().encode("ascii"),
        schema_json(known.schema).encode("utf-8"),
        [(NAME_HEADER, known.name.encode("utf-8")), (VERSION_HEADER, str(known.version).encode("ascii"))],
    )


def known_from_record(key: bytes | None, value: bytes, headers: dict[str, bytes]) -> KnownSchema:
    """The schema a record registers, checked against the fingerprint its key claims."""
    try:
        schema = json.loads(value)
        known = KnownSchema(headers[NAME_HEADER].decode(), int(headers[VERSION_HEADER]), True, schema)
    except (ValueError, KeyError, TypeError) as exc:
        raise SchemaTopicError(f"record with key {key!r} is not a schema document: {exc}") from None
    if key is None or key.decode("ascii", "replace") != fingerprint(schema).hex():
        raise SchemaTopicError(f"record with key {key!r} holds a schema whose fingerprint is {known.fingerprint.hex()}")
    return known
