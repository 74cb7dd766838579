"""Proof of the data subject: a person's access log answers only the person.

A consumer that shows people their own access log (the citizen portal) signs, once a person has
signed in to it, a short-lived token for that person: a JWT (EdDSA, Ed25519) whose `sub` is the
citizen ID, audience `gdx-lookup`, at most MAX_LIFETIME_S between `iat` and `exp`, with the
signing key's id as `kid`. Its public keys are registered for that consumer on the subject-token
trust list (owner = the consumer's id), so a key of one consumer cannot speak for another's
users, and the portal's API key alone — a secret of the portal, not of the person — proves nothing
about who is asking.
"""

from __future__ import annotations

import time

import jwt

from schemas.event_signatures import Signer, TrustedKey
from schemas.trust_list_file import TrustListFile

AUDIENCE = "gdx-lookup"
ALGORITHM = "EdDSA"
MAX_LIFETIME_S = 300
REASON = "subject_not_proven"


class SubjectNotProven(Exception):
    """The request does not prove the data subject: the HTTP status and what is wrong."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def issue(signer: Signer, subject_id: str, lifetime_s: float = MAX_LIFETIME_S, at_s: float | None = None) -> str:
    """The token a consumer gives its signed-in person (the portal's side)."""
    issued = int(at_s if at_s is not None else time.time())
    claims = {"sub": subject_id, "aud": AUDIENCE, "iat": issued, "exp": issued + int(lifetime_s)}
    return jwt.encode(claims, signer.private_key, algorithm=ALGORITHM, headers={"kid": signer.key_id})


class SubjectTokens:
    """The API's check of a subject token against the keys registered for the calling consumer."""

    def __init__(self, keys: TrustListFile) -> None:
        self.keys = keys

    def prove(self, consumer_id: str, subject_id: str, token: str | None) -> None:
        """Return when `token` proves `subject_id` to `consumer_id`; SubjectNotProven otherwise."""
        if not token:
            raise SubjectNotProven(
                401, "the data subject's token is missing (X-Subject-Token): the API key is not enough"
            )
        try:
            key_id = jwt.get_unverified_header(token).get("kid")
        except jwt.InvalidTokenError as exc:
            raise SubjectNotProven(401, f"the subject token is not a JWT ({exc})") from None
        key = self._key(str(key_id), consumer_id)
        try:
            claims = jwt.decode(
                token,
                key.public_key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                options={"require": ["sub", "iat", "exp"]},
            )
        except jwt.ExpiredSignatureError:
            raise SubjectNotProven(401, "the subject token has expired: sign the person in again") from None
        except jwt.InvalidTokenError as exc:
            raise SubjectNotProven(401, f"the subject token is not valid ({exc})") from None
        if claims["exp"] - claims["iat"] > MAX_LIFETIME_S:
            raise SubjectNotProven(401, f"the subject token lives longer than {MAX_LIFETIME_S} s")
        if claims["sub"] != subject_id:
            raise SubjectNotProven(403, "the subject token proves another person: a person sees only their own log")

    def _key(self, key_id: str, consumer_id: str) -> TrustedKey:
        key = self.keys.key(key_id)
        if key is None or key.agency != consumer_id:
            raise SubjectNotProven(401, f"the subject token's key {key_id!r} is not registered for {consumer_id}")
        if not key.valid_at(int(time.time() * 1000)):
            raise SubjectNotProven(401, f"the subject token's key {key_id!r} is no longer (or not yet) valid")
        return key
