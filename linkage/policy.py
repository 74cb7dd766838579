"""Access policy of the lookup service: deny by default, and least data in every answer.

A request names a purpose. The purpose must be registered for the consumer and allow the
operation; then either a legal mandate of that purpose or a live consent of the data subject for
that consumer and purpose must cover it, a consent counting for no longer after its grant than the
purpose's `max_consent_days`, whatever expiry it states. What is answered is the purpose's
datasets, narrowed to those the consent covers, and of each record only the fields the purpose lists (the record's
entity key, relation and share being fields too).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from linkage.consent import ConsentStore
from linkage.consumers import Consumer
from linkage.index_store import DAY_MS
from linkage.link_rules import PARTY_DATASETS

PERSON_DATASET = PARTY_DATASETS["citizen"]
PARTIES_FIELD = "parties"
RECORD_FIELDS = ("entity_key", "relation", "share")
"""What the index knows of a record beside its payload. A purpose lists them like payload fields:
a linked record's entity key is an identifier of its own (a vehicle's chassis number), and its
relation and share say what the person holds, so least data leaves them out unless listed."""


@dataclass(frozen=True)
class Decision:
    """Allowed (with what may be seen) or denied (with the HTTP status and reason words)."""

    status: int
    reason: str | None = None  # a LOOKUP_ERROR_REASONS word when denied
    detail: str = ""
    consent_reason: str | None = None  # a CONSENT_DENIAL_REASONS word for consent denials
    fields: dict[str, tuple[str, ...]] = field(default_factory=dict)
    basis: str = ""  # "mandate: ..." or "consent: <id>"
    one_time_consent: str | None = None

    @property
    def allowed(self) -> bool:
        return self.status == 200


def _deny_consent(reason: str, detail: str) -> Decision:
    return Decision(403, "no_consent", detail, consent_reason=reason)


def authorize(
    consumer: Consumer,
    purpose_name: str,
    operation: str,
    subject_id: str | None,
    consents: ConsentStore,
    at_ms: int,
    required: frozenset[str] = frozenset(),
) -> Decision:
    """Decide one request. `required`: datasets the operation cannot do without: the registry of the
    person or business looked up, so a purpose never reaches a subject through side records only."""
    purpose = consumer.purposes.get(purpose_name)
    if purpose is None:
        return Decision(403, "purpose_not_allowed", f"purpose {purpose_name!r} is not registered for {consumer.id}")
    if operation not in purpose.operations:
        return Decision(403, "purpose_not_allowed", f"purpose {purpose_name!r} does not allow {operation}")
    missing = required - purpose.datasets.keys()
    if missing:
        return Decision(403, "purpose_not_allowed", f"purpose {purpose_name!r} does not cover {sorted(missing)}")
    if purpose.mandate:
        return Decision(200, fields=dict(purpose.datasets), basis=f"mandate: {purpose.mandate}")
    if subject_id is None:
        return _deny_consent("missing", "this purpose needs the person's consent")
    consent = consents.check(subject_id, consumer.id, purpose_name, at_ms, int(purpose.max_consent_days * DAY_MS))
    if consent.reason is not None:
        return _deny_consent(
            consent.reason,
            f"no valid consent of the data subject for {consumer.id}/{purpose_name}: "
            f"{consent.reason.replace('_', ' ')}",
        )
    covered = {d: f for d, f in purpose.datasets.items() if d in consent.datasets}
    if not covered or required - covered.keys():
        return _deny_consent("data_not_covered", "the consent does not cover the datasets this request needs")
    return Decision(
        200,
        fields=covered,
        basis=f"consent: {consent.consent_id}",
        one_time_consent=consent.consent_id if consent.one_time else None,
    )


def _record(record: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    payload = record.get("payload") or {}
    kept: dict[str, Any] = {
        "dataset": record["dataset"],
        "fields": {name: payload[name] for name in fields if name in payload},
        "provenance": record["provenance"],
    }
    kept.update({name: record[name] for name in RECORD_FIELDS if name in fields and name in record})
    if PARTIES_FIELD in fields:
        kept["parties"] = record.get("parties", [])
    return kept


def least_data(view: dict[str, Any], fields: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """The party view cut down to the permitted datasets and fields; status only where its registry is permitted."""
    own = view.get("record")
    answer: dict[str, Any] = {
        "kind": view["kind"],
        "id": view["id"],
        "status": view["status"] if PARTY_DATASETS[view["kind"]] in fields else None,
        "record": _record(own, fields[own["dataset"]]) if own and own["dataset"] in fields else None,
        "linked": [
            _record(item, fields[item["dataset"]]) for item in view.get("linked", []) if item["dataset"] in fields
        ],
    }
    return answer
