"""Signed change events: who published an event is proven by the event, not claimed by it.

An agency signs the exact bytes of every record value it publishes with an Ed25519 key only it
holds; the signature and the key's id travel in two Kafka headers, so the Avro contract is
unchanged and a consumer that ignores them decodes as before. A trust list — every agency's public
keys with their validity periods, X-Road's "global configuration" for this exchange — says which
key may sign for which agency when. Rotation is a second key valid beside the first for a while;
an event verifies under whichever key its header names, if that key was valid when the event was
published.

This module is part of the contract: any consumer checks an event with `TrustList.verify` and the
published trust list, with no other code of ours. Wire format:

- header `gdx-signature`: the 64-byte Ed25519 signature of the record value, raw;
- header `gdx-signing-key`: the key id (UTF-8), e.g. `dopa-2026-12-07-3f9a1c2b`;
- trust list: JSON `{"keys": [{"key_id", "agency", "public_key" (32 bytes, base64),
  "not_before_ms", "not_after_ms" (null: open)}]}`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from schemas.errors import CodecError

SIGNATURE_HEADER = "gdx-signature"
KEY_ID_HEADER = "gdx-signing-key"

Headers = Sequence[tuple[str, bytes | None]]


class BadSignature(CodecError):
    """An event whose signature is missing (where the agency's policy requires one), names a key
    the trust list does not hold for this agency at this time, or does not match its bytes."""

    reason = "bad-signature"


class TrustListError(ValueError):
    """A trust list that cannot be read: the detail names the file and what is wrong."""


@dataclass(frozen=True)
class TrustedKey:
    key_id: str
    agency: str
    public_key: Ed25519PublicKey
    not_before_ms: int
    not_after_ms: int | None = None

    def valid_at(self, at_ms: int) -> bool:
        return self.not_before_ms <= at_ms and (self.not_after_ms is None or at_ms <= self.not_after_ms)

    def entry(self) -> dict[str, object]:
        raw = self.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        return {
            "key_id": self.key_id,
            "agency": self.agency,
            "public_key": base64.b64encode(raw).decode(),
            "not_before_ms": self.not_before_ms,
            "not_after_ms": self.not_after_ms,
        }


@dataclass(frozen=True)
class Signer:
    """An agency's signing key: what its publisher holds, and nobody else."""

    key_id: str
    private_key: Ed25519PrivateKey

    def headers(self, value: bytes) -> list[tuple[str, bytes | None]]:
        return [(KEY_ID_HEADER, self.key_id.encode()), (SIGNATURE_HEADER, self.private_key.sign(value))]


def header(headers: Headers, name: str) -> bytes | None:
    """The last value of header `name` (a later header wins, as a re-signing proxy would add one)."""
    found = None
    for key, value in headers:
        if key == name:
            found = value
    return found


class TrustList:
    """The public keys that may sign events, by key id."""

    def __init__(self, keys: Iterable[TrustedKey]) -> None:
        self.keys = {key.key_id: key for key in keys}

    @classmethod
    def load(cls, path: Path) -> TrustList:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                TrustedKey(
                    key_id=str(entry["key_id"]),
                    agency=str(entry["agency"]),
                    public_key=Ed25519PublicKey.from_public_bytes(base64.b64decode(entry["public_key"], validate=True)),
                    not_before_ms=int(entry["not_before_ms"]),
                    not_after_ms=None if entry.get("not_after_ms") is None else int(entry["not_after_ms"]),
                )
                for entry in document["keys"]
            )
        except FileNotFoundError:
            raise TrustListError(f"no trust list at {path}") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise TrustListError(f"trust list {path} is malformed: {type(exc).__name__}: {exc}") from None

    def document(self) -> str:
        ordered = sorted(self.keys.values(), key=lambda key: (key.agency, key.key_id))
        return json.dumps({"keys": [key.entry() for key in ordered]}, indent=2) + "\n"

    def verify(self, agency: str, value: bytes, headers: Headers, at_ms: int) -> str | None:
        """The id of the key that signed `value` for `agency`, valid at `at_ms` (the publish time);
        None when the event carries no signature at all (the caller's policy decides). Anything
        else that is not a good signature raises BadSignature saying what is wrong."""
        key_id_bytes, signature = header(headers, KEY_ID_HEADER), header(headers, SIGNATURE_HEADER)
        if key_id_bytes is None and signature is None:
            return None
        if not key_id_bytes or not signature:
            raise BadSignature(f"{KEY_ID_HEADER} and {SIGNATURE_HEADER} must come together")
        key_id = key_id_bytes.decode("utf-8", errors="replace")
        key = self.keys.get(key_id)
        if key is None:
            raise BadSignature(f"key {key_id!r} is not on the trust list")
        if key.agency != agency:
            raise BadSignature(f"key {key_id!r} signs for {key.agency}, not for {agency}")
        if not key.valid_at(at_ms):
            raise BadSignature(f"key {key_id!r} was not valid at {at_ms} (publish time, ms)")
        try:
            key.public_key.verify(signature, value)
        except InvalidSignature:
            raise BadSignature(f"the signature under key {key_id!r} does not match the event's bytes") from None
        return key_id
