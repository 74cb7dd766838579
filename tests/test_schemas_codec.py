"""Both framings of every dataset's events (single-object in the store, Confluent's on the wire),
schema resolution through the registry's ids, and every kind of bad input."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from fastavro import parse_schema
from fastavro.schema import to_parsing_canonical_form
from fastavro.utils import generate_many

from schemas.catalog import KnownSchema, SchemaCatalog
from schemas.codec import Codec, Decoded, wire_header
from schemas.errors import (
    BodyMismatch,
    CodecError,
    DomainRuleViolation,
    NotEncodable,
    NotSingleObjectEncoded,
    NotWireFramed,
    UnknownFingerprint,
    UnknownSchema,
    UnknownSchemaId,
)
from schemas.examples import example_events
from schemas.fingerprint import schema_json
from schemas.models import EVENT_MODELS
from schemas.validation import validate_event
from streams.topic_catalog import load_catalog
from tests.support.schema_helpers import SCHEMA_NAMES, catalog, codec, example, example_record, schema_by_id, wire


def round_trip(name: str, record: dict[str, Any]) -> Decoded:
    """Stored, put on the wire under the registry's id, decoded as a consumer does."""
    return codec().decode(wire(codec().encode(name, record)))


# CRC-64-AVRO exactly as the Avro specification gives it, independent of fastavro.
_EMPTY = 0xC15D213AA4D7A795
_TABLE = []
for _i in range(256):
    _fp = _i
    for _ in range(8):
        _fp = (_fp >> 1) ^ (_EMPTY & -(_fp & 1))
    _TABLE.append(_fp)


def spec_fingerprint(canonical: str) -> bytes:
    fp = _EMPTY
    for byte in canonical.encode("utf-8"):
        fp = (fp >> 8) ^ _TABLE[(fp ^ byte) & 0xFF]
    return fp.to_bytes(8, "little")


def test_spec_crc_matches_the_specification_vector() -> None:
    # The Avro specification's example: the fingerprint of "null" is 0x63dd24e7cc258f8a.
    assert spec_fingerprint('"null"') == (0x63DD24E7CC258F8A).to_bytes(8, "little")


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_header_is_marker_and_spec_fingerprint(name: str) -> None:
    data = codec().encode(name, example_record(name))
    canonical = to_parsing_canonical_form(catalog().current[name].schema)
    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == spec_fingerprint(canonical)


def test_canonical_form_drops_logical_types_and_docs_as_the_spec_says() -> None:
    """[PRIMITIVES] and [STRIP]: {"type": "string", "logicalType": "uuid"} becomes "string".

    (The Apache `avro` Python package keeps {"type":"string"} here and so computes other
    fingerprints; Java's SchemaNormalization and fastavro follow the specification.)
    """
    canonical = to_parsing_canonical_form(catalog().current["th.go.gdx.dopa.PersonEvent"].schema)
    assert '{"name":"event_id","type":"string"}' in canonical
    assert "logicalType" not in canonical and "doc" not in canonical


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_every_dataset_round_trips_through_bytes_and_model(name: str) -> None:
    event = example(name)
    decoded = round_trip(name, event.to_avro())
    assert decoded.schema_name == name
    assert decoded.writer_version == catalog().current[name].version
    assert validate_event(decoded) == event


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_delete_carries_no_payload_and_round_trips(name: str) -> None:
    record = example_record(name)
    record.update(change_type="DELETE", payload=None, entity_version=record["entity_version"] + 1)
    model = validate_event(round_trip(name, record))
    assert model.payload is None and model.change_type == "DELETE"


def test_records_are_keyed_by_entity_and_a_delete_is_followed_by_a_tombstone() -> None:
    name = "th.go.gdx.dol.TitleDeedEvent"
    record = example_record(name)
    key = record["entity_key"].encode("utf-8")
    assert [k for k, _ in codec().records(name, record)] == [key]
    record.update(change_type="DELETE", payload=None)
    (first_key, delete), (second_key, tombstone) = codec().records(name, record)
    assert first_key == second_key == key == b"12-45872"
    assert codec().decode_stored(delete).record["change_type"] == "DELETE" and tombstone is None


def test_every_catalog_dataset_has_a_schema_a_model_and_an_example() -> None:
    topics = {(d.agency, d.name) for d in load_catalog().datasets}
    assert set(catalog().datasets) == topics
    assert set(EVENT_MODELS) == set(catalog().current) == set(example_events())


