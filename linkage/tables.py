"""The linkage index's tables (SQLAlchemy Core), shared by the store, the migrations and the tests.

- `records`: the latest applied version of every entity of every dataset, with its provenance
  (agency, dataset code, entity version, event id, trace id, source, publish and applied time).
  The golden person record is the civil registry's `dopa.person` row; other views join to it.
- `links`: who a record names and how (director of, owner of a share, possessor, holder, lives
  at, ...), replaced whenever a newer version of the record is applied. A link whose party has no
  record yet is pending; it resolves by itself when the party's record arrives.
- `pending_links`: the links that are pending now, kept up to date by every batch
  (linkage/pending_links.py), so their count and oldest age never need a scan of all links.
- `version_gaps`: an entity version applied while an earlier one was never seen.
- `link_history`: links a newer version of their record replaced, with the source-time span they
  held for, kept for the datasets a subscription's condition reads: Kafka orders changes within a
  partition only, so whether a person owned a vehicle when they died must be asked of source
  time, not of the order the worker met the death and the vehicle's versions in.
- `notify_outbox`: notifications for subscribed consumers, written with the change that caused
  them and drained to `gdx.notify.<consumer>` afterwards, so none is lost to a crash in between.
- `notified`: which consumer was told of which change about which party, so a condition met only
  when a late link arrives is told once, however many such links arrive.
- `consents`: the latest state of every consent record of `gdx.consent.v1` (keyed by consent id),
  with when a one-time consent was used up by the lookup it allowed.
- `access_log`: every lookup about a data subject, allowed or denied, written once its audit record
  is acknowledged on `gdx.audit` (partition, offset), so the subject's view is a query.

Times are UTC epoch milliseconds (BIGINT), the same unit as the events' timestamp-millis.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from schemas.models.common import ENTITY_KEY_MAX_LENGTH

metadata = MetaData()

records = Table(
    "records",
    metadata,
    Column("dataset", String(64), primary_key=True, doc="<agency>.<dataset>, e.g. dopa.person"),
    Column("entity_key", String(ENTITY_KEY_MAX_LENGTH), primary_key=True),
    Column("agency", String(8), nullable=False),
    Column("dataset_code", Integer, nullable=False),
    Column("entity_version", BigInteger, nullable=False),
    Column("change_type", String(8), nullable=False),
    Column("deleted", Boolean, nullable=False),
    Column("payload", Text, nullable=True, doc="JSON: dates ISO, decimals as strings"),
    Column("event_id", String(36), nullable=False),
    Column("trace_id", String(32), nullable=False),
    Column("source_ms", BigInteger, nullable=False),
    Column("published_ms", BigInteger, nullable=False),
    Column("applied_ms", BigInteger, nullable=False),
    Column("signed_by", String(64), nullable=True, doc="id of the agency key that signed this version"),
)

links = Table(
    "links",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("dataset", String(64), nullable=False),
    Column("entity_key", String(ENTITY_KEY_MAX_LENGTH), nullable=False),
    Column("relation", String(32), nullable=False),
    Column("party_kind", String(16), nullable=False, doc="citizen, juristic or house"),
    Column("party_id", String(32), nullable=False),
    Column("share", String(32), nullable=True, doc="fraction or share count where the relation has one"),
    Column("linked_ms", BigInteger, nullable=False),
    Index("ix_links_party", "party_kind", "party_id"),
    Index("ix_links_record", "dataset", "entity_key"),
)

pending_links = Table(
    "pending_links",
    metadata,
    Column(
        "link_id",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=False,
        doc="links.id of the pending link",
    ),
    Column("dataset", String(64), nullable=False),
    Column("entity_key", String(ENTITY_KEY_MAX_LENGTH), nullable=False),
    Column("party_kind", String(16), nullable=False),
    Column("party_id", String(32), nullable=False),
    Column("linked_ms", BigInteger, nullable=False),
    Index("ix_pending_links_record", "dataset", "entity_key"),
    Index("ix_pending_links_party", "party_kind", "party_id"),
)

version_gaps = Table(
    "version_gaps",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("dataset", String(64), nullable=False),
    Column("entity_key", String(ENTITY_KEY_MAX_LENGTH), nullable=False),
    Column("held_version", BigInteger, nullable=True),
    Column("applied_version", BigInteger, nullable=False),
    Column("recorded_ms", BigInteger, nullable=False),
    Index("ix_version_gaps_ms", "recorded_ms"),
)

link_history = Table(
    "link_history",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("dataset", String(64), nullable=False),
    Column("entity_key", String(ENTITY_KEY_MAX_LENGTH), nullable=False),
    Column("relation", String(32), nullable=False),
    Column("party_kind", String(16), nullable=False),
    Column("party_id", String(32), nullable=False),
    Column("valid_from_ms", BigInteger, nullable=False, doc="source time of the version that stated the link"),
    Column("valid_to_ms", BigInteger, nullable=False, doc="source time of the version that replaced it"),
    Index("ix_link_history_party", "party_kind", "party_id"),
    Index("ix_link_history_to", "valid_to_ms"),
)

notify_outbox = Table(
    "notify_outbox",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("consumer", String(64), nullable=False),
    Column("message_key", String(64), nullable=False),
    Column("message", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    sqlite_autoincrement=True,
)
"""On SQLite with AUTOINCREMENT, so an id is never used twice: a worker forgets the notices it
sent by id, and one that read a row another worker sent and forgot meanwhile would otherwise
delete a newer notice queued under the same id (PostgreSQL's sequences never reuse one)."""

notified = Table(
    "notified",
    metadata,
    Column("consumer", String(64), primary_key=True),
    Column("event_id", String(36), primary_key=True, doc="the change the consumer was told of"),
    Column("party_id", String(32), primary_key=True),
    Column("notified_ms", BigInteger, nullable=False),
    Index("ix_notified_ms", "notified_ms"),
)

consents = Table(
    "consents",
    metadata,
    Column("consent_id", String(64), primary_key=True),
    Column("subject_id", String(13), nullable=False, doc="citizen or juristic ID of the person consenting"),
    Column("consumer", String(64), nullable=False),
    Column("purpose", String(64), nullable=False),
    Column("datasets", Text, nullable=False, doc="JSON list of <agency>.<dataset> the consent covers"),
    Column("kind", String(16), nullable=False, doc="one-time or periodic"),
    Column("granted_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Column("revoked_ms", BigInteger, nullable=True),
    Column("used_ms", BigInteger, nullable=True, doc="when a one-time consent was used up"),
    Column("applied_ms", BigInteger, nullable=False),
    Index("ix_consents_subject", "subject_id", "consumer", "purpose"),
)

# Every consent id ever revoked: a later grant under one is ignored, whatever the compacted topic
# still holds for it.
consent_revocations = Table(
    "consent_revocations",
    metadata,
    Column("consent_id", String(64), primary_key=True),
    Column("revoked_ms", BigInteger, nullable=False, doc="when the person revoked it (the signed record's time)"),
    Column("applied_ms", BigInteger, nullable=False),
)

access_log = Table(
    "access_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("subject_id", String(13), nullable=False),
    Column("request_id", String(36), nullable=False),
    Column("time_ms", BigInteger, nullable=False),
    Column("consumer", String(64), nullable=False),
    Column("purpose", String(64), nullable=False),
    Column("operation", String(16), nullable=False),
    Column("datasets", Text, nullable=False, doc="JSON list of the datasets answered (or asked for, when denied)"),
    Column("decision", String(8), nullable=False, doc="allow or deny"),
    Column("reason", String(32), nullable=True),
    Column("audit_partition", Integer, nullable=False),
    Column("audit_offset", BigInteger, nullable=False),
    Index("ix_access_log_subject", "subject_id", "time_ms"),
)

KEPT_TABLES = (consents, consent_revocations, access_log, notify_outbox, notified)
"""State no change topic holds — which one-time consents were used up and which consent ids were
ever revoked, who looked a subject up, which notices are unsent and who was told what — so a
rebuild keeps it; every other table is a
function of the change topics, which a replay restores."""
REPLAYED_TABLES = tuple(table for table in metadata.sorted_tables if table not in KEPT_TABLES)
