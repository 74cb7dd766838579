"""`gdx schemas` failures end in one line that says what to do, never in a stack trace."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from streams.cli import main


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_publish_without_a_registry_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GDX_SCHEMA_REGISTRY_URL", f"https://127.0.0.1:{closed_port()}/apis/ccompat/v7")
    assert main(["schemas", "publish"]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("gdx: schema registry https://127.0.0.1:") and "gdx registry up" in last


def test_a_malformed_schema_source_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sources = tmp_path / "avro"
    (sources / "common").mkdir(parents=True)
    (sources / "dopa").mkdir()
    (sources / "envelope.avsc").write_text(
        '{"type": "record", "name": "E", "doc": "e.", "fields": []}', encoding="utf-8"
    )
    (sources / "dopa" / "person.avsc").write_text(
        '{"type": "record", "name": "th.go.gdx.dopa.Person", "doc": "p.", '
        '"fields": [{"name": "x", "type": "th.go.gdx.common.Nowhere"}]}',
        encoding="utf-8",
    )
    assert main(["schemas", "check", "--sources", str(sources), "--released", str(tmp_path / "released")]) == 1
    err = capsys.readouterr().err
    assert "cannot load the schemas" in err and "th.go.gdx.common.Nowhere" in err
