"""The worker's check of who published an event: the agency's signature, under the agency's policy.

The trust list follows its file (`schemas.trust_list_file`): a key added by a rotation, or by an
agency's first start after the worker's, is trusted without a restart.

Policy per agency: `require` (the default) dead-letters an unsigned event; `accept-unsigned`, for
a migration, applies it with no signer recorded. A signature that is present is checked under
either policy: a wrong one is never accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from schemas.event_signatures import BadSignature, Headers
from schemas.trust_list_file import TrustListFile
from streams.settings import Settings

SignaturePolicy = Literal["require", "accept-unsigned"]


class SignatureCheck:
    def __init__(
        self,
        trust_list: Path,
        policies: Mapping[str, SignaturePolicy] | None = None,
        default: SignaturePolicy = "require",
    ) -> None:
        self.trust = TrustListFile(trust_list)
        self.policies = dict(policies or {})
        self.default = default

    def signed_by(self, agency: str, value: bytes, headers: Headers, at_ms: int) -> str | None:
        """The key id that signed `value` for `agency`; None when unsigned and the policy allows it."""
        try:
            key_id = self.trust.current.verify(agency, value, headers, at_ms)
        except BadSignature:
            if not self.trust.reload():
                raise
            key_id = self.trust.current.verify(agency, value, headers, at_ms)
        if key_id is None and self.policies.get(agency, "require") == "require":
            raise BadSignature(f"the event is unsigned and {agency}'s policy requires a signature")
        return key_id


def signature_check(settings: Settings) -> SignatureCheck:
    """The check of the deployment's trust list under its policies, as the worker and a rebuild run it."""
    return SignatureCheck(settings.trust_list_path, settings.signature_policy)
