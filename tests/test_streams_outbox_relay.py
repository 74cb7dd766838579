"""The outbox relay run on its own: what a user gave wrong is one line and exit 2, and the outbox
is left as it was (the relay draining a real broker is tests/test_agencies_kafka.py's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agencies.store import AgencyStore
from streams.outbox_relay import main


def test_a_missing_store_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--store", str(tmp_path / "dopa.db")]) == 2
    assert capsys.readouterr().err == f"outbox relay: no store at {tmp_path / 'dopa.db'}\n"


def test_a_store_that_names_no_agency_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "outbox.db"
    AgencyStore(store).close()
    assert main(["--store", str(store)]) == 2
    assert "is no agency's store; name the agency with --agency" in capsys.readouterr().err


def test_malformed_settings_are_one_line_and_the_outbox_stays(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "dopa.db"
    AgencyStore(store).close()
    before = store.read_bytes()
    monkeypatch.setenv("GDX_KAFKA_SECURITY", "telepathy")
    assert main(["--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("outbox relay: invalid settings: kafka_security") and err.count("\n") == 1, err
    assert store.read_bytes() == before
