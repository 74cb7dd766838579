"""Notifications under the lookup policy: a notice is a disclosure nobody asked for at that moment,
so it needs the same authority as a lookup, and leaves the same record.

A subscription names the consumer's purpose that authorizes it; at start every subscription's
purpose must exist, allow `notify` and cover every dataset the subscription watches or names as
its condition (refused in one line otherwise). Each notice is then decided when it is sent, by
`policy.authorize` like a request: the purpose's mandate allows it, or else a live consent of the
person for that consumer and purpose covering every dataset the notice discloses. An allowed
notice is cut to the purpose's fields (a linked record's entity key, relation and share are
fields like any other); a denied one is not sent. Both are audited, and shown in the person's
access log, under the notice's own id.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from foundation.errors import GdxError
from linkage.consent import ConsentStore
from linkage.consumers import NOTIFY, ConsumerRegistry
from linkage.disclosure import access_entry, access_row
from linkage.index_store import notice_id
from linkage.policy import RECORD_FIELDS, Decision, authorize
from linkage.subscriptions import Subscription
from monitoring import metrics

PERSON = "citizen"  # the party kind whose access log a notice appears in


def check_subscriptions(subscriptions: Iterable[Subscription], registry: ConsumerRegistry) -> None:
    """Refuse, in one line, the first subscription no purpose of its consumer authorizes."""
    for s in subscriptions:
        consumer = registry.consumers.get(s.consumer)
        purpose = consumer.purposes.get(s.purpose) if consumer else None
        if consumer is None or purpose is None:
            raise GdxError(
                f"subscription of {s.consumer} names purpose {s.purpose!r}, which is not registered for it",
                "register the purpose in the consumer registry (linkage/consumers.toml), or remove the subscription",
            )
        uncovered = sorted((s.datasets | s.linked_to) - purpose.datasets.keys())
        if NOTIFY not in purpose.operations or uncovered:
            why = f"does not allow {NOTIFY}" if NOTIFY not in purpose.operations else f"does not cover {uncovered}"
            raise GdxError(
                f"subscription of {s.consumer}: purpose {s.purpose!r} {why}",
                "give the purpose the notify operation and every dataset the subscription names, or change it",
            )


@dataclass(frozen=True)
class NoticeDecision:
    """What to do with one queued notice: send `message` (None: denied) and audit `entry`."""

    entry: dict[str, Any]
    message: bytes | None

    def access_row(self, written: tuple[int, int]) -> dict[str, Any] | None:
        """The person's access-log row; None when the party is not a person (a business)."""
        return access_row(self.entry, written) if self.entry["subject"]["kind"] == PERSON else None


def cut(notice: dict[str, Any], fields: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """The notice with only what the purpose lists: its own record's entity key, and of each
    linked record its dataset and the listed record fields."""
    kept = {name: value for name, value in notice.items() if name not in ("entity_key", "linked")}
    if "entity_key" in fields.get(notice["dataset"], ()):
        kept["entity_key"] = notice["entity_key"]
    kept["linked"] = [
        {"dataset": item["dataset"]}
        | {name: item[name] for name in RECORD_FIELDS if name in item and name in fields.get(item["dataset"], ())}
        for item in notice["linked"]
        if item["dataset"] in fields
    ]
    return kept


class NoticePolicy:
    def __init__(
        self, registry: ConsumerRegistry, consents: ConsentStore, subscriptions: Iterable[Subscription] = ()
    ) -> None:
        self.registry = registry
        self.consents = consents
        # A notice queued before notices named their purpose names its subscription's description.
        self.queued_before = {(s.consumer, s.description): s.purpose for s in subscriptions}

    def decide_all(self, messages: Iterable[str], at_ms: int) -> list[NoticeDecision]:
        """Decide queued notices (may read the consents table: call it off the event loop)."""
        return [self.decide(message, at_ms) for message in messages]

    def decide(self, message: str, at_ms: int) -> NoticeDecision:
        notice = json.loads(message)
        party, consumer_id = notice["party"], notice["consumer"]
        # Queued by an earlier version: the purpose of its subscription, else none (refused and
        # audited, never a crash).
        purpose = notice.get("purpose") or self.queued_before.get((consumer_id, notice.get("subscription")), "")
        disclosed = sorted({notice["dataset"]} | {item["dataset"] for item in notice["linked"]})
        consumer = self.registry.consumers.get(consumer_id)
        if consumer is None:
            decision = Decision(403, "purpose_not_allowed", f"consumer {consumer_id} is no longer registered")
        else:
            subject = party["id"] if party["kind"] == PERSON else None
            decision = authorize(
                consumer, purpose, NOTIFY, subject, self.consents, at_ms, required=frozenset(disclosed)
            )
        if decision.one_time_consent is not None:
            decision = Decision(403, "no_consent", "a one-time consent covers one request, not a notice", "missing")
        if consumer is not None and decision.consent_reason is not None:
            metrics.CONSENT_DENIALS.labels(consumer=consumer.id, purpose=purpose, reason=decision.consent_reason).inc()
        entry = access_entry(
            at_ms=at_ms,
            request_id=notice.get("notice_id") or notice_id(consumer_id, notice["event_id"], party["id"]),
            consumer=consumer_id,
            purpose=purpose,
            operation=NOTIFY,
            subject=(party["kind"], party["id"]),
            datasets=disclosed,
            status=decision.status,
            reason=decision.reason,
            basis=decision.basis or None,
            event_id=notice["event_id"],
        )
        if not decision.allowed:
            return NoticeDecision(entry, None)
        sent = json.dumps(cut(notice, decision.fields), ensure_ascii=False, sort_keys=True)
        return NoticeDecision(entry, sent.encode())
