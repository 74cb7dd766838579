"""The registry enforces each subject's level itself: a version that breaks FULL_TRANSITIVE is
refused by the registry, whoever sends it, and `gdx schemas check` asks the registry as well as the
repository's gate (which names the field). Against the session's real registry."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from agencies.schema_ids import value_subject
from foundation.schema_registry import RegistryRefused, SchemaRegistry
from schemas.catalog import RELEASED_DIR, load_schema_catalog
from schemas.compose import SOURCE_DIR
from schemas.fingerprint import schema_json
from streams.cli import main
from streams.schema_publish import publish_repository
from streams.security.principals import OPERATOR
from streams.settings import Settings

pytestmark = pytest.mark.kafka

PERSON = "th.go.gdx.dopa.PersonEvent"


def _person_with(tmp_path: Path, field: dict[str, Any]) -> tuple[Path, Path]:
    """A copy of the schema sources whose person payload gains `field`."""
    sources, released = tmp_path / "avro", tmp_path / "released"
    shutil.copytree(SOURCE_DIR, sources)
    shutil.copytree(RELEASED_DIR, released)
    path = sources / "dopa" / "person.avsc"
    schema = json.loads(path.read_text(encoding="utf-8"))
    schema["fields"].append(field)
    path.write_text(json.dumps(schema, ensure_ascii=False), encoding="utf-8")
    return sources, released


def _check(settings: Settings, monkeypatch: pytest.MonkeyPatch, sources: Path, released: Path) -> int:
    monkeypatch.setenv("GDX_TOPIC_PREFIX", settings.topic_prefix)
    return main(["schemas", "check", "--sources", str(sources), "--released", str(released)])


def test_a_breaking_version_is_refused_by_the_registry_and_by_the_check(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    publish_repository(settings)
    registry = SchemaRegistry(settings.registry_for(OPERATOR))
    subject = value_subject(settings.topic("gdx.dopa.person.v1"))
    assert registry.compatibility(subject) == "FULL_TRANSITIVE"
    sources, released = _person_with(tmp_path, {"name": "religion", "type": "string", "doc": "religion"})
    broken = load_schema_catalog(sources, released).current[PERSON]
    with pytest.raises(RegistryRefused) as refused:
        registry.register(subject, schema_json(broken.schema))
    assert refused.value.status == 409
    assert registry.versions(subject) == [1], "the refused version was not registered"

    assert _check(settings, monkeypatch, sources, released) == 1
    out = capsys.readouterr().out
    assert f"INCOMPATIBLE {PERSON}: the schema registry refuses it under {subject}" in out
    assert f"INCOMPATIBLE {PERSON}: v2 cannot read data written with v1: payload.religion" in out


def test_a_compatible_change_passes_the_registry_and_the_gate(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    publish_repository(settings)
    sources, released = _person_with(
        tmp_path, {"name": "religion", "type": ["null", "string"], "default": None, "doc": "religion"}
    )
    assert _check(settings, monkeypatch, sources, released) == 0
    assert "1 changed schema(s) checked, 0 refused" in capsys.readouterr().out
