"""The plain-JSON form of a payload, shared by every store that keeps one as text.

Avro's logical types decode to `date`, `datetime` and `Decimal`; stored as JSON they become ISO
strings and decimal strings, so an agency's ground truth and the linkage index write the same
text for the same state and can be compared field by field.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson


def _plain(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} has no JSON form")


def to_json(state: Any) -> str:
    """Compact UTF-8 JSON, the text `json.dumps(state, ensure_ascii=False, separators=(",", ":"))`
    writes with dates and decimals as above; by orjson, as the stream worker writes one per event."""
    return orjson.dumps(state, default=_plain, option=orjson.OPT_PASSTHROUGH_DATETIME).decode()
