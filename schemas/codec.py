"""The two framings of a change event's Avro body, and the decoding of both.

Stored (an agency's outbox): Avro single-object encoding, `C3 01`, the 8-byte CRC-64-AVRO
fingerprint, the body, so a store is self-describing with no registry at hand. On the wire: the
Confluent format, `00`, the schema registry's 4-byte id (big-endian), the same body, which every
Kafka tool decodes with a registry URL alone. A consumer resolves an id through the registry once
(`schema_by_id`), recognises the schema by its fingerprint in its own catalog, and decodes with
that writer schema, resolved to its own current version of the same record when the writer was
older or newer. Everything the hot path needs (parsed schemas, headers, which reader goes with
which writer) is computed once per schema.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from io import BytesIO
from typing import Any, cast

from fastavro import schemaless_reader, schemaless_writer

from schemas.catalog import KnownSchema, SchemaCatalog
from schemas.errors import (
    BodyMismatch,
    NotEncodable,
    NotSingleObjectEncoded,
    NotWireFramed,
    UnknownFingerprint,
    UnknownSchema,
    UnknownSchemaId,
)
from schemas.fingerprint import SINGLE_OBJECT_MAGIC

HEADER_SIZE = 10
"""Bytes before the body of a stored (single-object) event."""
WIRE_MAGIC = 0
WIRE_HEADER_SIZE = 5
"""Bytes before the body of an event on the wire: the magic byte and the schema id."""

SchemaById = Callable[[int], "str | None"]
"""The registry's schema text for an id, None when it has none (errors it cannot answer propagate)."""


def wire_header(schema_id: int) -> bytes:
    return bytes((WIRE_MAGIC,)) + schema_id.to_bytes(4, "big")


def to_wire(stored: bytes, schema_id: int) -> bytes:
    """A stored event in the wire format, under the id the registry gave its schema."""
    return wire_header(schema_id) + stored[HEADER_SIZE:]


@dataclass(frozen=True, slots=True)
class Decoded:
    """A decoded event: which schema wrote it, and the record in the reader's (current) shape."""

    fingerprint: bytes
    schema_name: str
    writer_version: int
    record: dict[str, Any]


_Reading = tuple[KnownSchema, Any, Any]
"""What decodes one writer's events: the writer's schema, parsed, and the reader (None: the same)."""


