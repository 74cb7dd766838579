"""The worker's check of who published an event: the agency's signature, under the agency's policy.

The trust list is read from its file and read again when the file changes (looked at no more than
once a second, and only when an event names a key it does not hold), so a key added by a rotation,
or by an agency's first start after the worker's, is trusted without a restart.

Policy per agency: `require` (the default) dead-letters an unsigned event; `accept-unsigned`, for
a migration, applies it with no signer recorded. A signature that is present is checked under
either policy: a wrong one is never accepted.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from schemas.event_signatures import BadSignature, Headers, TrustList, TrustListError
from streams.settings import Settings

SignaturePolicy = Literal["require", "accept-unsigned"]
RELOAD_EVERY_S = 1.0


class SignatureCheck:
    def __init__(
        self,
        trust_list: Path,
        policies: Mapping[str, SignaturePolicy] | None = None,
        default: SignaturePolicy = "require",
    ) -> None:
        self.path = trust_list
        self.policies = dict(policies or {})
        self.default = default
        self._trust = TrustList([])
        self._stamp: tuple[int, int] | None = None
        self._looked_at = float("-inf")
        self._reload()

    def signed_by(self, agency: str, value: bytes, headers: Headers, at_ms: int) -> str | None:
        """The key id that signed `value` for `agency`; None when unsigned and the policy allows it."""
        try:
            key_id = self._trust.verify(agency, value, headers, at_ms)
        except BadSignature:
            if not self._reload():
                raise
            key_id = self._trust.verify(agency, value, headers, at_ms)
        if key_id is None and self.policies.get(agency, "require") == "require":
            raise BadSignature(f"the event is unsigned and {agency}'s policy requires a signature")
        return key_id

    def _reload(self) -> bool:
        """Read the trust list again if its file changed since the last look; True when it did."""
        now = time.monotonic()
        if now - self._looked_at < RELOAD_EVERY_S:
            return False
        self._looked_at = now
        try:
            status = self.path.stat()
        except FileNotFoundError:
            return False
        stamp = (status.st_mtime_ns, status.st_size)
        if stamp == self._stamp:
            return False
        try:
            self._trust = TrustList.load(self.path)
        except TrustListError:
            return False  # caught mid-replace or broken: keep what was trusted, look again later
        self._stamp = stamp
        return True


def signature_check(settings: Settings) -> SignatureCheck:
    """The check of the deployment's trust list under its policies, as the worker and a rebuild run it."""
    return SignatureCheck(settings.trust_list_path, settings.signature_policy)
