"""Reconciliation: the index against the agencies' ground truth, mismatch by mismatch.

Ground truth comes as the agencies' dump lines (agency, dataset, key, version, state). Kinds of
mismatch: `missing` (the agency holds it, the index does not), `extra` (the index holds a live
record the agency does not), `version` (different entity versions), `state` (same version,
different content).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Engine, select

from linkage.tables import records

KINDS = ("missing", "extra", "version", "state")


@dataclass
class ReconcileReport:
    compared: int = 0
    mismatches: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def add(self, kind: str, detail: str, keep: int = 20) -> None:
        self.mismatches[kind] += 1
        if len(self.examples) < keep:
            self.examples.append(f"{kind}: {detail}")


def _number(value: str) -> Decimal | None:
    try:
        return Decimal(value)
    except InvalidOperation:
        return None


def same_state(a: Any, b: Any) -> bool:
    """Equal as data: an absent optional field equals null, 25.5 equals 25.50 and 90000.00 equals 90000."""
    if isinstance(a, dict) and isinstance(b, dict):
        return all(same_state(a.get(k), b.get(k)) for k in a.keys() | b.keys())
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_state(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, str) and isinstance(b, str) and a != b and "." in a + b:
        left, right = _number(a), _number(b)
        return left is not None and left == right
    return bool(a == b)


def reconcile(engine: Engine, truth: Iterable[dict[str, Any]], agencies: Iterable[str]) -> ReconcileReport:
    """Compare every truth line with the index; index records of `agencies` not in the truth are extra."""
    report = ReconcileReport()
    prefixes = tuple(f"{agency}." for agency in agencies)
    with engine.connect() as conn:
        held = {
            (d, k): (v, deleted, payload)
            for d, k, v, deleted, payload in conn.execute(
                select(
                    records.c.dataset,
                    records.c.entity_key,
                    records.c.entity_version,
                    records.c.deleted,
                    records.c.payload,
                )
            )
            if d.startswith(prefixes)
        }
    for line in truth:
        report.compared += 1
        key = (f"{line['agency']}.{line['dataset']}", line["key"])
        found = held.pop(key, None)
        where = f"{key[0]} {key[1]}"
        if found is None or found[1]:
            report.add("missing", f"{where} v{line['version']}")
        elif found[0] != line["version"]:
            report.add("version", f"{where}: index v{found[0]}, agency v{line['version']}")
        elif not same_state(json.loads(found[2]), line["state"]):
            report.add("state", f"{where} v{found[0]}")
    for (dataset, key), (version, deleted, _) in held.items():
        if not deleted:
            report.add("extra", f"{dataset} {key} v{version}")
    return report
