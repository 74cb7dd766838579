"""The one place where a change in an agency's store becomes a change event on the wire.

Events are encoded once, when the change is committed, with the codec of the schemas package, and
the bytes are kept in the outbox; the publisher only stamps `published_time` into them. The stamp
is a fixed-width patch: a timestamp-millis between 1970-07 and 2039 is always a 6-byte zig-zag
varint, so the publisher overwrites 6 bytes at a known offset instead of re-encoding, and a
re-send after a crash carries exactly the same bytes as the first send.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from io import BytesIO
from typing import Any

from fastavro import schemaless_writer

from schemas.catalog import KnownSchema, SchemaCatalog
from schemas.codec import Codec

SNAPSHOT, CREATE, UPDATE = "SNAPSHOT", "CREATE", "UPDATE"
_STAMP_WIDTH = 6
NO_STAMP = -1  # stamp_at of a record that is not a well-formed event (an injected malformed value)
_STAMP_MIN_MS = 1 << 34  # zig-zag value 2^35: the smallest 6-byte varint
_STAMP_MAX_MS = (1 << 41) - 1  # zig-zag value < 2^42: the largest 6-byte varint


@dataclass(frozen=True)
class Change:
    """A committed change of one entity: what the store now holds for it."""

    dataset: str
    key: str
    version: int
    change_type: str
    state: dict[str, Any] | None
    mentions: tuple[list[str], list[str]] = field(compare=False, repr=False)  # references(state), computed once


@dataclass
class OutboxEvent:
    """An encoded event waiting in the outbox; `copies` > 1 only for an injected duplicate send."""

    event_id: str
    topic: str
    key: str
    value: bytes
    stamp_at: int
    copies: int = 1
    change: Change | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Route:
    """Where a dataset's events go: its catalog topic and its Appendix-2 dataset code."""

    topic: str
    code: int


def zigzag_varint(value: int) -> bytes:
    encoded = (value << 1) ^ (value >> 63)
    out = bytearray()
    while encoded > 0x7F:
        out.append((encoded & 0x7F) | 0x80)
        encoded >>= 7
    out.append(encoded)
    return bytes(out)


def stamp_bytes(published_ms: int) -> bytes:
    """The 6 bytes of a `published_time`, computed once per batch rather than once per event."""
    if not _STAMP_MIN_MS <= published_ms <= _STAMP_MAX_MS:
        raise ValueError(f"published time {published_ms} ms is outside the fixed-width range")
    return zigzag_varint(published_ms)


def stamp(value: bytes, stamp_at: int, published: bytes) -> bytes:
    """The event with `published_time` set to `published` (from stamp_bytes); same inputs, same bytes."""
    if stamp_at == NO_STAMP:
        return value
    return value[:stamp_at] + published + value[stamp_at + _STAMP_WIDTH :]


def _varint_length(value: int) -> int:
    return len(zigzag_varint(value))


def to_json(state: dict[str, Any] | None) -> str:
    """The store's form of a payload: plain JSON, dates as ISO strings, money as decimal strings."""
    return json.dumps(state, default=_plain, ensure_ascii=False, separators=(",", ":"))


def _plain(value: Any) -> str:
    if isinstance(value, (date, Decimal)):
        return str(value) if isinstance(value, Decimal) else value.isoformat()
    raise TypeError(f"{type(value).__name__} is not storable")


def references(state: dict[str, Any] | None) -> tuple[list[str], list[str]]:
    """Every citizen ID and juristic-person ID a payload mentions, in first-seen order."""
    citizens: dict[str, None] = {}
    companies: dict[str, None] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            kind = node.get("kind")
            if kind == "CITIZEN" and "id" in node:
                citizens[node["id"]] = None
            elif kind == "JURISTIC_PERSON" and "id" in node:
                companies[node["id"]] = None
            for name, value in node.items():
                if isinstance(value, str):
                    if name.endswith("citizen_id"):
                        citizens[value] = None
                    elif name == "juristic_id":
                        companies[value] = None
                elif isinstance(value, (dict, list)):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(state)
    return list(citizens), list(companies)


def replace_value(node: Any, old: str, new: str) -> Any:
    """A copy of a payload with every occurrence of the string `old` replaced by `new`."""
    if isinstance(node, dict):
        return {k: replace_value(v, old, new) for k, v in node.items()}
    if isinstance(node, list):
        return [replace_value(v, old, new) for v in node]
    return new if node == old else node


Converter = Callable[[Any], Any]