def test_encode_dataset_uses_that_datasets_schema() -> None:
    data = codec().encode_dataset("dol", "title-deed", example_record("th.go.gdx.dol.TitleDeedEvent"))
    assert codec().decode(wire(data)).schema_name == "th.go.gdx.dol.TitleDeedEvent"
    with pytest.raises(UnknownSchema):
        codec().encode_dataset("dol", "boat", {})


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00",
        b"\x00\x00\x01",
        b'{"citizen_id": "1101700123456"}',
        b"\xc3\x01" + bytes(20),
        b"\x01\x00\x00\x00\x01\x02ab",
    ],
    ids=["empty", "one-byte", "short-header", "json", "single-object-framing", "wrong-magic-byte"],
)
def test_bytes_without_the_wire_header_are_rejected(data: bytes) -> None:
    with pytest.raises(NotWireFramed) as caught:
        codec().decode(data)
    assert caught.value.reason == "not-wire-framed" and "magic byte 00" in str(caught.value)


def test_a_schema_id_the_registry_does_not_hold_is_named() -> None:
    body = codec().encode(SCHEMA_NAMES[0], example_record(SCHEMA_NAMES[0]))[10:]
    with pytest.raises(UnknownSchemaId) as caught:
        codec().decode(wire_header(99_999) + body)
    assert caught.value.reason == "unknown-schema-id" and caught.value.schema_id == 99_999
    assert "schema id 99999" in str(caught.value)


def test_a_registry_schema_that_is_no_avro_is_an_unknown_id() -> None:
    broken = Codec(catalog(), lambda _id: '{"type": "record"}')
    with pytest.raises(UnknownSchemaId, match="does not parse"):
        broken.decode(b"\x00\x00\x00\x00\x07\x02")


def test_the_registry_is_asked_once_per_id() -> None:
    asked: list[int] = []

    def counting(schema_id: int) -> str | None:
        asked.append(schema_id)
        return schema_by_id(schema_id)

    counted = Codec(catalog(), counting)
    values = [wire(codec().encode(name, example_record(name))) for name in SCHEMA_NAMES] * 3
    assert [counted.decode(v).schema_name for v in values] == SCHEMA_NAMES * 3
    assert len(asked) == len(SCHEMA_NAMES) == len(set(asked))


def test_a_stored_value_without_the_single_object_header_is_rejected() -> None:
    with pytest.raises(NotSingleObjectEncoded) as caught:
        codec().decode_stored(b'{"json": true}')
    assert caught.value.reason == "not-single-object"


def test_unknown_fingerprint_names_the_fingerprint() -> None:
    body = codec().encode(SCHEMA_NAMES[0], example_record(SCHEMA_NAMES[0]))[10:]
    stranger = bytes.fromhex("0123456789abcdef")
    with pytest.raises(UnknownFingerprint) as caught:
        codec().decode_stored(b"\xc3\x01" + stranger + body)
    assert caught.value.reason == "unknown-fingerprint"
    assert caught.value.fingerprint == stranger and "0123456789abcdef" in str(caught.value)


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_truncated_bodies_are_body_mismatches(name: str) -> None:
    data = wire(codec().encode(name, example_record(name)))
    for cut in range(6, len(data), max(1, len(data) // 25)):
        with pytest.raises(BodyMismatch) as caught:
            codec().decode(data[:cut])
        assert caught.value.reason == "body-mismatch" and name in caught.value.detail


def test_trailing_bytes_are_a_body_mismatch() -> None:
    name = SCHEMA_NAMES[0]
    with pytest.raises(BodyMismatch, match="1 bytes left"):
        codec().decode(wire(codec().encode(name, example_record(name))) + b"\x00")


def test_a_body_written_with_another_schema_does_not_pass_as_this_one() -> None:
    person = codec().encode("th.go.gdx.dopa.PersonEvent", example_record("th.go.gdx.dopa.PersonEvent"))
    residence = codec().encode("th.go.gdx.dopa.ResidenceEvent", example_record("th.go.gdx.dopa.ResidenceEvent"))
    with pytest.raises(CodecError) as caught:
        validate_event(codec().decode(wire(residence)[:5] + person[10:]))
    assert caught.value.reason in ("body-mismatch", "domain-rule")


def test_corrupted_events_raise_typed_errors_and_never_anything_else() -> None:
    rng = random.Random(20240601)
    originals = [wire(codec().encode(n, example_record(n))) for n in SCHEMA_NAMES]
    outcomes: dict[str, int] = {}
    for _ in range(3000):
        data = bytearray(rng.choice(originals))
        for _ in range(rng.randint(1, 3)):
            position = rng.randrange(len(data))
            data[position] = rng.randrange(256)
        try:
            validate_event(codec().decode(bytes(data)))
            outcome = "valid"
        except CodecError as exc:
            outcome = exc.reason
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    assert {"not-wire-framed", "unknown-schema-id", "body-mismatch", "domain-rule"} <= set(outcomes)


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_random_schema_conforming_events_survive_bytes_and_never_crash_validation(name: str) -> None:
    """fastavro's generator fills every field with arbitrary values of the right Avro type."""
    for record in generate_many(catalog().current[name].parsed, 40):
        decoded = round_trip(name, record)
        assert round_trip(name, decoded.record).record == decoded.record
        with pytest.raises(DomainRuleViolation):  # random strings are no valid citizen IDs
            validate_event(decoded)


def test_encoding_a_record_that_misfits_its_schema_is_a_typed_error() -> None:
    record = example_record("th.go.gdx.dopa.PersonEvent")
    del record["trace_id"]
    with pytest.raises(NotEncodable):
        codec().encode("th.go.gdx.dopa.PersonEvent", record)
    record = example_record("th.go.gdx.dopa.PersonEvent")
    record["change_type"] = "RENAME"
    with pytest.raises(NotEncodable):
        codec().encode("th.go.gdx.dopa.PersonEvent", record)
    with pytest.raises(UnknownSchema):
        codec().encode("th.go.gdx.dopa.Nobody", record)


def test_an_event_written_with_an_older_version_is_read_as_the_current_one() -> None:
    name = "th.go.gdx.dlt.VehicleEvent"
    v1, v2 = catalog().released(name)[:2]
    assert (v1.version, v2.version) == (1, 2) and v1.fingerprint != v2.fingerprint
    record = example_record(name)
    del record["payload"]["engine_number"]  # v1 has no such field
    decoded = codec().decode(wire(codec().encode_version(name, 1, record)))
    assert decoded.writer_version == 1 and decoded.fingerprint == v1.fingerprint
    assert decoded.record["payload"]["engine_number"] is None
    assert validate_event(decoded).payload.chassis_number == record["payload"]["chassis_number"]
    with pytest.raises(UnknownSchema):
        codec().encode_version(name, 9, record)


def test_a_consumer_with_only_the_registrys_schema_documents_can_decode() -> None:
    """What a consumer without this repository has: the registry's schema text for each id. A
    catalog of those documents alone decodes what this repository's codec decodes."""
    remote_catalog = SchemaCatalog(
        KnownSchema(k.name, k.version, True, json.loads(schema_json(k.schema)))
        for k in catalog().by_fingerprint.values()
    )
    remote = Codec(remote_catalog, schema_by_id)
    for name in SCHEMA_NAMES:
        data = wire(codec().encode(name, example_record(name)))
        assert remote.decode(data).record == codec().decode(data).record


def test_a_schema_only_the_registry_knows_is_read_into_the_current_version() -> None:
    """A producer ahead of this consumer: its writer schema (v1 of VehicleEvent, say, unknown to a
    consumer that holds only v2) is fetched by id and resolved to the consumer's current record."""
    name = "th.go.gdx.dlt.VehicleEvent"
    v1 = catalog().released(name)[0]
    current_only = SchemaCatalog([catalog().current[name]], catalog().datasets)
    consumer = Codec(current_only, schema_by_id)
    record = example_record(name)
    del record["payload"]["engine_number"]
    decoded = consumer.decode(wire(codec().encode_version(name, 1, record)))
    assert decoded.fingerprint == v1.fingerprint and decoded.writer_version == 0
    assert decoded.record["payload"]["engine_number"] is None


def test_a_domain_violation_is_typed_and_lists_each_broken_rule() -> None:
    record = example_record("th.go.gdx.dopa.PersonEvent")
    record["payload"]["citizen_id"] = record["payload"]["citizen_id"][:12] + "0"
    record["payload"]["date_of_birth"] = record["payload"]["date_of_birth"].replace(year=2528)
    with pytest.raises(DomainRuleViolation) as caught:
        validate_event(round_trip("th.go.gdx.dopa.PersonEvent", record))
    assert caught.value.reason == "domain-rule"
    assert any(v.startswith("payload.citizen_id: ") and "check digit" in v for v in caught.value.violations)
    assert any(v.startswith("payload.date_of_birth: ") and "Buddhist-Era" in v for v in caught.value.violations)


def test_parsed_schemas_are_self_contained() -> None:
    """Each published schema parses alone, without the shared envelope or common types."""
    for known in catalog().by_fingerprint.values():
        parse_schema(json.loads(schema_json(known.schema)), named_schemas={})
