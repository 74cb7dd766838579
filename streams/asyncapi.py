"""The AsyncAPI 3.0 document of the backbone, generated from the topic catalog and the schemas.

Consumer teams bind to this document in any language: every change-event channel with its Kafka
topic settings, the Avro schema of its message (schemaFormat application/vnd.apache.avro), the
record key, the wire framing and a valid example, plus the `gdx.schemas` channel that serves the
schemas by fingerprint. Generated, never hand-edited, so it cannot drift from what runs.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from foundation.errors import GdxError
from schemas.catalog import SchemaCatalog
from schemas.examples import example_events
from schemas.schema_records import NAME_HEADER, SCHEMA_TOPIC, VERSION_HEADER
from streams.settings import Settings
from streams.topic_catalog import Catalog, TopicSpec

ASYNCAPI_VERSION = "3.0.0"
AVRO_FORMAT = "application/vnd.apache.avro;version=1.9.0"
AVRO_CONTENT_TYPE = "application/vnd.apache.avro+binary"
KAFKA_BINDING = "0.5.0"
SCHEMA_MESSAGE = "SchemaDocument"
WIRE_FORMAT = (
    "Avro single-object encoding: bytes C3 01, then the writer schema's 8-byte CRC-64-AVRO fingerprint "
    "(little-endian), then the Avro binary body. Resolve the fingerprint in the `gdx.schemas` channel "
    "(key = the 8 fingerprint bytes as 16 lowercase hex digits) or in the message's schema below."
)


def _package_version() -> str:
    try:
        return version("gdx-backbone")
    except PackageNotFoundError:
        return "0.0.0"


def _topic_binding(spec: TopicSpec) -> dict[str, Any]:
    configs: dict[str, Any] = {"cleanup.policy": spec.cleanup_policy.split(",")}
    for key in ("retention.ms", "delete.retention.ms"):
        if key in spec.configs:
            configs[key] = int(spec.configs[key])
    return {
        "kafka": {
            "topic": spec.name,
            "partitions": spec.partitions,
            "replicas": spec.replication_factor,
            "topicConfiguration": configs,
            "bindingVersion": KAFKA_BINDING,
        }
    }


def _event_message(schemas: SchemaCatalog, name: str, example: dict[str, Any] | None) -> dict[str, Any]:
    known = schemas.current[name]
    message: dict[str, Any] = {
        "name": name.rsplit(".", 1)[-1],
        "title": name,
        "summary": known.schema["doc"],
        "contentType": AVRO_CONTENT_TYPE,
        "payload": {"schemaFormat": AVRO_FORMAT, "schema": known.schema},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "entity_key of the event, UTF-8; null value = tombstone"},
                "schemaIdLocation": "payload",
                "schemaIdPayloadEncoding": "avro-single-object (C3 01 + 8-byte CRC-64-AVRO fingerprint)",
                "bindingVersion": KAFKA_BINDING,
            }
        },
        "description": WIRE_FORMAT
        + " A DELETE event (payload null) is followed by a tombstone (same key, null value) on compacted topics.",
        "x-gdx-fingerprint": known.fingerprint.hex(),
        "x-gdx-schema-version": known.version,
    }
    if example is not None:
        message["examples"] = [{"name": "typical-update", "summary": "A typical UPDATE", "payload": example}]
    return message


def _schema_message() -> dict[str, Any]:
    return {
        "name": SCHEMA_MESSAGE,
        "title": "An Avro schema, keyed by its fingerprint",
        "contentType": "application/json",
        "summary": "The full JSON of one released or current event schema.",
        "description": (
            "Key: the CRC-64-AVRO fingerprint of the schema's Parsing Canonical Form, as the 8 little-endian "
            "bytes in 16 lowercase hex digits (the same bytes as in every event header). Value: the full schema "
            "JSON (with logical types, defaults and docs), UTF-8. Compacted: one record per fingerprint."
        ),
        "headers": {
            "type": "object",
            "properties": {
                NAME_HEADER: {"type": "string", "description": "full name of the event record"},
                VERSION_HEADER: {"type": "string", "description": "version number of the schema, decimal"},
            },
        },
        "payload": {"type": "object", "description": "an Avro schema (record)", "required": ["type", "name", "fields"]},
        "bindings": {
            "kafka": {"key": {"type": "string", "pattern": "^[0-9a-f]{16}$"}, "bindingVersion": KAFKA_BINDING}
        },
    }


def build_document(catalog: Catalog, schemas: SchemaCatalog, settings: Settings) -> dict[str, Any]:
    """The whole document; fails if a catalog dataset has no schema."""
    examples = {name: event.model_dump(mode="json") for name, event in example_events().items()}
    specs = catalog.by_name()
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for ds in catalog.datasets:
        name = schemas.datasets.get((ds.agency, ds.name))
        if name is None:
            raise GdxError(
                f"dataset {ds.agency}/{ds.name} ({ds.topic}) has no event schema",
                f"add schemas/avro/{ds.agency}/{ds.name.replace('-', '_')}.avsc",
            )
        messages[name] = _event_message(schemas, name, examples.get(name))
        channels[ds.topic] = {
            "address": ds.topic,
            "title": f"{catalog.agencies[ds.agency]}: {ds.name}",
            "description": f"{specs[ds.topic].description}. Record key: entity_key (UTF-8).",
            "messages": {messages[name]["name"]: {"$ref": f"#/components/messages/{name}"}},
            "bindings": _topic_binding(specs[ds.topic]),
        }
        operations[f"publish.{ds.topic}"] = {
            "action": "send",
            "title": f"{ds.agency.upper()} publishes {ds.name} changes",
            "channel": {"$ref": f"#/channels/{ds.topic}"},
            "messages": [{"$ref": f"#/channels/{ds.topic}/messages/{messages[name]['name']}"}],
        }
    messages[SCHEMA_MESSAGE] = _schema_message()
    channels[SCHEMA_TOPIC] = {
        "address": SCHEMA_TOPIC,
        "title": "Schema catalog",
        "description": specs[SCHEMA_TOPIC].description,
        "messages": {SCHEMA_MESSAGE: {"$ref": f"#/components/messages/{SCHEMA_MESSAGE}"}},
        "bindings": _topic_binding(specs[SCHEMA_TOPIC]),
    }
    operations[f"publish.{SCHEMA_TOPIC}"] = {
        "action": "send",
        "title": "`gdx schemas publish` writes every known schema",
        "channel": {"$ref": f"#/channels/{SCHEMA_TOPIC}"},
        "messages": [{"$ref": f"#/channels/{SCHEMA_TOPIC}/messages/{SCHEMA_MESSAGE}"}],
    }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "GDX Backbone master-data change events",
            "version": _package_version(),
            "description": (
                "Change events of the master datasets of Thailand's Digital Government Development Plan "
                "(Appendix 2), as published by the owning agencies. " + WIRE_FORMAT
            ),
            "license": {"name": "Apache-2.0"},
        },
        "defaultContentType": AVRO_CONTENT_TYPE,
        "servers": {
            "backbone": {
                "host": settings.bootstrap_servers,
                "protocol": "kafka",
                "description": "the cluster these settings point at",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }
