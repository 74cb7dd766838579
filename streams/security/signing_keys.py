"""The agencies' event-signing keys and the trust list that publishes their public halves.

Everything lives under `<state_dir>/signing/` (mode 0700): one `<key_id>.key` per key (Ed25519,
PKCS#8 PEM, created 0600), and `trust-list.json`, the public keys with their validity periods,
which is what a verifier is given (the worker, `gdx events verify`, any consumer). An agency's
current key is its newest one that is valid now; the first is made on first use.

Rotation without downtime: `rotate` adds a new key valid from now and gives every older key of
that agency an end `overlap_s` later, so events signed under either verify while publishers move
to the new one (each picks up its agency's current key when it starts). The trust list is written
whole and renamed into place, under a lock, so a reader never sees half of it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import replace
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

from foundation.errors import GdxError
from foundation.secret_files import PUBLIC_FILE, write_private
from linkage.index_store import now_ms
from schemas.event_signatures import Signer, TrustedKey, TrustList, TrustListError
from streams.security.pki import locked

SIGNING_DIR = "signing"
TRUST_LIST = "trust-list.json"
DEFAULT_OVERLAP_S = 24 * 3600


class SigningKeys:
    """The keys of every agency this deployment signs for, and their trust list."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def of(cls, state_dir: Path) -> SigningKeys:
        return cls(state_dir / SIGNING_DIR)

    @property
    def trust_list_path(self) -> Path:
        return self.root / TRUST_LIST

    def trust_list(self) -> TrustList:
        """The trust list as written; empty before the first key is made."""
        if not self.trust_list_path.exists():
            return TrustList([])
        try:
            return TrustList.load(self.trust_list_path)
        except TrustListError as exc:
            raise GdxError(str(exc), f"restore it from a copy, or remove {self.root} to start over") from None

    def signer(self, agency: str, at_ms: int | None = None) -> Signer:
        """`agency`'s current signing key, made (and put on the trust list) when it has none."""
        with locked(self.root):
            trust, at = self.trust_list(), at_ms or now_ms()
            current = self._current(trust, agency, at) or self._add(trust, agency, at)
            return Signer(current.key_id, self._private(current.key_id))

    def rotate(self, agency: str, overlap_s: float = DEFAULT_OVERLAP_S, at_ms: int | None = None) -> TrustedKey:
        """A new key for `agency`, valid from now; its older keys stay valid `overlap_s` longer."""
        at = at_ms or now_ms()
        with locked(self.root):
            trust = self.trust_list()
            retiring = at + int(overlap_s * 1000)
            for key in list(trust.keys.values()):
                if key.agency == agency and (key.not_after_ms is None or key.not_after_ms > retiring):
                    trust.keys[key.key_id] = replace(key, not_after_ms=retiring)
            return self._add(trust, agency, at)

    @staticmethod
    def _current(trust: TrustList, agency: str, at_ms: int) -> TrustedKey | None:
        valid = [k for k in trust.keys.values() if k.agency == agency and k.valid_at(at_ms)]
        return max(valid, key=lambda k: (k.not_before_ms, k.key_id), default=None)

    def _add(self, trust: TrustList, agency: str, at_ms: int) -> TrustedKey:
        private_key = Ed25519PrivateKey.generate()
        public = private_key.public_key()
        fingerprint = hashlib.sha256(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()[:8]
        day = dt.datetime.fromtimestamp(at_ms / 1000, dt.UTC).strftime("%Y-%m-%d")
        key = TrustedKey(f"{agency}-{day}-{fingerprint}", agency, public, at_ms)
        pem = private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        write_private(self._key_file(key.key_id), pem)
        trust.keys[key.key_id] = key
        write_private(self.trust_list_path, trust.document().encode(), mode=PUBLIC_FILE)
        return key

    def _key_file(self, key_id: str) -> Path:
        return self.root / f"{key_id}.key"

    def _private(self, key_id: str) -> Ed25519PrivateKey:
        path = self._key_file(key_id)
        try:
            key = load_pem_private_key(path.read_bytes(), password=None)
        except FileNotFoundError:
            raise GdxError(
                f"the signing key {key_id} is on the trust list but {path} is missing",
                "restore the key file, or rotate the agency's key (`gdx keys rotate AGENCY`)",
            ) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise GdxError(f"{path} is not an Ed25519 key", "restore the key file")
        return key
