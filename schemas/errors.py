"""Typed failures of the contract, each with a stable `reason` code.

The stream processors route a failed event to its dead-letter topic with `reason` as the code, so
these codes are part of the operational contract: never rename one.
"""

from __future__ import annotations


class CodecError(Exception):
    """An event that cannot be turned into a valid record; `reason` is the dead-letter code."""

    reason = "codec-error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


class NotSingleObjectEncoded(CodecError):
    """The bytes lack the Avro single-object marker `C3 01` and an 8-byte fingerprint."""

    reason = "not-single-object"


class NotWireFramed(CodecError):
    """The bytes lack the wire format's magic byte `00` and a 4-byte schema id."""

    reason = "not-wire-framed"


class UnknownSchemaId(CodecError):
    """The schema id of the wire header is one the registry does not hold (or holds unparseable)."""

    reason = "unknown-schema-id"

    def __init__(self, schema_id: int, why: str = "the schema registry holds no schema under it") -> None:
        super().__init__(f"schema id {schema_id}: {why}")
        self.schema_id = schema_id


class UnknownFingerprint(CodecError):
    """The writer schema's fingerprint is in no catalog this consumer knows."""

    reason = "unknown-fingerprint"

    def __init__(self, fingerprint: bytes) -> None:
        super().__init__(f"no schema with CRC-64-AVRO fingerprint {fingerprint.hex()}")
        self.fingerprint = fingerprint


class BodyMismatch(CodecError):
    """The body does not decode with the writer schema its header names (truncated, corrupt, extra bytes)."""

    reason = "body-mismatch"


class NotEncodable(CodecError):
    """A record the producer handed over does not fit the schema it asked for."""

    reason = "not-encodable"


class UnknownSchema(CodecError):
    """A schema name or dataset that the catalog does not hold."""

    reason = "unknown-schema"


class DomainRuleViolation(CodecError):
    """A well-typed event that breaks a rule of the domain (check digit, Buddhist-Era year, ...)."""

    reason = "domain-rule"

    def __init__(self, detail: str, violations: tuple[str, ...] = ()) -> None:
        super().__init__(detail)
        self.violations = violations
