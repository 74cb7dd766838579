"""Every schema this repository knows, by fingerprint: the current ones and all released.

Released versions live in `released/<event name>/v<N>.avsc` and are never edited, because events
written with them stay in compacted topics for years. The current schema of a dataset is composed
from `avro/`; if it equals the latest released version it is that version, otherwise it is the
next, unreleased one (the evolution gate decides whether it may be released).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fastavro

from schemas.compose import SOURCE_DIR, composed_events, full_name
from schemas.errors import UnknownSchema
from schemas.fingerprint import SINGLE_OBJECT_MAGIC, canonical_form, fingerprint

RELEASED_DIR = Path(__file__).parent / "released"
_VERSION_FILE = re.compile(r"^v(\d+)\.avsc$")


@dataclass(frozen=True)
class KnownSchema:
    """One version of one event schema, with what the codec needs precomputed."""

    name: str
    version: int
    released: bool
    schema: dict[str, Any]
    canonical: str = field(init=False)
    fingerprint: bytes = field(init=False)
    header: bytes = field(init=False)
    parsed: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        canonical = canonical_form(self.schema)
        fp = fingerprint(self.schema)
        object.__setattr__(self, "canonical", canonical)
        object.__setattr__(self, "fingerprint", fp)
        object.__setattr__(self, "header", SINGLE_OBJECT_MAGIC + fp)
        object.__setattr__(self, "parsed", fastavro.parse_schema(self.schema, named_schemas={}))

    @classmethod
    def from_registry(cls, schema: dict[str, Any]) -> KnownSchema:
        """A schema met only in the registry: its version there is not this catalog's, so 0."""
        return cls(full_name(schema), 0, True, schema)


class SchemaCatalog:
    """Fingerprint -> schema, and name -> the current (reader) schema."""

    def __init__(self, schemas: Iterable[KnownSchema], datasets: dict[tuple[str, str], str] | None = None) -> None:
        self.by_fingerprint: dict[bytes, KnownSchema] = {}
        self.current: dict[str, KnownSchema] = {}
        for known in schemas:
            self.by_fingerprint.setdefault(known.fingerprint, known)
            held = self.current.get(known.name)
            if held is None or known.version > held.version:
                self.current[known.name] = known
        self.datasets: dict[tuple[str, str], str] = dict(datasets or {})

    def versions(self, name: str) -> list[KnownSchema]:
        """Every version of one schema, oldest first."""
        return sorted((k for k in self.by_fingerprint.values() if k.name == name), key=lambda k: k.version)

    def released(self, name: str) -> list[KnownSchema]:
        return [k for k in self.versions(name) if k.released]

    def for_dataset(self, agency: str, dataset: str) -> KnownSchema:
        try:
            return self.current[self.datasets[(agency, dataset)]]
        except KeyError:
            raise UnknownSchema(f"no event schema for dataset {agency}/{dataset}") from None

    def pending(self) -> list[KnownSchema]:
        """Current schemas that differ from every released version (changed, not yet released)."""
        return [k for k in self.current.values() if not k.released]


def read_released(released_dir: Path = RELEASED_DIR) -> dict[str, list[tuple[int, dict[str, Any]]]]:
    """Event name -> [(version, schema)], oldest first."""
    found: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    if not released_dir.is_dir():
        return found
    for folder in sorted(p for p in released_dir.iterdir() if p.is_dir()):
        for path in folder.glob("v*.avsc"):
            match = _VERSION_FILE.match(path.name)
            if match:
                schema = json.loads(path.read_text(encoding="utf-8"))
                found.setdefault(folder.name, []).append((int(match.group(1)), schema))
    for versions in found.values():
        versions.sort(key=lambda pair: pair[0])
    return found


def load_schema_catalog(source_dir: Path = SOURCE_DIR, released_dir: Path = RELEASED_DIR) -> SchemaCatalog:
    """The repository's catalog: every released version plus the current sources."""
    released = read_released(released_dir)
    entries = [
        KnownSchema(name, version, True, schema) for name, versions in released.items() for version, schema in versions
    ]
    datasets: dict[tuple[str, str], str] = {}
    for key, schema in composed_events(source_dir).items():
        name = full_name(schema)
        datasets[key] = name
        history = released.get(name, [])
        if history and canonical_form(history[-1][1]) == canonical_form(schema):
            continue  # the current source is the latest released version
        entries.append(KnownSchema(name, (history[-1][0] if history else 0) + 1, False, schema))
    return SchemaCatalog(entries, datasets)