def _compile(schema: Any, names: dict[str, Any], namespace: str) -> Converter | None:
    """A function turning stored JSON into the Python values fastavro writes; None if identity."""
    if isinstance(schema, str):
        target = names.get(schema) or names.get(f"{namespace}.{schema}")
        return target() if target else None
    if isinstance(schema, list):
        branches = [c for c in (_compile(s, names, namespace) for s in schema if s != "null") if c]
        if not branches:
            return None
        inner = branches[0]
        return lambda v: None if v is None else inner(v)
    logical = schema.get("logicalType")
    if logical == "date":
        return lambda v: date.fromisoformat(v) if isinstance(v, str) else v
    if logical == "decimal":
        return lambda v: Decimal(v) if isinstance(v, str) else v
    kind = schema.get("type")
    if kind == "array":
        item = _compile(schema["items"], names, namespace)
        return (lambda v: [item(x) for x in v]) if item else None
    if kind == "record":
        name = schema["name"]
        full = name if "." in name else f"{namespace}.{name}"
        space = full.rsplit(".", 1)[0]
        holder: list[Converter | None] = [None]
        names[full] = lambda: holder[0]
        fields = [(f["name"], _compile(f["type"], names, space)) for f in schema["fields"]]
        active = [(n, c) for n, c in fields if c]
        if active:
            holder[0] = lambda v: {**v, **{n: c(v[n]) for n, c in active if n in v}}
        return holder[0]
    if isinstance(kind, (dict, list)):
        return _compile(kind, names, namespace)
    return None


def payload_converter(known: KnownSchema) -> Converter:
    """Converter for the `payload` field of one event schema."""
    names: dict[str, Any] = {}
    space = known.schema["name"].rsplit(".", 1)[0]
    for item in known.schema["fields"]:
        if item["name"] != "payload":
            _compile(item["type"], names, space)
    payload = next(f for f in known.schema["fields"] if f["name"] == "payload")
    return _compile(payload["type"], names, space) or (lambda v: v)


class EventBuilder:
    """Builds and encodes one agency's change events with the schemas issue's codec."""

    def __init__(self, agency: str, routes: dict[str, Route], catalog: SchemaCatalog, rng: random.Random) -> None:
        self.agency = agency
        self.routes = routes
        self.catalog = catalog
        self.codec = Codec(catalog)
        self.rng = rng
        self._schemas = {d: catalog.for_dataset(agency, d) for d in routes}
        self._from_json = {d: payload_converter(known) for d, known in self._schemas.items()}

    def datum(self, dataset: str, stored: dict[str, Any]) -> dict[str, Any]:
        """A payload read back from the store, in the shape the codec writes."""
        datum: dict[str, Any] = self._from_json[dataset](stored)
        return datum

    def older_schema(self, dataset: str, state: dict[str, Any] | None) -> KnownSchema | None:
        """The oldest released schema older than the current one that can carry `state` whole.

        A producer not yet upgraded knows nothing of fields added since; it never holds a value
        in one. So an older writer is only chosen where every field with a value exists in it —
        otherwise the fault would be data loss at the source, not an older schema on the wire.
        """
        known = self._schemas[dataset]
        for older in self.catalog.versions(known.name):
            if older.version < known.version and _carries(older.schema, state):
                return older
        return None

    def new_ids(self) -> tuple[str, str]:
        """An event id (UUID v4 form) and a W3C trace id, drawn from the seeded generator."""
        event_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        return event_id, f"{self.rng.getrandbits(128) | 1:032x}"

    def build(self, change: Change, source_ms: int, writer: KnownSchema | None = None) -> OutboxEvent:
        """Encode `change`; `published_time` is left equal to `source_time` until stamped."""
        if not _STAMP_MIN_MS <= source_ms <= _STAMP_MAX_MS:
            raise ValueError(f"source time {source_ms} ms is outside the fixed-width range")
        route = self.routes[change.dataset]
        event_id, trace_id = self.new_ids()
        citizens, companies = change.mentions
        record = {
            "event_id": event_id,
            "dataset_code": route.code,
            "source_agency": self.agency.upper(),
            "entity_key": change.key,
            "entity_version": change.version,
            "change_type": change.change_type,
            "source_time": source_ms,
            "published_time": source_ms,
            "trace_id": trace_id,
            "references": {"citizen_ids": citizens, "juristic_ids": companies},
            "payload": change.state,
        }
        known = writer or self._schemas[change.dataset]
        value = self.codec.encode(known.name, record) if writer is None else _encode_with(known, record)
        stamp_at = (
            len(known.header)
            + 1
            + 36  # event_id: a 36-character string
            + _varint_length(route.code)
            + 1  # source_agency enum
            + _varint_length(len(change.key.encode()))
            + len(change.key.encode())
            + _varint_length(change.version)
            + 1  # change_type enum
            + _STAMP_WIDTH  # source_time
        )
        if value[stamp_at - _STAMP_WIDTH : stamp_at] != value[stamp_at : stamp_at + _STAMP_WIDTH]:
            raise RuntimeError("the envelope layout changed: published_time is not where the stamp expects it")
        return OutboxEvent(event_id, route.topic, change.key, value, stamp_at, change=change)


def _encode_with(known: KnownSchema, record: dict[str, Any]) -> bytes:
    """Encode with a given (possibly older) writer schema; fields it lacks are dropped."""
    out = BytesIO()
    out.write(known.header)
    schemaless_writer(out, known.parsed, record)
    return out.getvalue()


def _carries(event_schema: dict[str, Any], state: dict[str, Any] | None) -> bool:
    """Whether the payload record of `event_schema` has a field for every valued key of `state`."""
    if state is None:
        return True
    payload = next(f for f in event_schema["fields"] if f["name"] == "payload")
    record = next(t for t in payload["type"] if isinstance(t, dict))
    fields = {f["name"] for f in record["fields"]}
    return all(name in fields for name, value in state.items() if value is not None)
