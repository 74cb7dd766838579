"""Scrape targets as files: each process announces its `/metrics` address where Prometheus looks.

Prometheus reads `<state_dir>/prometheus/targets/*.json` through `file_sd_configs` and notices
changes by itself, so a process that starts is scraped within a scrape interval and nobody edits
a scrape configuration by hand. One file per process, named `<name>-<pid>.json`: the pid tells a
crashed process's leftover (pruned by the next process or Prometheus start) from a live one.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


def targets_dir(state_dir: Path) -> Path:
    return state_dir / "prometheus" / "targets"


def register(directory: Path, name: str, address: str, labels: dict[str, str]) -> Path:
    """Write this process's target file atomically (Prometheus may read it at any moment)."""
    if not NAME.match(name):
        raise ValueError(f"process name {name!r} must match {NAME.pattern}")
    directory.mkdir(parents=True, exist_ok=True)
    prune_dead(directory)
    path = directory / f"{name}-{os.getpid()}.json"
    group = [{"targets": [address], "labels": {"process": name, **labels}}]
    partial = path.with_suffix(".json.tmp")
    partial.write_text(json.dumps(group, indent=2) + "\n")
    partial.replace(path)
    return path


def _pid_of(path: Path) -> int | None:
    stem = path.stem.rsplit("-", 1)
    return int(stem[1]) if len(stem) == 2 and stem[1].isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prune_dead(directory: Path) -> list[Path]:
    """Remove the target files of processes that are gone, so Prometheus stops scraping them."""
    removed = []
    for path in directory.glob("*.json"):
        pid = _pid_of(path)
        if pid is not None and not _alive(pid):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def live_targets(directory: Path) -> list[dict[str, object]]:
    """The target groups announced now, for status output."""
    groups: list[dict[str, object]] = []
    for path in sorted(directory.glob("*.json")):
        try:
            groups.extend(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return groups
