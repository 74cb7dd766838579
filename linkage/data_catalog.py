"""The data catalog: every dataset the exchange carries — owner, plan numbers, topic, schema and
versions, each field with its type and meaning, who may see it for what purpose on what basis, who
is notified of its changes, and how fresh it is — built from the sources that run the exchange.

Why generated and never written by hand: the plan names master data without upkeep as the root
problem. A catalog kept beside the code goes stale the day a field or a purpose is added; this one
is the topic catalog, the schemas, the consumer registry, the subscriptions and the index, read
together, so it cannot say anything the exchange does not do.

The static part (`describe`) is built once per process; the index's part is read again at most
once per `CACHE_S` (`CatalogPage`), as for the status page.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

from sqlalchemy import Engine

from linkage.consumers import ConsumerRegistry
from linkage.index_summary import IndexSummary, dataset_of, summarise_or_problem
from linkage.policy import PARTIES_FIELD
from linkage.rebuilt import Rebuilt
from linkage.status_page import CACHE_S, WINDOW_S
from linkage.subscriptions import Subscription
from schemas.catalog import KnownSchema, SchemaCatalog

CONSENT = "consent"
"""The basis of a purpose without a mandate: each request needs the person's consent."""
INDEX_FIELDS = {
    PARTIES_FIELD: "The IDs and relations of the other parties named on the record, as the linkage index "
    "resolved them (not a payload field).",
    "entity_key": "The record's own key at its agency (e.g. a vehicle's chassis number): an identifier of its own.",
    "relation": "How the person or business looked up is named on the record (owner, director, deceased, …).",
    "share": "The part of the record the person or business holds (e.g. a co-owner's share of a title deed).",
}
"""What a purpose may list beside the payload's fields: what the index adds to a record."""
Role = Literal["watched", "linked"]
NOT_IN_SCHEMA = "Listed by the consumer registry, but not a field of the current schema: nobody receives it."


