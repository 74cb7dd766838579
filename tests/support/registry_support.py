"""Events framed with a real schema registry's ids, as an agency's publisher frames them, for tests
that put events on a real broker without running a publisher, and a codec that reads them back.

Without settings, the session's registry (the environment's GDX_SCHEMA_REGISTRY_*) as operator."""

from __future__ import annotations

import asyncio
from functools import cache

from agencies.schema_ids import SchemaIds
from foundation.schema_registry import RegistryAccess, SchemaRegistry
from schemas.catalog import load_schema_catalog
from schemas.codec import Codec
from streams.security.principals import OPERATOR
from streams.settings import Settings


def access(settings: Settings | None = None) -> RegistryAccess:
    return (settings or Settings()).registry_for(OPERATOR)


def framed(topic: str, stored: bytes, settings: Settings | None = None) -> bytes:
    """`stored` in the wire format under the registry's id for it on `topic` (registered if new)."""
    ids = SchemaIds(load_schema_catalog(), SchemaRegistry(access(settings)), register=True)
    asyncio.run(ids.settle([(topic, stored)]))
    return ids.framed(topic, stored)


def registry_codec(settings: Settings | None = None) -> Codec:
    """A codec that resolves the wire format's ids at the registry (one codec per registry)."""
    return _codec(access(settings))


@cache
def _codec(reach: RegistryAccess) -> Codec:
    return Codec(load_schema_catalog(), SchemaRegistry(reach).schema_by_id)
