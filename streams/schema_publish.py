"""Every released schema registered in the schema registry, as `gdx schemas publish`, `gdx topics
apply` and `gdx up` do, under the subject of its topic (`<topic>-value`) and with the subject's
compatibility level set from `schemas/compatibility.toml`, so the registry itself refuses a
version that would break a consumer, and a consumer that joins a fresh stack finds every version
before any event."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agencies.schema_ids import value_subject
from foundation.errors import GdxError
from foundation.schema_registry import SchemaRegistry
from schemas.catalog import RELEASED_DIR, SchemaCatalog, load_schema_catalog
from schemas.compatibility import POLICY_FILE, Policy, PolicyError, load_policy
from schemas.compose import SOURCE_DIR
from schemas.errors import CodecError
from schemas.fingerprint import schema_json
from streams.registry_schemas import require_registry
from streams.security.principals import OPERATOR
from streams.settings import Settings
from streams.topic_catalog import load_catalog


def repository_catalog(sources: Path | None = None, released: Path | None = None) -> SchemaCatalog:
    """This repository's schemas, or one line naming the file to fix when one is malformed."""
    try:
        return load_schema_catalog(sources or SOURCE_DIR, released or RELEASED_DIR)
    except (ValueError, KeyError, CodecError) as exc:  # fastavro and json report malformed schemas as these
        raise GdxError(
            f"cannot load the schemas: {type(exc).__name__}: {exc}", "fix the .avsc file named above"
        ) from None


def repository_policy(path: Path | None = None) -> Policy:
    try:
        return load_policy(path or POLICY_FILE)
    except PolicyError as exc:
        raise GdxError(str(exc), "fix compatibility.toml") from None


@dataclass(frozen=True)
class Subject:
    """One change topic's subject and the schema whose versions it holds."""

    subject: str
    schema: str


def subjects(settings: Settings, catalog: SchemaCatalog) -> list[Subject]:
    """The subject of every change topic of the topic catalog, with its event schema's name."""
    return [
        Subject(value_subject(settings.topic(d.topic)), catalog.datasets[(d.agency, d.name)])
        for d in load_catalog().datasets
        if (d.agency, d.name) in catalog.datasets
    ]


def publish_catalog(settings: Settings, catalog: SchemaCatalog, registry: SchemaRegistry, policy: Policy) -> int:
    """Register every released version, oldest first, and set each subject's compatibility level;
    idempotent (a registered schema keeps its id). Returns how many versions the subjects hold.

    The first version is registered before the level is set, since a registry may refuse the level
    of a subject it does not hold yet; a first version meets no compatibility rule anyway."""
    held = 0
    for entry in subjects(settings, catalog):
        level = policy.mode(entry.schema).value
        for number, known in enumerate(catalog.released(entry.schema)):
            registry.register(entry.subject, schema_json(known.schema))
            if number == 0 and registry.compatibility(entry.subject) != level:
                registry.set_compatibility(entry.subject, level)
            held += 1
    return held


def publish_repository(settings: Settings) -> tuple[int, str]:
    """The repository's released schemas into the configured registry, as the operator; (versions
    the subjects hold, the registry's URL). A registry that does not answer is one line."""
    access = settings.registry_for(OPERATOR)
    held = publish_catalog(settings, repository_catalog(), require_registry(access), repository_policy())
    return held, access.url
