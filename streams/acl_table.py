"""Who may do what on the broker, derived — never hand-written — from the topic catalog, the
consumer registry and the subscriptions (issue 15, item 3).

`acl_table` is a pure function: the same inputs give the same rows, with no broker in sight, so the
rules are pinned by unit tests and `gdx acl apply` only makes the cluster match. Deny by default:
the broker runs the StandardAuthorizer with `allow.everyone.if.no.acl.found=false`, so whatever no
row allows is refused. Every row is an ALLOW; the operator (`gdx-operator`) and the brokers
(`broker`) are super users and get no rows, so no other principal ever holds ALTER_CONFIGS, DELETE,
ALTER or CREATE on any topic, and the dead-letter topics (full payloads) are the operators' alone.

The rules:
- agency-<a>: WRITE, DESCRIBE on its own change topics gdx.<a>.<dataset>.v<N> (literal, one per
  catalog dataset, so a new dataset needs a catalog entry, not a wildcard).
- gdx-worker: READ, DESCRIBE on every change topic; READ on the group
  <prefix>gdx-index; WRITE, DESCRIBE on every dead-letter and notify topic; READ, WRITE, DESCRIBE
  on gdx.audit and WRITE, DESCRIBE on gdx.audit.anchors (each notice it sends is entered in its own
  chain first; reading gdx.audit adds nothing to what the change topics already show it).
- gdx-lookup: READ, WRITE, DESCRIBE on gdx.audit; WRITE, DESCRIBE on gdx.audit.anchors (append
  only: it cannot read, delete or rewrite the heads it anchored); READ, DESCRIBE on gdx.consent.v1
  (it reads gdx.audit and gdx.consent.v1 without a group, by assignment).
- gdx-consent: WRITE, DESCRIBE on gdx.consent.v1 — the one writer.
- consumer-<id> (every registry consumer and every subscriber): READ, DESCRIBE on its own
  gdx.notify.<id>; READ on groups PREFIXED `<prefix>consumer-<id>.`; and READ, DESCRIBE on a
  change topic only where one of its purposes has a legal mandate and lists every field that topic
  carries (see `wire_fields`). The schemas to decode it come from the schema registry, not a topic.
- gdx-monitor (the lag monitor; the alert receiver has no Kafka client): DESCRIBE on every group
  (PREFIXED `<prefix>`, or the wildcard `*` without a prefix) and on the topics groups consume
  (change and notify topics): enough to list the groups, fetch their committed offsets and the end
  offsets, so lag in messages. No READ: lag in seconds reads the record at a group's position, and
  READ on a change topic is every citizen's record; a monitor is not a party that may see them.

Idempotent producers: since Kafka 3.0 (KIP-679) InitProducerId without a transactional id is
allowed to a principal holding WRITE on any topic; the cluster-wide IDEMPOTENT_WRITE is deprecated
and not granted. No client of the project is transactional, so no TRANSACTIONAL_ID rows.

A revoked principal gets no rows at all (not DENY rows: with deny-by-default an absent ALLOW
already refuses, and the table stays one kind of row; its certificate is refused by the TLS layer
anyway).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from linkage.audit import ANCHOR_TOPIC, AUDIT_TOPIC
from linkage.consent import CONSENT_TOPIC
from linkage.consumers import ConsumerRegistry
from linkage.subscriptions import Subscription
from schemas.catalog import SchemaCatalog
from streams.security.principals import (
    CONSENT,
    LOOKUP,
    MONITOR,
    SUPER_USERS,
    WORKER,
    agency_principal,
    consumer_principal,
)
from streams.topic_catalog import INDEX_GROUP, Catalog, dead_letter_topic, notify_topic

TOPIC, GROUP, CLUSTER, TRANSACTIONAL_ID = "TOPIC", "GROUP", "CLUSTER", "TRANSACTIONAL_ID"
LITERAL, PREFIXED = "LITERAL", "PREFIXED"
READ, WRITE, DESCRIBE = "READ", "WRITE", "DESCRIBE"
ALLOW = "ALLOW"

# The principals' names are defined once, with the certificates they name (streams.security).
# SUPER_USERS: the principals the broker's `super.users` names; they need, and get, no rows.
ENTITY_KEY = "entity_key"
PARTIES = "parties"
ENVELOPE_FIELDS = frozenset({ENTITY_KEY, PARTIES})
"""What every change event shows beside its payload: the record key (entity_key) and the IDs of
every party it references (`references`, which the API calls `parties`)."""


def consumer_group_prefix(prefix: str, consumer: str) -> str:
    return f"{prefix}consumer-{consumer}."


@dataclass(frozen=True, order=True)
class AclRow:
    """One binding, in the terms of Kafka's CreateAcls: the principal without its `User:` type."""

    principal: str
    resource_type: str
    resource_name: str
    pattern: str
    operation: str
    permission: str = ALLOW
    host: str = "*"

    def __str__(self) -> str:
        return (
            f"{self.principal:<24} {self.resource_type:<8} {self.pattern:<8} "
            f"{self.resource_name:<46} {self.operation:<9} {self.permission}"
        )


