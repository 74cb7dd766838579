"""The evolution gate: the repository passes, a compatible change passes, a breaking change fails
with a reason that names the field, and the per-schema mode decides which promises hold."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from schemas.catalog import RELEASED_DIR, load_schema_catalog
from schemas.compatibility import Mode, Policy, PolicyError, check_catalog, load_policy, release_pending
from schemas.compose import SOURCE_DIR
from streams.cli import main

PERSON = "th.go.gdx.dopa.PersonEvent"
FULL_TRANSITIVE = Policy(Mode.FULL_TRANSITIVE, {})


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    """A private copy of the schema sources and released versions to change."""
    sources, released = tmp_path / "avro", tmp_path / "released"
    shutil.copytree(SOURCE_DIR, sources)
    shutil.copytree(RELEASED_DIR, released)
    return sources, released


def edit_person(sources: Path, change: Callable[[list[dict[str, Any]]], None]) -> None:
    path = sources / "dopa" / "person.avsc"
    schema = json.loads(path.read_text(encoding="utf-8"))
    change(schema["fields"])
    path.write_text(json.dumps(schema, ensure_ascii=False), encoding="utf-8")


def findings_for(sources: Path, released: Path, policy: Policy = FULL_TRANSITIVE) -> list[str]:
    return [str(f) for f in check_catalog(load_schema_catalog(sources, released), policy)]


def test_the_repository_passes_its_own_gate() -> None:
    catalog = load_schema_catalog()
    assert check_catalog(catalog, load_policy()) == []
    assert catalog.pending() == [], "a schema changed without `gdx schemas check --release`"


def test_adding_an_optional_field_is_compatible_and_releases_as_v2(tree: tuple[Path, Path]) -> None:
    sources, released = tree
    edit_person(
        sources,
        lambda f: f.append({"name": "blood_group", "type": ["null", "string"], "default": None, "doc": "ABO group"}),
    )
    catalog = load_schema_catalog(sources, released)
    assert [(k.name, k.version) for k in catalog.pending()] == [(PERSON, 2)]
    assert check_catalog(catalog, FULL_TRANSITIVE) == []
    written = release_pending(catalog, released)
    assert written == [released / PERSON / "v2.avsc"]
    again = load_schema_catalog(sources, released)
    assert again.pending() == [] and [k.version for k in again.released(PERSON)] == [1, 2]


def test_adding_a_required_field_breaks_old_events_and_names_the_field(tree: tuple[Path, Path]) -> None:
    sources, released = tree
    edit_person(sources, lambda f: f.append({"name": "religion", "type": "string", "doc": "religion"}))
    assert findings_for(sources, released) == [
        f"{PERSON}: v2 cannot read data written with v1: payload.religion: "
        "field is missing on the writer side and has no default"
    ]


def test_removing_a_required_field_breaks_existing_consumers(tree: tuple[Path, Path]) -> None:
    sources, released = tree
    edit_person(sources, lambda f: f.remove(next(x for x in f if x["name"] == "nationality")))
    found = findings_for(sources, released)
    assert found == [
        f"{PERSON}: v1 cannot read data written with v2: "
        "payload.nationality: field is missing on the writer side and has no default"
    ]
    # the same change under a reviewed BACKWARD override: new readers still read old events
    assert findings_for(sources, released, Policy(Mode.FULL_TRANSITIVE, {PERSON: Mode.BACKWARD})) == []


def test_retyping_a_field_breaks_both_ways(tree: tuple[Path, Path]) -> None:
    sources, released = tree

    def retype(fields: list[dict[str, Any]]) -> None:
        next(x for x in fields if x["name"] == "date_of_birth")["type"] = "string"

    edit_person(sources, retype)
    found = findings_for(sources, released)
    assert len(found) == 2
    assert all("payload.date_of_birth: reader type:" in f for f in found)


def test_a_new_enum_symbol_breaks_old_readers(tree: tuple[Path, Path]) -> None:
    sources, released = tree

    def add_symbol(fields: list[dict[str, Any]]) -> None:
        next(x for x in fields if x["name"] == "status")["type"]["symbols"].append("MISSING")

    edit_person(sources, add_symbol)
    assert findings_for(sources, released) == [
        f"{PERSON}: v1 cannot read data written with v2: "
        "payload.status: enum th.go.gdx.dopa.PersonStatus lacks symbols ['MISSING'] and has no default"
    ]


def test_transitive_mode_compares_with_every_release_not_only_the_latest(tree: tuple[Path, Path]) -> None:
    sources, released = tree
    edit_person(
        sources, lambda f: f.remove(next(x for x in f if x["name"] == "name_en"))
    )  # had a default: FULL-compatible
    assert findings_for(sources, released) == []
    release_pending(load_schema_catalog(sources, released), released)
    edit_person(
        sources, lambda f: f.append({"name": "name_en", "type": ["null", "int"], "default": None, "doc": "reused name"})
    )
    assert findings_for(sources, released, Policy(Mode.FULL, {})) == []  # v3 against v2 only
    found = findings_for(sources, released)
    assert found and all("v1" in f and "payload.name_en" in f for f in found)


def test_a_policy_naming_an_unknown_schema_or_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="unknown schemas"):
        check_catalog(load_schema_catalog(), Policy(Mode.FULL, {"th.go.gdx.nobody.Event": Mode.NONE}))
    policy = tmp_path / "compatibility.toml"
    policy.write_text('default = "SIDEWAYS"\n', encoding="utf-8")
    with pytest.raises(PolicyError, match="FULL_TRANSITIVE"):
        load_policy(policy)


def test_cli_check_passes_on_the_repository(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schemas", "check"]) == 0
    assert "no compatibility break" in capsys.readouterr().out


def test_cli_check_fails_with_a_readable_reason(tree: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    sources, released = tree
    edit_person(sources, lambda f: f.append({"name": "religion", "type": "string", "doc": "religion"}))
    assert main(["schemas", "check", "--sources", str(sources), "--released", str(released)]) == 1
    captured = capsys.readouterr()
    assert f"INCOMPATIBLE {PERSON}: v2 cannot read data written with v1: payload.religion" in captured.out
    assert "1 compatibility break(s) in 1 schema(s)" in captured.err
    assert not (released / PERSON / "v2.avsc").exists()
