"""Signing in tests: agencies' keys in a test's own folder, and the worker's check over them."""

from __future__ import annotations

from pathlib import Path

from agencies.population import AGENCIES
from schemas.event_signatures import Signer
from streams.security.signing_keys import SigningKeys
from streams.signature_check import SignatureCheck

UNSIGNED_ACCEPTED = SignatureCheck(Path("/nonexistent/trust-list.json"), dict.fromkeys(AGENCIES, "accept-unsigned"))
"""The migration policy for every agency, with an empty trust list: for tests of what the pipeline
does after the signature check (decoding, versions, links), whose events carry no signature."""


class AgencyKeys:
    """The agencies' signing keys under `state_dir` (as `gdx simulate` keeps them), signing as they
    would and checked as the worker would."""

    def __init__(self, state_dir: Path) -> None:
        self.keys = SigningKeys.of(state_dir.resolve())
        self._signers: dict[str, Signer] = {}

    def signer(self, agency: str) -> Signer:
        if agency not in self._signers:
            self._signers[agency] = self.keys.signer(agency)
        return self._signers[agency]

    def headers(self, agency: str, value: bytes) -> list[tuple[str, bytes | None]]:
        return self.signer(agency).headers(value)

    def check(self) -> SignatureCheck:
        return SignatureCheck(self.keys.trust_list_path)
