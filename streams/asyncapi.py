"""The AsyncAPI 3.0 document of the backbone, generated from the topic catalog and the schemas.

Consumer teams bind to this document in any language: every change-event channel with its Kafka
topic settings, the Avro schema of its message (schemaFormat application/vnd.apache.avro), the
record key, the wire framing (Confluent's, with the registry subject the message's schema is
registered under) and a valid example; the server names the schema registry. Generated, never
hand-edited, so it cannot drift from what runs.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from agencies.schema_ids import value_subject
from foundation.errors import GdxError
from schemas.catalog import SchemaCatalog
from schemas.examples import example_events
from streams.settings import Settings
from streams.topic_catalog import Catalog, TopicSpec

ASYNCAPI_VERSION = "3.0.0"
AVRO_FORMAT = "application/vnd.apache.avro;version=1.9.0"
AVRO_CONTENT_TYPE = "application/vnd.apache.avro+binary"
KAFKA_BINDING = "0.5.0"
WIRE_FORMAT = (
    "Confluent wire format: byte 00, then the writer schema's 4-byte id in the schema registry (big-endian), "
    "then the Avro binary body. Resolve the id at the registry (GET /schemas/ids/{id}); every version is "
    "registered under the subject `<topic>-value`, whose compatibility level the registry enforces."
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


def _event_message(schemas: SchemaCatalog, name: str, subject: str, example: dict[str, Any] | None) -> dict[str, Any]:
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
                "schemaIdPayloadEncoding": "confluent",
                "schemaLookupStrategy": "TopicIdStrategy",
                "bindingVersion": KAFKA_BINDING,
            }
        },
        "description": WIRE_FORMAT
        + " A DELETE event (payload null) is followed by a tombstone (same key, null value) on compacted topics.",
        "x-gdx-registry-subject": subject,
        "x-gdx-fingerprint": known.fingerprint.hex(),
        "x-gdx-schema-version": known.version,
    }
    if example is not None:
        message["examples"] = [{"name": "typical-update", "summary": "A typical UPDATE", "payload": example}]
    return message


def build_document(catalog: Catalog, schemas: SchemaCatalog, settings: Settings) -> dict[str, Any]:
    """The whole document; fails if a catalog dataset has no schema."""
    registry_url = settings.schema_registry_url or settings.local_registry_url
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
        messages[name] = _event_message(schemas, name, value_subject(settings.topic(ds.topic)), examples.get(name))
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
                "bindings": {
                    "kafka": {
                        "schemaRegistryUrl": registry_url,
                        "schemaRegistryVendor": "confluent",
                        "bindingVersion": KAFKA_BINDING,
                    }
                },
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }
