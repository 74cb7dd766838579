"""Avro single-object encoding of change events: `C3 01`, 8-byte CRC-64-AVRO fingerprint, body.

The header makes every event self-describing: a consumer looks the fingerprint up in its catalog
(this repository's, or one loaded from `gdx.schemas`) and decodes with that writer schema, resolved
to its own current version of the same record when the writer was older or newer. Everything the
hot path needs (parsed schemas, headers, which reader goes with which writer) is computed once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from io import BytesIO
from typing import Any, cast

from fastavro import schemaless_reader, schemaless_writer

from schemas.catalog import KnownSchema, SchemaCatalog
from schemas.errors import BodyMismatch, NotEncodable, NotSingleObjectEncoded, UnknownFingerprint, UnknownSchema
from schemas.fingerprint import SINGLE_OBJECT_MAGIC

HEADER_SIZE = 10


@dataclass(frozen=True, slots=True)
class Decoded:
    """A decoded event: which schema wrote it, and the record in the reader's (current) shape."""

    fingerprint: bytes
    schema_name: str
    writer_version: int
    record: dict[str, Any]


class Codec:
    def __init__(self, catalog: SchemaCatalog) -> None:
        self.catalog = catalog
        self._writers: dict[str, tuple[bytes, Any]] = {
            name: (known.header, known.parsed) for name, known in catalog.current.items()
        }
        self._readers: dict[bytes, tuple[KnownSchema, Any, Any]] = {}
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
        """Decode one Kafka record value; every failure is a CodecError with its reason."""
        if len(data) < HEADER_SIZE or data[:2] != SINGLE_OBJECT_MAGIC:
            raise NotSingleObjectEncoded(
                f"{len(data)} bytes starting {bytes(data[:2]).hex() or '(empty)'}, "
                "expected marker c301 and a fingerprint"
            )
        fp = bytes(data[2:HEADER_SIZE])
        try:
            known, writer, reader = self._readers[fp]
        except KeyError:
            raise UnknownFingerprint(fp) from None
        body = BytesIO(data)
        body.seek(HEADER_SIZE)
        try:
            record = cast(dict[str, Any], schemaless_reader(body, writer, reader))  # event schemas are records
        except Exception as exc:  # truncated or corrupt bodies surface as EOF, value, type or index errors
            raise BodyMismatch(f"{known.name} v{known.version}: {type(exc).__name__}: {exc}") from exc
        if body.tell() != len(data):
            raise BodyMismatch(f"{known.name} v{known.version}: {len(data) - body.tell()} bytes left after the record")
        return Decoded(fp, known.name, known.version, record)
