"""No citizen ID reaches a log line through an error text: validation and database errors quote the
offending value, and the lines that carry them mask every 13-digit run."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from foundation.redaction import MASK, redact_ids
from linkage.consent import ConsentSignatures, read_consent
from schemas.trust_list_file import TrustListFile

CITIZEN = "1101700123457"


def test_every_thirteen_digit_run_is_masked_and_nothing_else() -> None:
    assert redact_ids(f"subject_id={CITIZEN}; juristic 0105555012345.") == f"subject_id={MASK}; juristic {MASK}."
    assert redact_ids("12 digits 110170012345, 14 digits 11017001234570, 2024-06-01") == (
        "12 digits 110170012345, 14 digits 11017001234570, 2024-06-01"
    )


def test_a_malformed_consent_record_is_logged_without_the_ids_it_holds(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    malformed = json.dumps({"consent_id": CITIZEN, "subject_id": CITIZEN, "consumer": "revenue"}).encode()
    with caplog.at_level(logging.WARNING, logger="gdx"):
        read_consent(CITIZEN, malformed, ConsentSignatures(TrustListFile(tmp_path / "trust-list.json")))
    (record,) = [r for r in caplog.records if r.getMessage() == "malformed consent record skipped"]
    assert "Field required" in record.error  # type: ignore[attr-defined]
    assert CITIZEN not in f"{record.getMessage()} {vars(record)}"
