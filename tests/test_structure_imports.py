"""The rooms only look down: the import-linter contracts in pyproject.toml hold for the tree, and
they fail, naming the import, when a room climbs, the contract reaches for the network, or two
modules of a room import each other."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOMS = ("foundation", "schemas", "agencies", "linkage", "monitoring", "streams")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}  # this copy of the rooms, ahead of the installed tree
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_tree_keeps_every_contract() -> None:
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.fixture
def copy_of_the_rooms(tmp_path: Path) -> Path:
    for room in ROOMS:
        shutil.copytree(REPO / room, tmp_path / room, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("module", "line", "named"),
    [
        ("linkage/api.py", "from streams.settings import Settings", "linkage.api -> streams.settings"),
        ("monitoring/status.py", "from linkage.views import party_view", "monitoring.status -> linkage.views"),
        ("agencies/outbox.py", "from linkage.audit import AuditWriter", "agencies.outbox -> linkage.audit"),
        ("foundation/errors.py", "import schemas.codec", "foundation.errors -> schemas.codec"),
        ("schemas/codec.py", "import aiokafka", "schemas.codec -> aiokafka"),
        ("schemas/catalog.py", "from foundation.errors import GdxError", "schemas.catalog -> foundation.errors"),
        ("streams/settings.py", "import streams.commands.up", ".settings -> .commands"),
        ("linkage/tables.py", "from linkage.api import create_app", ".tables -> .api"),
    ],
)
def test_a_climbing_import_breaks_the_contract_and_is_named(
    copy_of_the_rooms: Path, module: str, line: str, named: str
) -> None:
    path = copy_of_the_rooms / module
    path.write_text(f"{path.read_text()}\n{line}  # the import under test\n")
    result = lint_imports(copy_of_the_rooms)
    assert result.returncode == 1, result.stdout
    assert named in result.stdout
    assert "1 broken" in result.stdout
