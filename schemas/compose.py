"""Builds each dataset's change-event schema from the shared envelope and the dataset's payload.

The sources keep the envelope and the common types (address, name, party) in one file each, so a
field is defined once. A topic, though, needs one self-contained writer schema per dataset, so that
a consumer holding only the schema (from the schema registry) can decode; this module inlines the shared
definitions into one record per dataset: `<Payload>Event` = envelope fields + `payload`.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SOURCE_DIR = Path(__file__).parent / "avro"
ENVELOPE_FILE = "envelope.avsc"
COMMON_DIR = "common"
EVENT_SUFFIX = "Event"

Schema = Any  # Avro schema JSON: a str, a list (union) or a dict


@dataclass(frozen=True)
class DatasetSource:
    """Where a dataset's payload schema lives: `avro/<agency>/<dataset with _>.avsc`."""

    agency: str
    dataset: str
    path: Path


def read_json(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def dataset_sources(source_dir: Path = SOURCE_DIR) -> tuple[DatasetSource, ...]:
    """Every payload schema, named like the topic catalog names datasets (`civil-registration`)."""
    found = []
    for path in sorted(source_dir.glob("*/*.avsc")):
        agency = path.parent.name
        if agency != COMMON_DIR:
            found.append(DatasetSource(agency, path.stem.replace("_", "-"), path))
    return tuple(found)


def common_types(source_dir: Path = SOURCE_DIR) -> dict[str, dict[str, Any]]:
    """The shared named types by full name, to be inlined where a payload first uses them."""
    library = {}
    for path in sorted((source_dir / COMMON_DIR).glob("*.avsc")):
        schema = read_json(path)
        library[schema["name"]] = schema
    return library


def inline_named_types(schema: Schema, library: dict[str, dict[str, Any]], defined: set[str]) -> Schema:
    """Replace the first reference to each library type with its definition, in document order.

    Avro requires a named type to be defined before (in document order) any reference by name,
    and defined only once; `defined` carries that state through the walk.
    """
    if isinstance(schema, str):
        if schema in library and schema not in defined:
            defined.add(schema)
            return inline_named_types(copy.deepcopy(library[schema]), library, defined)
        return schema
    if isinstance(schema, list):
        return [inline_named_types(branch, library, defined) for branch in schema]
    result = dict(schema)
    if result.get("name") in library:
        defined.add(result["name"])
    kind = result.get("type")
    if kind == "record":
        result["fields"] = [
            {**field, "type": inline_named_types(field["type"], library, defined)} for field in result["fields"]
        ]
    elif kind == "array":
        result["items"] = inline_named_types(result["items"], library, defined)
    elif kind == "map":
        result["values"] = inline_named_types(result["values"], library, defined)
    elif isinstance(kind, (dict, list)):
        result["type"] = inline_named_types(kind, library, defined)
    return result


def full_name(schema: dict[str, Any]) -> str:
    name = schema["name"]
    return name if "." in name or not schema.get("namespace") else f"{schema['namespace']}.{name}"


def split_full_names(schema: Schema) -> Schema:
    """Write every dotted `name` as a simple name plus `namespace`.

    Both spellings are the same Avro schema (same canonical form, same fingerprint), but the
    simple-name form is the one that tools such as AsyncAPI's Avro meta-schema accept.
    """
    if isinstance(schema, list):
        return [split_full_names(branch) for branch in schema]
    if not isinstance(schema, dict):
        return schema
    result = {
        key: split_full_names(value) if key in ("type", "items", "values") else value for key, value in schema.items()
    }
    if "fields" in result:
        result["fields"] = [{**f, "type": split_full_names(f["type"])} for f in result["fields"]]
    name = result.get("name")
    if result.get("type") in ("record", "enum", "fixed") and isinstance(name, str) and "." in name:
        namespace, _, simple = name.rpartition(".")
        result = {
            "type": result["type"],
            "name": simple,
            "namespace": namespace,
            **{k: v for k, v in result.items() if k not in ("type", "name", "namespace")},
        }
    return result


def compose_event(
    envelope: dict[str, Any], payload: dict[str, Any], library: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """One dataset's event record: the envelope's fields, then `payload` (null for a DELETE)."""
    fields = copy.deepcopy(envelope["fields"])
    fields.append(
        {
            "name": "payload",
            "type": ["null", payload],
            "default": None,
            "doc": "State of the entity after the change (the full record, not a diff); null for a DELETE.",
        }
    )
    event = {
        "type": "record",
        "name": payload["name"] + EVENT_SUFFIX,
        "doc": f"A change to {payload['name'].rsplit('.', 1)[-1]}: the envelope, then the payload. {payload['doc']}",
        "fields": fields,
    }
    composed: dict[str, Any] = split_full_names(inline_named_types(event, library, set()))
    return composed


def composed_events(source_dir: Path = SOURCE_DIR) -> dict[tuple[str, str], dict[str, Any]]:
    """(agency, dataset) -> self-contained event schema, for every payload in the sources."""
    envelope = read_json(source_dir / ENVELOPE_FILE)
    library = common_types(source_dir)
    return {
        (src.agency, src.dataset): compose_event(envelope, read_json(src.path), library)
        for src in dataset_sources(source_dir)
    }
