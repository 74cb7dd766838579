"""What a log line may not carry: a citizen or juristic-person ID. Error texts from validation or
from the database quote the offending value, and log lines travel further than the data (to
files, collectors, support tickets), so every 13-digit run in them is masked first."""

from __future__ import annotations

import re

_THIRTEEN_DIGITS = re.compile(r"(?<!\d)\d{13}(?!\d)")
MASK = "<13-digit id>"


def redact_ids(text: str) -> str:
    return _THIRTEEN_DIGITS.sub(MASK, text)
