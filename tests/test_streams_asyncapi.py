"""The generated AsyncAPI document is valid AsyncAPI 3.0 and describes every channel and message."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fastavro import parse_schema

from foundation.errors import GdxError
from schemas.fingerprint import fingerprint
from streams.asyncapi import build_document
from streams.cli import main
from streams.settings import Settings
from streams.topic_catalog import Catalog, Dataset, load_catalog
from tests.support.schema_helpers import catalog

OFFICIAL_SCHEMA = Path(__file__).parent / "data" / "asyncapi-3.0.0.schema.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(OFFICIAL_SCHEMA.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_document(load_catalog(), catalog(), Settings(kafka_bootstrap_servers="broker.example:9092"))


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_document_is_valid_against_the_official_asyncapi_3_schema(
    validator: jsonschema.Draft7Validator, document: dict[str, Any]
) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(document)]
    assert errors == []


@pytest.mark.parametrize(
    "break_it",
    [
        lambda d: d.update(asyncapi="2.6.0"),
        lambda d: d["channels"]["gdx.dopa.person.v1"]["bindings"]["kafka"].update(partitions=0),
        lambda d: d["components"]["messages"]["th.go.gdx.dopa.PersonEvent"]["payload"]["schema"].update(type="table"),
        lambda d: d["operations"]["publish.gdx.dopa.person.v1"].update(action="shout"),
    ],
    ids=["version", "partitions", "avro-type", "operation-action"],
)
def test_the_official_schema_check_can_fail(
    validator: jsonschema.Draft7Validator, document: dict[str, Any], break_it: Any
) -> None:
    broken = copy.deepcopy(document)
    break_it(broken)
    assert not validator.is_valid(broken)


def test_every_catalog_change_topic_is_a_channel_with_its_message(document: dict[str, Any]) -> None:
    topics = {d.topic for d in load_catalog().datasets}
    assert set(document["channels"]) == topics
    for name, channel in document["channels"].items():
        assert channel["address"] == name and channel["messages"], name
        assert channel["bindings"]["kafka"]["topic"] == name


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    refs: list[str] = []

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            refs.extend(v for k, v in node.items() if k == "$ref")
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(document)
    assert len(refs) >= 3 * len(document["channels"])
    for ref in refs:
        assert isinstance(resolve(document, ref), dict), ref


def test_message_payloads_are_the_current_avro_schemas_with_valid_examples(document: dict[str, Any]) -> None:
    for name, known in catalog().current.items():
        message = document["components"]["messages"][name]
        schema = message["payload"]["schema"]
        parse_schema(schema, named_schemas={})
        assert fingerprint(schema) == known.fingerprint
        assert message["x-gdx-fingerprint"] == known.fingerprint.hex()
        assert message["bindings"]["kafka"]["schemaIdPayloadEncoding"] == "confluent"
        example = message["examples"][0]["payload"]
        assert example["entity_key"] and example["payload"] is not None
        assert json.loads(json.dumps(example)) == example  # plain JSON, for any language


def test_a_dataset_without_a_schema_stops_the_generator() -> None:
    real = load_catalog()
    extra = Catalog(real.topics, real.datasets + (Dataset("dlt", "boat", (99,), "gdx.dlt.boat.v1"),), real.agencies)
    with pytest.raises(GdxError, match="dlt/boat"):
        build_document(extra, catalog(), Settings())


def test_cli_writes_the_document(tmp_path: Path, validator: jsonschema.Draft7Validator) -> None:
    out = tmp_path / "asyncapi.json"
    assert main(["schemas", "asyncapi", "--out", str(out)]) == 0
    written = json.loads(out.read_text(encoding="utf-8"))
    assert validator.is_valid(written)
    assert set(written["components"]["messages"]) >= set(catalog().current)
