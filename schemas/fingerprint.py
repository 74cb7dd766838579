"""Schema identity: the Parsing Canonical Form and its CRC-64-AVRO fingerprint.

The fingerprint names a schema in a stored event's single-object header (its 8 bytes kept in that
header's order, little-endian), and is how a consumer recognises the schema behind a registry's
id, whatever number the registry gave it.
"""

from __future__ import annotations

import json
from typing import Any

from fastavro.schema import fingerprint as _fingerprint
from fastavro.schema import to_parsing_canonical_form

SINGLE_OBJECT_MAGIC = b"\xc3\x01"


def canonical_form(schema: Any) -> str:
    return to_parsing_canonical_form(schema)


def fingerprint(schema: Any) -> bytes:
    """CRC-64-AVRO of the Parsing Canonical Form, little-endian (the single-object byte order)."""
    return bytes.fromhex(_fingerprint(canonical_form(schema), "CRC-64-AVRO"))


def schema_json(schema: Any) -> str:
    """The full schema (docs, defaults, logical types) as stable compact JSON, for storing and publishing.

    Not the Parsing Canonical Form: that form drops logical types and defaults, which a consumer
    needs to decode dates, timestamps and decimals.
    """
    return json.dumps(schema, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