class Codec:
    def __init__(self, catalog: SchemaCatalog, schema_by_id: SchemaById | None = None) -> None:
        """`schema_by_id`: the registry, for decoding the wire format; a codec without one
        encodes and decodes stored events only."""
        self.catalog = catalog
        self.schema_by_id = schema_by_id
        self._by_id: dict[int, _Reading] = {}
        self._writers: dict[str, tuple[bytes, Any]] = {
            name: (known.header, known.parsed) for name, known in catalog.current.items()
        }
        self._readers: dict[bytes, _Reading] = {}
        for fp, known in catalog.by_fingerprint.items():
            current = catalog.current[known.name]
            reader = None if current.fingerprint == fp else current.parsed
            self._readers[fp] = (known, known.parsed, reader)

    def encode(self, schema_name: str, event: Mapping[str, Any]) -> bytes:
        """Encode with the current version of `schema_name`."""
        try:
            header, parsed = self._writers[schema_name]
        except KeyError:
            raise UnknownSchema(f"no current schema named {schema_name}") from None
        return self._write(header, parsed, schema_name, event)

    @staticmethod
    def _write(header: bytes, parsed: Any, schema_name: str, event: Mapping[str, Any]) -> bytes:
        out = BytesIO()
        out.write(header)
        try:
            schemaless_writer(out, parsed, event)
        except Exception as exc:  # fastavro signals a misfit with many exception types
            raise NotEncodable(f"{schema_name}: {type(exc).__name__}: {exc}") from exc
        return out.getvalue()

    def encode_version(self, schema_name: str, version: int, event: Mapping[str, Any]) -> bytes:
        """Encode with an older (or any known) version, as a producer not yet upgraded would."""
        for known in self.catalog.versions(schema_name):
            if known.version == version:
                return self._write(known.header, known.parsed, schema_name, event)
        raise UnknownSchema(f"no version {version} of {schema_name}")

    def records(self, schema_name: str, event: Mapping[str, Any]) -> list[tuple[bytes, bytes | None]]:
        """The Kafka records (key, value) that publish one event, in order.

        Key: the entity key in UTF-8, so an entity's versions share a partition. A DELETE is the
        delete event itself (consumers that follow the stream see who deleted what, when) and then
        a tombstone, value None, so compaction eventually drops the entity from the topic.
        """
        key = str(event["entity_key"]).encode("utf-8")
        value = self.encode(schema_name, event)
        if event["change_type"] == "DELETE":
            return [(key, value), (key, None)]
        return [(key, value)]

    def encode_dataset(self, agency: str, dataset: str, event: Mapping[str, Any]) -> bytes:
        return self.encode(self.catalog.for_dataset(agency, dataset).name, event)

    def decode(self, data: bytes) -> Decoded:
        """Decode one Kafka record value (wire format); every failure of the event is a CodecError
        with its reason. A registry that cannot answer is not the event's failure: its error
        (from `schema_by_id`) propagates, and the event is decoded once the registry answers."""
        if len(data) < WIRE_HEADER_SIZE or data[0] != WIRE_MAGIC:
            raise NotWireFramed(
                f"{len(data)} bytes starting {bytes(data[:1]).hex() or '(empty)'}, "
                "expected the magic byte 00 and a 4-byte schema id"
            )
        schema_id = int.from_bytes(data[1:WIRE_HEADER_SIZE], "big")
        reading = self._by_id.get(schema_id)
        if reading is None:
            reading = self._resolve(schema_id)
        return self._read(data, WIRE_HEADER_SIZE, reading)

    def decode_stored(self, data: bytes) -> Decoded:
        """Decode one stored value (single-object encoding), as an agency's outbox holds it."""
        if len(data) < HEADER_SIZE or data[:2] != SINGLE_OBJECT_MAGIC:
            raise NotSingleObjectEncoded(
                f"{len(data)} bytes starting {bytes(data[:2]).hex() or '(empty)'}, "
                "expected marker c301 and a fingerprint"
            )
        fp = bytes(data[2:HEADER_SIZE])
        try:
            reading = self._readers[fp]
        except KeyError:
            raise UnknownFingerprint(fp) from None
        return self._read(data, HEADER_SIZE, reading)

    def _resolve(self, schema_id: int) -> _Reading:
        """The registry's schema under `schema_id`, known by its fingerprint when it is one of the
        catalog's; a schema only the registry knows (a producer ahead of this consumer) is read
        into the current version of the record of the same name."""
        text = None if self.schema_by_id is None else self.schema_by_id(schema_id)
        if text is None:
            raise UnknownSchemaId(schema_id)
        try:
            known = KnownSchema.from_registry(json.loads(text))
        except Exception as exc:  # noqa: BLE001 - json and fastavro report a bad schema with many types
            raise UnknownSchemaId(schema_id, f"its schema does not parse: {type(exc).__name__}: {exc}") from None
        reading = self._readers.get(known.fingerprint)
        if reading is None:
            current = self.catalog.current.get(known.name)
            if current is None:
                raise UnknownSchema(f"schema id {schema_id} is {known.name}, which this consumer does not read")
            reading = (known, known.parsed, current.parsed)
        self._by_id[schema_id] = reading
        return reading

    @staticmethod
    def _read(data: bytes, start: int, reading: _Reading) -> Decoded:
        known, writer, reader = reading
        body = BytesIO(data)
        body.seek(start)
        try:
            record = cast(dict[str, Any], schemaless_reader(body, writer, reader))  # event schemas are records
        except Exception as exc:  # truncated or corrupt bodies surface as EOF, value, type or index errors
            raise BodyMismatch(f"{known.name} v{known.version}: {type(exc).__name__}: {exc}") from exc
        if body.tell() != len(data):
            raise BodyMismatch(f"{known.name} v{known.version}: {len(data) - body.tell()} bytes left after the record")
        return Decoded(known.fingerprint, known.name, known.version, record)
