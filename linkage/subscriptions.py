"""Notify subscriptions: which linked changes a consumer agency wants pushed to it.

A subscription names the datasets whose changes it watches, the party of the changed record its
condition is about (e.g. the `deceased` of a death record), and the datasets that party must be
linked to for the change to matter ("deaths of persons who own a vehicle or a parcel"), and the
consumer's purpose that authorizes telling it (`linkage.notices`). Matching changes go to
`gdx.notify.<consumer>` as JSON messages keyed by the party's ID.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from foundation.errors import GdxError

SUBSCRIPTIONS_FILE = Path(__file__).with_name("subscriptions.toml")


@dataclass(frozen=True)
class Subscription:
    consumer: str
    purpose: str
    description: str
    datasets: frozenset[str]
    change_types: frozenset[str]
    party_relation: str
    linked_to: frozenset[str]


def load_subscriptions(path: Path = SUBSCRIPTIONS_FILE) -> tuple[Subscription, ...]:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        return tuple(
            Subscription(
                consumer=entry["consumer"],
                purpose=entry["purpose"],
                description=entry.get("description", ""),
                datasets=frozenset(entry["datasets"]),
                change_types=frozenset(entry.get("change_types", ["CREATE", "UPDATE"])),
                party_relation=entry["party_relation"],
                linked_to=frozenset(entry.get("linked_to", [])),
            )
            for entry in raw.get("subscriptions", [])
        )
    except (OSError, tomllib.TOMLDecodeError, KeyError) as exc:
        raise GdxError(
            f"cannot read subscriptions from {path}: {exc!r}", "fix the file (see linkage/subscriptions.toml)"
        ) from None