class TopicDataset(Protocol):
    """A dataset as the topic catalog declares it (`streams.topic_catalog.Dataset`)."""

    @property
    def agency(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def codes(self) -> tuple[int, ...]: ...
    @property
    def topic(self) -> str: ...


@dataclass(frozen=True)
class Viewer:
    """One purpose of one consumer that may see a field."""

    consumer: str
    purpose: str
    basis: str
    """The purpose's legal mandate, or "consent"."""


@dataclass(frozen=True)
class CatalogField:
    """A field of the dataset's payload, or a name a purpose may list beside them."""

    name: str
    kind: Literal["payload", "index", "not-in-schema"]
    type: str | None
    """The Avro type, readably: "string", "long (timestamp-millis)", "null | string", "record <name>"."""
    doc: str
    """The field's `doc` in the schema: what it means."""
    since_version: int | None
    """The first schema version that has the field."""
    visible_to: tuple[Viewer, ...]
    """Every purpose whose registry entry lists the field, with its basis."""


@dataclass(frozen=True)
class SchemaVersion:
    version: int
    released: bool
    fingerprint: str
    """CRC-64-AVRO, hex: how a version is recognised whatever id a registry gave it."""


@dataclass(frozen=True)
class CatalogSchema:
    subject: str
    """The event record's full name."""
    doc: str
    current_version: int
    current_released: bool
    """False when the sources hold changes not yet released."""
    versions: tuple[SchemaVersion, ...]


@dataclass(frozen=True)
class Access:
    """What one purpose of one consumer may do with the dataset, and on what basis."""

    consumer: str
    consumer_name: str
    purpose: str
    description: str
    operations: tuple[str, ...]
    basis: str
    """The purpose's legal mandate, or "consent"."""
    fields: tuple[str, ...]
    """The fields the purpose may see; none for a verify-only purpose."""


@dataclass(frozen=True)
class Notified:
    """A notify subscription that names the dataset."""

    consumer: str
    description: str
    role: Role
    """watched: its changes are notified; linked: the changed party must be linked to one of its records."""
    datasets: tuple[str, ...]
    change_types: tuple[str, ...]
    party_relation: str
    linked_to: tuple[str, ...]


@dataclass(frozen=True)
class CatalogDataset:
    dataset: str
    """`<agency>.<dataset>`, as the index, the registry and the metrics name it."""
    agency: str
    agency_name: str
    codes: tuple[int, ...]
    """Numbers of the master dataset in Appendix 2 of the Digital Government Development Plan."""
    topic: str
    schema: CatalogSchema | None
    """None when no schema source exists for the dataset."""
    fields: tuple[CatalogField, ...]
    access: tuple[Access, ...]
    subscriptions: tuple[Notified, ...]
    index: IndexSummary | None = None
    """Records held and freshness; None when the index cannot be read."""


@dataclass(frozen=True)
class DataCatalog:
    """Every dataset the exchange carries, as of `generated_ms`."""

    __pydantic_config__ = {"use_attribute_docstrings": True}
    """The API's OpenAPI document describes each field by its docstring here (for every class within)."""

    generated_ms: int
    freshness_window_s: int
    """The freshness percentiles are over records applied within this many seconds."""
    index_problem: str | None
    """Why the index could not be read; None when it was."""
    datasets: tuple[CatalogDataset, ...]


def _named_types(schema: Any, namespace: str, found: dict[str, str]) -> None:
    """Full name → kind (record, enum, fixed) of every named type defined in the schema."""
    if isinstance(schema, list):
        for branch in schema:
            _named_types(branch, namespace, found)
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if kind in ("record", "enum", "fixed"):
            full = _full_name(schema, namespace)
            found[full] = kind
            namespace = full.rpartition(".")[0]
            for field in schema.get("fields", []):
                _named_types(field["type"], namespace, found)
        elif kind == "array":
            _named_types(schema["items"], namespace, found)
        elif kind == "map":
            _named_types(schema["values"], namespace, found)
        else:
            _named_types(kind, namespace, found)


def _full_name(schema: dict[str, Any], namespace: str) -> str:
    name = str(schema["name"])
    if "." in name:
        return name
    space = schema.get("namespace", namespace)
    return f"{space}.{name}" if space else name


def render_type(schema: Any, namespace: str, named: Mapping[str, str]) -> str:
    """An Avro type as a person reads it: unions as "a | b", named types as "<kind> <full name>",
    logical types after their base type in brackets."""
    if isinstance(schema, list):
        return " | ".join(render_type(branch, namespace, named) for branch in schema)
    if isinstance(schema, str):
        for full in (schema, f"{namespace}.{schema}"):
            if full in named:
                return f"{named[full]} {full}"
        return schema
    kind = schema["type"]
    if kind in ("record", "enum", "fixed"):
        return f"{kind} {_full_name(schema, namespace)}"
    if kind in ("array", "map"):
        inner = schema["items" if kind == "array" else "values"]
        text = render_type(inner, namespace, named)
        return f"{kind} of {f'({text})' if isinstance(inner, list) else text}"
    base = render_type(kind, namespace, named)
    logical = schema.get("logicalType")
    if logical == "decimal":
        return f"{base} (decimal {schema.get('precision')},{schema.get('scale', 0)})"
    return f"{base} ({logical})" if logical else base


def _payload(known: KnownSchema) -> dict[str, Any]:
    """The payload record of a composed event (its `payload` is `["null", <record>]`)."""
    payload = next(field for field in known.schema["fields"] if field["name"] == "payload")
    return next(branch for branch in payload["type"] if isinstance(branch, dict))


def _schema(schemas: SchemaCatalog, subject: str) -> CatalogSchema:
    current = schemas.current[subject]
    return CatalogSchema(
        subject=subject,
        doc=str(current.schema.get("doc", "")),
        current_version=current.version,
        current_released=current.released,
        versions=tuple(SchemaVersion(k.version, k.released, k.fingerprint.hex()) for k in schemas.versions(subject)),
    )


def _fields(schemas: SchemaCatalog, subject: str | None, access: tuple[Access, ...]) -> tuple[CatalogField, ...]:
    def viewers(name: str) -> tuple[Viewer, ...]:
        return tuple(Viewer(a.consumer, a.purpose, a.basis) for a in access if name in a.fields)

    fields: list[CatalogField] = []
    if subject is not None:
        current = schemas.current[subject]
        named: dict[str, str] = {}
        _named_types(current.schema, "", named)
        payload = _payload(current)
        namespace = _full_name(payload, subject.rpartition(".")[0]).rpartition(".")[0]
        since: dict[str, int] = {}
        for known in schemas.versions(subject):
            for field in _payload(known)["fields"]:
                since.setdefault(field["name"], known.version)
        fields = [
            CatalogField(
                f["name"],
                "payload",
                render_type(f["type"], namespace, named),
                str(f.get("doc", "")),
                since.get(f["name"]),
                viewers(f["name"]),
            )
            for f in payload["fields"]
        ]
    fields += [CatalogField(name, "index", None, doc, None, viewers(name)) for name, doc in INDEX_FIELDS.items()]
    known_names = {f.name for f in fields}
    listed = sorted({name for a in access for name in a.fields} - known_names)
    fields += [CatalogField(name, "not-in-schema", None, NOT_IN_SCHEMA, None, viewers(name)) for name in listed]
    return tuple(fields)


def _access(registry: ConsumerRegistry, dataset: str) -> tuple[Access, ...]:
    return tuple(
        Access(
            consumer.id,
            consumer.name,
            purpose.name,
            purpose.description,
            tuple(sorted(purpose.operations)),
            purpose.mandate or CONSENT,
            purpose.datasets[dataset],
        )
        for consumer in registry.consumers.values()
        for purpose in consumer.purposes.values()
        if dataset in purpose.datasets
    )


def _notified(subscriptions: Iterable[Subscription], dataset: str) -> tuple[Notified, ...]:
    found = []
    for s in subscriptions:
        roles: tuple[tuple[Role, frozenset[str]], ...] = (("watched", s.datasets), ("linked", s.linked_to))
        found += [
            Notified(
                s.consumer,
                s.description,
                role,
                tuple(sorted(s.datasets)),
                tuple(sorted(s.change_types)),
                s.party_relation,
                tuple(sorted(s.linked_to)),
            )
            for role, names in roles
            if dataset in names
        ]
    return tuple(found)


def describe(
    datasets: Iterable[TopicDataset],
    agencies: Mapping[str, str],
    schemas: SchemaCatalog,
    registry: ConsumerRegistry,
    subscriptions: Iterable[Subscription],
) -> tuple[CatalogDataset, ...]:
    """Every dataset of the topic catalog, in its order, with what the other sources say of it."""
    subscriptions = tuple(subscriptions)
    entries = []
    for ds in datasets:
        key = f"{ds.agency}.{ds.name}"
        subject = schemas.datasets.get((ds.agency, ds.name))
        access = _access(registry, key)
        entries.append(
            CatalogDataset(
                dataset=key,
                agency=ds.agency,
                agency_name=agencies[ds.agency],
                codes=tuple(ds.codes),
                topic=ds.topic,
                schema=None if subject is None else _schema(schemas, subject),
                fields=_fields(schemas, subject, access),
                access=access,
                subscriptions=_notified(subscriptions, key),
            )
        )
    return tuple(entries)


class CatalogPage:
    """The catalog with the index's records and freshness per dataset, read at most once per `cache_s`."""

    def __init__(
        self,
        engine: Engine,
        datasets: tuple[CatalogDataset, ...],
        cache_s: float = CACHE_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.datasets = datasets
        self._catalog = Rebuilt(self._build, cache_s, clock)

    def catalog(self) -> DataCatalog:
        return self._catalog.get()

    def _build(self, now_ms: int) -> DataCatalog:
        index, problem = summarise_or_problem(
            self.engine, now_ms, WINDOW_S * 1000, with_freshness=True, group=dataset_of
        )
        return DataCatalog(
            generated_ms=now_ms,
            freshness_window_s=WINDOW_S,
            index_problem=problem,
            datasets=tuple(
                replace(ds, index=None if index is None else index.get(ds.dataset, IndexSummary()))
                for ds in self.datasets
            ),
        )
