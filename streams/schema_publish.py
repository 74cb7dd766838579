"""The whole schema catalog put on `gdx.schemas`, as `gdx schemas publish`, `gdx topics apply` and
`gdx up` do, so a consumer that joins a fresh stack finds every version before any event."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiokafka.errors import KafkaError

from foundation.errors import GdxError
from schemas.catalog import RELEASED_DIR, SchemaCatalog, load_schema_catalog
from schemas.compose import SOURCE_DIR
from schemas.errors import CodecError
from schemas.schema_records import SCHEMA_TOPIC, SchemaTopicError
from streams.kafka_probe import quiet_client_logs
from streams.schema_topic import publish_schemas
from streams.settings import Settings


def repository_catalog(sources: Path | None = None, released: Path | None = None) -> SchemaCatalog:
    """This repository's schemas, or one line naming the file to fix when one is malformed."""
    try:
        return load_schema_catalog(sources or SOURCE_DIR, released or RELEASED_DIR)
    except (ValueError, KeyError, CodecError) as exc:  # fastavro and json report malformed schemas as these
        raise GdxError(
            f"cannot load the schemas: {type(exc).__name__}: {exc}", "fix the .avsc file named above"
        ) from None


def publish_catalog(settings: Settings, catalog: SchemaCatalog) -> int:
    """Write every version of every schema (idempotent: compaction keeps one record each); returns the count."""
    topic = settings.topic(SCHEMA_TOPIC)
    try:
        # Right after `topics apply` a new partition's leader may still move: the producer retries
        # (and would log a warning per retry); what fails for good is raised below, in one line.
        with quiet_client_logs():
            return asyncio.run(publish_schemas(settings.kafka, topic, catalog, settings.kafka_request_timeout_s))
    except (KafkaError, SchemaTopicError) as exc:
        raise GdxError(
            f"publishing schemas to {topic} at {settings.bootstrap_servers} failed: {exc!r}",
            "start the broker (`gdx kafka up`) and create the topic (`gdx topics apply`)",
        ) from None
