"""Single-object encoding of every dataset's events, schema resolution, and every kind of bad input."""

from __future__ import annotations

import json
import random

import pytest
from fastavro import parse_schema
from fastavro.schema import to_parsing_canonical_form
from fastavro.utils import generate_many

from schemas.catalog import KnownSchema, SchemaCatalog
from schemas.codec import Codec
from schemas.errors import (
    BodyMismatch,
    CodecError,
    DomainRuleViolation,
    NotEncodable,
    NotSingleObjectEncoded,
    UnknownFingerprint,
    UnknownSchema,
)
from schemas.examples import example_events
from schemas.fingerprint import schema_json
from schemas.models import EVENT_MODELS
from schemas.validation import validate_event
from streams.topic_catalog import load_catalog
from tests.support.schema_helpers import SCHEMA_NAMES, catalog, codec, example, example_record

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
    decoded = codec().decode(codec().encode(name, event.to_avro()))
    assert decoded.schema_name == name
    assert decoded.writer_version == catalog().current[name].version
    assert validate_event(decoded) == event


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_delete_carries_no_payload_and_round_trips(name: str) -> None:
    record = example_record(name)
    record.update(change_type="DELETE", payload=None, entity_version=record["entity_version"] + 1)
    model = validate_event(codec().decode(codec().encode(name, record)))
    assert model.payload is None and model.change_type == "DELETE"


def test_records_are_keyed_by_entity_and_a_delete_is_followed_by_a_tombstone() -> None:
    name = "th.go.gdx.dol.TitleDeedEvent"
    record = example_record(name)
    key = record["entity_key"].encode("utf-8")
    assert [k for k, _ in codec().records(name, record)] == [key]
    record.update(change_type="DELETE", payload=None)
    (first_key, delete), (second_key, tombstone) = codec().records(name, record)
    assert first_key == second_key == key == b"12-45872"
    assert codec().decode(delete).record["change_type"] == "DELETE" and tombstone is None


def test_every_catalog_dataset_has_a_schema_a_model_and_an_example() -> None:
    topics = {(d.agency, d.name) for d in load_catalog().datasets}
    assert set(catalog().datasets) == topics
    assert set(EVENT_MODELS) == set(catalog().current) == set(example_events())


def test_encode_dataset_uses_that_datasets_schema() -> None:
    data = codec().encode_dataset("dol", "title-deed", example_record("th.go.gdx.dol.TitleDeedEvent"))
    assert codec().decode(data).schema_name == "th.go.gdx.dol.TitleDeedEvent"
    with pytest.raises(UnknownSchema):
        codec().encode_dataset("dol", "boat", {})


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc3",
        b"\xc3\x01\x00\x01\x02",
        b'{"citizen_id": "1101700123456"}',
        b"\x00\x00\x00\x00\x07\x02ab",
        b"\xc3\x02" + bytes(20),
    ],
    ids=["empty", "one-byte", "short-header", "json", "confluent-framing", "wrong-version-byte"],
)
def test_bytes_without_the_single_object_header_are_rejected(data: bytes) -> None:
    with pytest.raises(NotSingleObjectEncoded) as caught:
        codec().decode(data)
    assert caught.value.reason == "not-single-object"


def test_unknown_fingerprint_names_the_fingerprint() -> None:
    body = codec().encode(SCHEMA_NAMES[0], example_record(SCHEMA_NAMES[0]))[10:]
    stranger = bytes.fromhex("0123456789abcdef")
    with pytest.raises(UnknownFingerprint) as caught:
        codec().decode(b"\xc3\x01" + stranger + body)
    assert caught.value.reason == "unknown-fingerprint"
    assert caught.value.fingerprint == stranger and "0123456789abcdef" in str(caught.value)


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_truncated_bodies_are_body_mismatches(name: str) -> None:
    data = codec().encode(name, example_record(name))
    for cut in range(11, len(data), max(1, len(data) // 25)):
        with pytest.raises(BodyMismatch) as caught:
            codec().decode(data[:cut])
        assert caught.value.reason == "body-mismatch" and name in caught.value.detail


def test_trailing_bytes_are_a_body_mismatch() -> None:
    name = SCHEMA_NAMES[0]
    with pytest.raises(BodyMismatch, match="1 bytes left"):
        codec().decode(codec().encode(name, example_record(name)) + b"\x00")


def test_a_body_written_with_another_schema_does_not_pass_as_this_one() -> None:
    person = codec().encode("th.go.gdx.dopa.PersonEvent", example_record("th.go.gdx.dopa.PersonEvent"))
    residence_header = catalog().current["th.go.gdx.dopa.ResidenceEvent"].header
    with pytest.raises(CodecError) as caught:
        validate_event(codec().decode(residence_header + person[10:]))
    assert caught.value.reason in ("body-mismatch", "domain-rule")


def test_corrupted_events_raise_typed_errors_and_never_anything_else() -> None:
    rng = random.Random(20240601)
    originals = [codec().encode(n, example_record(n)) for n in SCHEMA_NAMES]
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
    assert {"not-single-object", "unknown-fingerprint", "body-mismatch", "domain-rule"} <= set(outcomes)


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_random_schema_conforming_events_survive_bytes_and_never_crash_validation(name: str) -> None:
    """fastavro's generator fills every field with arbitrary values of the right Avro type."""
    for record in generate_many(catalog().current[name].parsed, 40):
        data = codec().encode(name, record)
        decoded = codec().decode(data)
        assert codec().decode(codec().encode(name, decoded.record)).record == decoded.record
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
    decoded = codec().decode(codec().encode_version(name, 1, record))
    assert decoded.writer_version == 1 and decoded.fingerprint == v1.fingerprint
    assert decoded.record["payload"]["engine_number"] is None
    assert validate_event(decoded).payload.chassis_number == record["payload"]["chassis_number"]
    with pytest.raises(UnknownSchema):
        codec().encode_version(name, 9, record)


def test_a_consumer_with_only_published_schema_documents_can_decode() -> None:
    """What a consumer without this repository has: the JSON values of `gdx.schemas`."""
    documents = [(k.name, k.version, schema_json(k.schema)) for k in catalog().by_fingerprint.values()]
    remote = Codec(SchemaCatalog(KnownSchema(n, v, True, json.loads(doc)) for n, v, doc in documents))
    for name in SCHEMA_NAMES:
        data = codec().encode(name, example_record(name))
        assert remote.decode(data).record == codec().decode(data).record


def test_a_domain_violation_is_typed_and_lists_each_broken_rule() -> None:
    record = example_record("th.go.gdx.dopa.PersonEvent")
    record["payload"]["citizen_id"] = record["payload"]["citizen_id"][:12] + "0"
    record["payload"]["date_of_birth"] = record["payload"]["date_of_birth"].replace(year=2528)
    with pytest.raises(DomainRuleViolation) as caught:
        validate_event(codec().decode(codec().encode("th.go.gdx.dopa.PersonEvent", record)))
    assert caught.value.reason == "domain-rule"
    assert any(v.startswith("payload.citizen_id: ") and "check digit" in v for v in caught.value.violations)
    assert any(v.startswith("payload.date_of_birth: ") and "Buddhist-Era" in v for v in caught.value.violations)


def test_parsed_schemas_are_self_contained() -> None:
    """Each published schema parses alone, without the shared envelope or common types."""
    for known in catalog().by_fingerprint.values():
        parse_schema(json.loads(schema_json(known.schema)), named_schemas={})
