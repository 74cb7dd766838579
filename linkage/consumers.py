"""The registry of consumer agencies: credentials, rate limits, and per purpose what they may see.

Deny by default: a consumer, purpose, operation, dataset or field that the registry does not name
is refused or left out. API keys are stored as SHA-256 digests (a key is 128+ bits of randomness,
so a slow hash adds nothing); lookups compare digests in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import tomllib
from dataclasses import dataclass
from pathlib import Path

from foundation.errors import GdxError

CONSUMERS_FILE = Path(__file__).with_name("consumers.toml")
ACCESS_LOG = "access-log"
NOTIFY = "notify"
OPERATIONS = frozenset({"lookup", "verify", ACCESS_LOG, NOTIFY})
DEMO_API_KEYS = ("demo-revenue-key", "demo-dlt-key", "demo-bank-key", "demo-portal-key")
"""The keys `consumers.toml` ships with (and documents) for development and tests: public, so a
production set-up that still accepts one of them is refused (`streams.production`)."""


@dataclass(frozen=True)
class Purpose:
    name: str
    description: str
    operations: frozenset[str]
    datasets: dict[str, tuple[str, ...]]
    mandate: str | None
    max_consent_days: float = 365.0  # a consent for this purpose allows nothing longer after its grant


@dataclass(frozen=True)
class Consumer:
    id: str
    name: str
    key_sha256: str | None  # None: a consumer that only receives notifications and cannot call the API
    rate_per_s: float
    burst: int
    purposes: dict[str, Purpose]


def key_digest(api_key: str) -> str:
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


class ConsumerRegistry:
    def __init__(self, consumers: dict[str, Consumer]) -> None:
        self.consumers = consumers

    def authenticate(self, api_key: str | None) -> Consumer | None:
        """The consumer whose key this is; every stored digest is compared, so timing tells nothing."""
        if not api_key:
            return None
        digest = key_digest(api_key)
        found = None
        for consumer in self.consumers.values():
            if consumer.key_sha256 is not None and hmac.compare_digest(consumer.key_sha256, digest):
                found = consumer
        return found


def _purpose(consumer_id: str, name: str, raw: dict[str, object]) -> Purpose:
    listed = raw.get("operations", [])
    if not isinstance(listed, list):
        raise GdxError(
            f"consumer {consumer_id}, purpose {name}: operations must be a list", f"use {sorted(OPERATIONS)}"
        )
    operations = frozenset(str(op) for op in listed)
    unknown = operations - OPERATIONS
    if unknown:
        raise GdxError(
            f"consumer {consumer_id}, purpose {name}: unknown operations {sorted(unknown)}", f"use {sorted(OPERATIONS)}"
        )
    datasets = {str(d): tuple(str(f) for f in fields) for d, fields in dict(raw.get("datasets", {})).items()}  # type: ignore[call-overload]
    mandate = raw.get("mandate")
    max_days = float(raw.get("max_consent_days", Purpose.max_consent_days))  # type: ignore[arg-type]
    if max_days <= 0:
        raise GdxError(f"consumer {consumer_id}, purpose {name}: max_consent_days must be positive", "e.g. 90")
    return Purpose(
        name, str(raw.get("description", "")), operations, datasets, str(mandate) if mandate else None, max_days
    )


def load_consumers(path: Path | None = None) -> ConsumerRegistry:
    path = path or CONSUMERS_FILE
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        consumers = {
            cid: Consumer(
                id=cid,
                name=str(body["name"]),
                key_sha256=str(body["api_key_sha256"]).lower() if "api_key_sha256" in body else None,
                rate_per_s=float(body.get("rate_per_s", 10)),
                burst=int(body.get("burst", 20)),
                purposes={p: _purpose(cid, p, pb) for p, pb in body.get("purposes", {}).items()},
            )
            for cid, body in raw.get("consumers", {}).items()
        }
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise GdxError(
            f"cannot read the consumer registry {path}: {exc!r}", "fix the file (see linkage/consumers.toml)"
        ) from None
    return ConsumerRegistry(consumers)
