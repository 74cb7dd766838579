"""The evolution gate: no schema change may break a consumer or a producer that already exists.

Every version of every event schema (released ones and the pending current one) is checked against
its earlier released versions with the Apache Avro reader/writer compatibility checker, under the
schema's mode (FULL_TRANSITIVE unless `compatibility.toml` overrides it): master data lives for
decades in compacted topics, so a new reader must read every old event (BACKWARD) and an old
reader every new event (FORWARD).
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from schemas.catalog import KnownSchema, SchemaCatalog

POLICY_FILE = Path(__file__).parent / "compatibility.toml"


class Mode(Enum):
    NONE = "NONE"
    BACKWARD = "BACKWARD"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD = "FORWARD"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL = "FULL"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"

    @property
    def transitive(self) -> bool:
        return self.value.endswith("_TRANSITIVE")

    @property
    def backward(self) -> bool:
        return self.value.startswith(("BACKWARD", "FULL"))

    @property
    def forward(self) -> bool:
        return self.value.startswith(("FORWARD", "FULL"))


@dataclass(frozen=True)
class Policy:
    default: Mode
    overrides: dict[str, Mode]

    def mode(self, name: str) -> Mode:
        return self.overrides.get(name, self.default)


class PolicyError(ValueError):
    """compatibility.toml names an unknown mode or schema."""


def load_policy(path: Path = POLICY_FILE) -> Policy:
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    try:
        return Policy(
            Mode(raw.get("default", "FULL_TRANSITIVE")), {k: Mode(v) for k, v in raw.get("overrides", {}).items()}
        )
    except ValueError as exc:
        raise PolicyError(f"{path}: {exc}; modes are {', '.join(m.value for m in Mode)}") from None


@dataclass(frozen=True)
class Finding:
    """One broken promise: `schema` v`version` vs v`other`, in one direction."""

    schema: str
    version: int
    other: int
    direction: str
    reasons: tuple[str, ...]

    def __str__(self) -> str:
        who = (
            f"v{self.version} cannot read data written with v{self.other}"
            if self.direction == "backward"
            else f"v{self.other} cannot read data written with v{self.version}"
        )
        return f"{self.schema}: {who}: " + "; ".join(self.reasons)


_CHECKER = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]  # avro has no annotations


def _avro(schema: dict[str, Any]) -> avro.schema.Schema:
    return avro.schema.parse(json.dumps(schema))


def explain(reader: avro.schema.Schema, writer: avro.schema.Schema, path: str = "") -> list[str]:
    """Why `reader` cannot read `writer`, as field paths; empty when it can.

    The checker reports a record inside a union only as "reader union lacking writer type", so
    this walks both schemas in parallel, pairing fields by name and union branches by full name,
    to point at the field that actually broke.
    """
    if _CHECKER.get_compatibility(reader, writer).compatibility is SchemaCompatibilityType.compatible:
        return []
    here = path or "(top level)"
    if isinstance(reader, avro.schema.RecordSchema) and isinstance(writer, avro.schema.RecordSchema):
        found: list[str] = []
        for field in reader.fields:
            other = writer.fields_dict.get(field.name)
            where = f"{path}.{field.name}" if path else field.name
            if other is None:
                if not field.has_default:
                    found.append(f"{where}: field is missing on the writer side and has no default")
                continue
            found.extend(explain(field.type, other.type, where))
        if reader.fullname != writer.fullname:
            found.append(f"{here}: record name {reader.fullname} differs from {writer.fullname}")
        return found or [f"{here}: incompatible records"]
    if isinstance(writer, avro.schema.UnionSchema):
        found = []
        for branch in writer.schemas:
            found.extend(explain(reader, branch, path))
        return found
    if isinstance(reader, avro.schema.UnionSchema):
        named = getattr(writer, "fullname", None)
        for branch in reader.schemas:
            if named is not None and getattr(branch, "fullname", None) == named:
                return explain(branch, writer, path)
        return [f"{here}: no branch of the reader's union reads the writer's {writer.type}"]
    if isinstance(reader, avro.schema.ArraySchema) and isinstance(writer, avro.schema.ArraySchema):
        return explain(reader.items, writer.items, f"{path}[]")
    if isinstance(reader, avro.schema.EnumSchema) and isinstance(writer, avro.schema.EnumSchema):
        lost = sorted(set(writer.symbols) - set(reader.symbols))
        return [f"{here}: enum {reader.fullname} lacks symbols {lost} and has no default"]
    result = _CHECKER.get_compatibility(reader, writer)
    return [f"{here}: {message}" for message in sorted(result.messages)]


def check_pair(newer: KnownSchema, older: KnownSchema, mode: Mode) -> list[Finding]:
    findings = []
    if mode.backward:
        reasons = explain(_avro(newer.schema), _avro(older.schema))
        if reasons:
            findings.append(Finding(newer.name, newer.version, older.version, "backward", tuple(reasons)))
    if mode.forward:
        reasons = explain(_avro(older.schema), _avro(newer.schema))
        if reasons:
            findings.append(Finding(newer.name, newer.version, older.version, "forward", tuple(reasons)))
    return findings


def check_catalog(catalog: SchemaCatalog, policy: Policy) -> list[Finding]:
    """Every version against its earlier released versions (all of them, or the latest one)."""
    unknown = set(policy.overrides) - set(catalog.current)
    if unknown:
        raise PolicyError(f"compatibility overrides name unknown schemas: {sorted(unknown)}")
    findings: list[Finding] = []
    for name in sorted(catalog.current):
        mode = policy.mode(name)
        if mode is Mode.NONE:
            continue
        versions = catalog.versions(name)
        for index, newer in enumerate(versions):
            earlier = [k for k in versions[:index] if k.released]
            for older in earlier if mode.transitive else earlier[-1:]:
                findings.extend(check_pair(newer, older, mode))
    return findings


def release_pending(catalog: SchemaCatalog, released_dir: Path) -> list[Path]:
    """Write each pending current schema as its next released version; call only after a clean check."""
    written = []
    for known in catalog.pending():
        path = released_dir / known.name / f"v{known.version}.avsc"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(known.schema, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written