def principals(catalog: Catalog, registry: ConsumerRegistry, subscriptions: Iterable[Subscription]) -> list[str]:
    """Every principal the table speaks for (super users excluded), in a stable order."""
    consumers = sorted(set(registry.consumers) | {s.consumer for s in subscriptions})
    return [
        WORKER,
        LOOKUP,
        CONSENT,
        MONITOR,
        *(agency_principal(a) for a in sorted(catalog.agencies)),
        *(consumer_principal(c) for c in consumers),
    ]


def full_mandate_topics(
    catalog: Catalog, registry: ConsumerRegistry, wire_fields: Mapping[str, Collection[str]]
) -> dict[str, list[str]]:
    """consumer id -> the change topics (catalog names) it may read in whole.

    A change topic shows every field of every version of its dataset to whoever reads it, with the
    record key and the referenced parties' IDs. Reading it is only the least-data answer when one
    purpose, on a legal mandate (no consent could cover a stream of everyone's records), already
    lists all of them: `wire_fields["<agency>.<dataset>"]` (payload fields of every schema version)
    plus entity_key and parties. A dataset whose wire fields are unknown is never granted.
    """
    granted: dict[str, list[str]] = {}
    for consumer in registry.consumers.values():
        topics = []
        for ds in catalog.datasets:
            key = f"{ds.agency}.{ds.name}"
            if key not in wire_fields:
                continue
            needed = set(wire_fields[key]) | ENVELOPE_FIELDS
            if any(p.mandate and needed <= set(p.datasets.get(key, ())) for p in consumer.purposes.values()):
                topics.append(ds.topic)
        if topics:
            granted[consumer.id] = topics
    return granted


def wire_fields(schemas: SchemaCatalog) -> dict[str, frozenset[str]]:
    """ "<agency>.<dataset>" -> the payload fields of every version of its event schema: what a
    reader of the change topic can see (a compacted topic keeps events of old versions for years)."""
    found: dict[str, frozenset[str]] = {}
    for (agency, dataset), name in schemas.datasets.items():
        fields: set[str] = set()
        for known in schemas.versions(name):
            payload = next(f for f in known.schema["fields"] if f["name"] == "payload")
            branches = payload["type"] if isinstance(payload["type"], list) else [payload["type"]]
            for branch in branches:
                if isinstance(branch, dict):
                    fields.update(str(f["name"]) for f in branch.get("fields", []))
        found[f"{agency}.{dataset}"] = frozenset(fields)
    return found


def acl_table(
    catalog: Catalog,
    registry: ConsumerRegistry,
    subscriptions: Iterable[Subscription],
    wire_fields: Mapping[str, Collection[str]],
    prefix: str = "",
    revoked: Collection[str] = frozenset(),
) -> list[AclRow]:
    """The whole ACL table for these registries under topic prefix `prefix`, sorted, without duplicates."""
    subscriptions = tuple(subscriptions)
    rows: set[AclRow] = set()

    def topic(principal: str, name: str, *operations: str, pattern: str = LITERAL) -> None:
        rows.update(AclRow(principal, TOPIC, f"{prefix}{name}", pattern, op) for op in operations)

    change_topics = [ds.topic for ds in catalog.datasets]
    for ds in catalog.datasets:
        topic(agency_principal(ds.agency), ds.topic, WRITE, DESCRIBE)

    for name in change_topics:
        topic(WORKER, name, READ, DESCRIBE)
        topic(WORKER, dead_letter_topic(name), WRITE, DESCRIBE)
    rows.add(AclRow(WORKER, GROUP, f"{prefix}{INDEX_GROUP}", LITERAL, READ))
    topic(WORKER, AUDIT_TOPIC, READ, WRITE, DESCRIBE)
    topic(WORKER, ANCHOR_TOPIC, WRITE, DESCRIBE)

    topic(LOOKUP, AUDIT_TOPIC, READ, WRITE, DESCRIBE)
    topic(LOOKUP, ANCHOR_TOPIC, WRITE, DESCRIBE)
    topic(LOOKUP, CONSENT_TOPIC, READ, DESCRIBE)
    topic(CONSENT, CONSENT_TOPIC, WRITE, DESCRIBE)

    # Kafka refuses an empty PREFIXED name; without a prefix "every group" is the literal wildcard.
    rows.add(AclRow(MONITOR, GROUP, *((prefix, PREFIXED) if prefix else ("*", LITERAL)), DESCRIBE))
    for name in change_topics:
        topic(MONITOR, name, DESCRIBE)

    notified = sorted({s.consumer for s in subscriptions})
    for consumer in notified:
        topic(WORKER, notify_topic(consumer), WRITE, DESCRIBE)
        topic(MONITOR, notify_topic(consumer), DESCRIBE)
    readers = full_mandate_topics(catalog, registry, wire_fields)
    for consumer in sorted(set(registry.consumers) | set(notified)):
        principal = consumer_principal(consumer)
        rows.add(AclRow(principal, GROUP, consumer_group_prefix(prefix, consumer), PREFIXED, READ))
        if consumer in notified:
            topic(principal, notify_topic(consumer), READ, DESCRIBE)
        for name in readers.get(consumer, []):
            topic(principal, name, READ, DESCRIBE)

    return sorted(row for row in rows if row.principal not in revoked and row.principal not in SUPER_USERS)
