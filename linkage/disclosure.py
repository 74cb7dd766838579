"""One record of a disclosure decision, whatever asked for it: a lookup, a verification, a view of
the access log, or a notification. The audit record and the data subject's access-log row are
made here, so every kind of disclosure is on the record the same way and reads the same way."""

from __future__ import annotations

import json
from typing import Any

from linkage.audit import ACCESS


def access_entry(
    *,
    at_ms: int,
    request_id: str,
    consumer: str,
    purpose: str,
    operation: str,
    subject: tuple[str, str],
    datasets: list[str],
    status: int,
    reason: str | None,
    basis: str | None,
    **extra: Any,
) -> dict[str, Any]:
    """The audit record's entry (chained and signed by the writer); `subject` is (kind, id)."""
    kind, subject_id = subject
    return {
        "kind": ACCESS,
        "time_ms": at_ms,
        "request_id": request_id,
        "consumer": consumer,
        "purpose": purpose[:64],
        "operation": operation,
        "subject": {"kind": kind, "id": subject_id[:32]},
        "datasets": datasets,
        "decision": "allow" if status == 200 else "deny",
        "status": status,
        "reason": reason,
        "basis": basis,
        **extra,
    }


def access_row(entry: dict[str, Any], written: tuple[int, int]) -> dict[str, Any]:
    """The subject's access-log row for an audited entry, pointing at its audit record."""
    partition, offset = written
    return {
        "subject_id": entry["subject"]["id"],
        "request_id": entry["request_id"],
        "time_ms": entry["time_ms"],
        "consumer": entry["consumer"],
        "purpose": entry["purpose"],
        "operation": entry["operation"],
        "datasets": json.dumps(entry["datasets"]),
        "decision": entry["decision"],
        "reason": entry["reason"],
        "audit_partition": partition,
        "audit_offset": offset,
    }
