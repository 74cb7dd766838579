"""Signed change events: who published an event is proven by the event, not claimed by it.

An agency signs the exact bytes of every record value it publishes with an Ed25519 key only it
holds; the signature travels in Kafka headers, so the Avro contract is unchanged and a consumer
that ignores them decodes as before. A trust list — every agency's public keys with their validity
periods, X-Road's "global configuration" for this exchange — says which key may sign for which
agency when. Rotation is a second key valid beside the first for a while; an event verifies under
whichever key its header names, if that key was valid when the event was published.

Signing is batched the way X-Road batches its message log: a publisher signs the root of a Merkle
tree over up to CHUNK record values at once, and each event carries that signature and its own
path to the root. Every event still verifies alone — its bytes, its path, the signature over the
root — with the same guarantee as a signature of its own, while a verifier that meets the other
events of the chunk checks the Ed25519 signature once (an Ed25519 verification cost about as much
as the rest of the worker's pipeline per event; see bench/signature_cost.py).

This module is part of the contract: any consumer checks an event with `TrustList.verify` and the
published trust list, with no other code of ours. Wire format:

- header `gdx-signing-key`: the key id (UTF-8), e.g. `dopa-2026-12-07-3f9a1c2b`;
- header `gdx-signature`: the 64-byte Ed25519 signature of `gdx-events-v1:` + the chunk's root;
- header `gdx-signature-path`: the event's leaf index (4 bytes, big-endian) then the sibling
  hashes from the leaf up (32 bytes each; none for a chunk of one);
- leaf = SHA-256(0x00 + value); node = SHA-256(0x01 + left + right); a chunk is padded to a power
  of two with SHA-256(0x02), so a path's length fixes the tree's height;
- trust list: JSON `{"keys": [{"key_id", "agency", "public_key" (32 bytes, base64),
  "not_before_ms", "not_after_ms" (null: open)}]}`.
"""

from __future__ import annotations

import base64
import hashlib
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
PATH_HEADER = "gdx-signature-path"
CHUNK = 64
"""Events under one signature: 6 hashes of path per event (192 bytes), one Ed25519 signature per 64."""
DOMAIN = b"gdx-events-v1:"
_PAD = hashlib.sha256(b"\x02").digest()
_VERIFIED_CACHE = 65_536

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
        """The headers of one event signed on its own (a chunk of one)."""
        return self.sign_all([value])[0]

    def sign_all(self, values: Sequence[bytes]) -> list[list[tuple[str, bytes | None]]]:
        """Each value's headers, one signature per CHUNK values."""
        signed: list[list[tuple[str, bytes | None]]] = []
        key_id = self.key_id.encode()
        for first in range(0, len(values), CHUNK):
            chunk = values[first : first + CHUNK]
            levels = _tree([_leaf(value) for value in chunk])
            signature = self.private_key.sign(DOMAIN + levels[-1][0])
            for index in range(len(chunk)):
                siblings = b"".join(level[(index >> up) ^ 1] for up, level in enumerate(levels[:-1]))
                path = index.to_bytes(4, "big") + siblings
                signed.append([(KEY_ID_HEADER, key_id), (SIGNATURE_HEADER, signature), (PATH_HEADER, path)])
        return signed


def _leaf(value: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + value).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _tree(leaves: list[bytes]) -> list[list[bytes]]:
    """Every level of the tree over `leaves`, padded to a power of two; the last level is the root."""
    width = 1
    while width < len(leaves):
        width *= 2
    levels = [leaves + [_PAD] * (width - len(leaves))]
    while len(levels[-1]) > 1:
        below = levels[-1]
        levels.append([_node(below[i], below[i + 1]) for i in range(0, len(below), 2)])
    return levels


def _root(value: bytes, path: bytes) -> bytes:
    if len(path) < 4 or (len(path) - 4) % 32:
        raise BadSignature(f"{PATH_HEADER} is {len(path)} bytes, not 4 + 32 per level")
    index, node = int.from_bytes(path[:4], "big"), _leaf(value)
    height = (len(path) - 4) // 32
    if index >> height:
        raise BadSignature(f"leaf {index} does not fit a tree of height {height}")
    for up in range(height):
        sibling = path[4 + 32 * up : 36 + 32 * up]
        node = _node(node, sibling) if not (index >> up) & 1 else _node(sibling, node)
    return node


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
        self._verified: set[tuple[str, bytes, bytes]] = set()
        """(key id, root, signature) already verified: the other events of a chunk cost hashes only."""

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
        path = header(headers, PATH_HEADER)
        if key_id_bytes is None and signature is None and path is None:
            return None
        if not key_id_bytes or not signature or path is None:
            raise BadSignature(f"{KEY_ID_HEADER}, {SIGNATURE_HEADER} and {PATH_HEADER} must come together")
        key_id = key_id_bytes.decode("utf-8", errors="replace")
        key = self.keys.get(key_id)
        if key is None:
            raise BadSignature(f"key {key_id!r} is not on the trust list")
        if key.agency != agency:
            raise BadSignature(f"key {key_id!r} signs for {key.agency}, not for {agency}")
        if not key.valid_at(at_ms):
            raise BadSignature(f"key {key_id!r} was not valid at {at_ms} (publish time, ms)")
        root = _root(value, path)
        if (key_id, root, signature) not in self._verified:
            try:
                key.public_key.verify(signature, DOMAIN + root)
            except InvalidSignature:
                raise BadSignature(f"the signature under key {key_id!r} does not match the event's bytes") from None
            if len(self._verified) >= _VERIFIED_CACHE:
                self._verified.clear()
            self._verified.add((key_id, root, signature))
        return key_id
