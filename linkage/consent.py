"""Consent records: the person's permission for one consumer and purpose to see some datasets.

A consent travels as a JSON record on the compacted topic `gdx.consent.v1`, keyed by its consent
id (a record keyed otherwise is skipped). Only the consent service's principal may write the topic
(the ACLs), and every record is signed by the consent service (Ed25519 over the canonical JSON,
`key_id` + `signature`, the key's owner `consent` on the consent trust list) and names the
authentication event in which the person acted (`auth_event_id`): the API applies a record only
when its signature verifies, so neither a stolen principal nor an insider with the topic can make
up a consent. A revocation is a signed record too (`ConsentRevocation`, or a consent re-sent with
status REVOKED); a tombstone, which cannot be signed, is ignored. Revocation is final: the revoked
id is kept (`consent_revocations`), and a later grant under it is ignored.

The lookup process applies the topic to the `consents` table (see `ConsentFollower`) and checks
requests against that table; what a consent allows is bounded by its purpose too (the datasets
both list, for at most the purpose's `max_consent_days` from the grant).

A one-time consent is used up by the first answer it allows: the `used_ms` update is guarded so
that of two concurrent lookups only one wins, and given back when that answer does not leave.
Re-applying the same consent (a replay of the topic on start) keeps `used_ms`, so a restart never
revives a used consent.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Self

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from cryptography.exceptions import InvalidSignature
from pydantic import BaseModel, Field, ValidationError, field_validator
from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite

from foundation.errors import GdxError
from foundation.kafka_clients import KafkaClients
from foundation.redaction import redact_ids
from linkage.audit import canonical
from linkage.index_store import now_ms
from linkage.tables import consent_revocations, consents
from schemas.event_signatures import Signer
from schemas.identifiers import thai_id_problem
from schemas.trust_list_file import TrustListFile

log = logging.getLogger("gdx.consent")

CONSENT_TOPIC = "gdx.consent.v1"
CONSENT_KEY_OWNER = "consent"
"""The owner of the consent service's keys on the consent trust list."""
DOMAIN = b"gdx-consent-v1:"


class _Signed(BaseModel):
    key_id: str | None = None
    signature: str | None = None

    def signed_bytes(self) -> bytes:
        return DOMAIN + canonical(self.model_dump(exclude={"signature"}))

    def signed_with(self, signer: Signer) -> Self:
        """This record as the consent service sends it: signed with its current key."""
        keyed = self.model_copy(update={"key_id": signer.key_id, "signature": None})
        signature = base64.b64encode(signer.private_key.sign(keyed.signed_bytes())).decode()
        return keyed.model_copy(update={"signature": signature})

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode("utf-8")


class ConsentRecord(_Signed):
    """One consent as it travels on the topic."""

    consent_id: str = Field(min_length=1, max_length=64)
    subject_id: str
    consumer: str = Field(min_length=1, max_length=64)
    purpose: str = Field(min_length=1, max_length=64)
    datasets: list[str] = Field(min_length=1)
    kind: Literal["one-time", "periodic"]
    granted_ms: int
    expires_ms: int
    auth_event_id: str = Field(min_length=1, max_length=128)
    status: Literal["GRANTED", "REVOKED"] = "GRANTED"

    @field_validator("subject_id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        problem = thai_id_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @property
    def time_ms(self) -> int:
        return self.granted_ms

    @property
    def revoked(self) -> bool:
        return self.status == "REVOKED"


class ConsentRevocation(_Signed):
    """The person's revocation of a consent, by its id alone (the consent service need not repeat it)."""

    consent_id: str = Field(min_length=1, max_length=64)
    status: Literal["REVOKED"] = "REVOKED"
    revoked_ms: int
    auth_event_id: str = Field(min_length=1, max_length=128)

    @property
    def time_ms(self) -> int:
        return self.revoked_ms

    @property
    def revoked(self) -> bool:
        return True


Consent = ConsentRecord | ConsentRevocation


class UnknownConsentKey(GdxError):
    """A record under a key the consent trust list does not hold (yet): applying the topic stops
    there, in readiness, until the trust list has it."""


class ConsentSignatures:
    """Checks that the consent service signed a record, against the consent trust list (followed
    as its file changes, so a rotated key is trusted without a restart)."""

    def __init__(self, trust: TrustListFile) -> None:
        self.trust = trust

    def problem(self, record: Consent) -> str | None:
        """Why the record does not prove the consent service wrote it, or None when it does. A key
        the trust list does not hold even after a fresh look raises UnknownConsentKey: a record
        skipped for it would stay skipped (a revocation with it), so the follower waits instead."""
        if record.signature is None or record.key_id is None:
            return "not signed"
        key = self.trust.key(record.key_id, force=True)
        if key is None:
            raise UnknownConsentKey(
                f"consent {record.consent_id} is signed by key {record.key_id!r}, which the consent trust list "
                f"{self.trust.path} does not hold",
                "give the lookup API the consent service's current trust list (GDX_CONSENT_TRUST_LIST_FILE)",
            )
        if key.agency != CONSENT_KEY_OWNER:
            return f"signed by key {record.key_id!r}, which is not a consent-service key"
        if not key.valid_at(record.time_ms):
            return f"signed by key {record.key_id!r} outside its validity period"
        try:
            key.public_key.verify(base64.b64decode(record.signature, validate=True), record.signed_bytes())
        except (InvalidSignature, binascii.Error, ValueError):
            return f"its signature under key {record.key_id!r} does not match its content"
        return None


def read_consent(key: str, value: bytes | None, signatures: ConsentSignatures) -> Consent | None:
    """The record, once it is well formed, keyed by its id and signed by the consent service;
    otherwise None, and a log line saying why (a record the API will not apply is not ours to fix).
    A key the trust list does not hold raises UnknownConsentKey (see ConsentSignatures)."""
    if value is None:
        log.warning("consent tombstone ignored: revocations are signed records", extra={"key": redact_ids(key)})
        return None
    try:
        raw = json.loads(value)
        model: type[Consent] = ConsentRecord if isinstance(raw, dict) and "subject_id" in raw else ConsentRevocation
        record = model.model_validate(raw)
    except (ValueError, ValidationError) as exc:
        log.warning("malformed consent record skipped", extra={"key": redact_ids(key), "error": redact_ids(str(exc))})
        return None
    if record.consent_id != key:  # a compacted topic keeps one record per key: a record must be keyed by its id
        log.warning(
            "consent record skipped: its key is not its consent_id",
            extra={"key": redact_ids(key), "consent_id": redact_ids(record.consent_id)},
        )
        return None
    if problem := signatures.problem(record):
        log.warning("consent record not applied: " + problem, extra={"consent_id": redact_ids(record.consent_id)})
        return None
    return record


@dataclass(frozen=True)
class ConsentDecision:
    """The outcome of a consent check: the consent that allows, or the denial reason."""

    consent_id: str | None
    datasets: frozenset[str]
    reason: str | None  # a CONSENT_DENIAL_REASONS word when denied
    one_time: bool = False


class ConsentStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    def apply(self, record: Consent) -> None:
        """Apply one verified record (`read_consent`): a grant under a revoked id is ignored."""
        applied = now_ms()
        with self.engine.begin() as conn:
            if record.revoked:
                self._revoke(conn, record.consent_id, record.time_ms, applied)
            if isinstance(record, ConsentRevocation):
                return
            if not record.revoked and self._was_revoked(conn, record.consent_id):
                log.warning(
                    "consent grant ignored: its id was revoked, and a revocation is final",
                    extra={"consent_id": redact_ids(record.consent_id)},
                )
                return
            row = {
                "consent_id": record.consent_id,
                "subject_id": record.subject_id,
                "consumer": record.consumer,
                "purpose": record.purpose,
                "datasets": json.dumps(sorted(record.datasets)),
                "kind": record.kind,
                "granted_ms": record.granted_ms,
                "expires_ms": record.expires_ms,
                "revoked_ms": applied if record.revoked else None,
                "applied_ms": applied,
            }
            statement = self._insert(consents).values(row)
            kept = {"consent_id", "revoked_ms"}  # a revoked consent re-applied stays revoked since its revocation
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=[consents.c.consent_id],
                    set_={k: statement.excluded[k] for k in row if k not in kept},
                    # An older signed version sent again (a replay) does not undo a newer one.
                    where=consents.c.granted_ms <= statement.excluded.granted_ms,
                )
            )

    def _revoke(self, conn: Connection, consent_id: str, revoked_ms: int, applied_ms: int) -> None:
        revoked = {"consent_id": consent_id, "revoked_ms": revoked_ms, "applied_ms": applied_ms}
        conn.execute(self._insert(consent_revocations).values(revoked).on_conflict_do_nothing())
        conn.execute(
            update(consents)
            .where(consents.c.consent_id == consent_id, consents.c.revoked_ms.is_(None))
            .values(revoked_ms=applied_ms, applied_ms=applied_ms)
        )

    @staticmethod
    def _was_revoked(conn: Connection, consent_id: str) -> bool:
        found = conn.execute(
            select(consent_revocations.c.consent_id).where(consent_revocations.c.consent_id == consent_id)
        )
        return found.first() is not None

    def check(
        self, subject_id: str, consumer: str, purpose: str, at_ms: int, max_age_ms: int | None = None
    ) -> ConsentDecision:
        """The best consent of this subject for this consumer and purpose, or why there is none.

        Among several, a live one wins (one granted more than `max_age_ms` ago, the purpose's
        limit, is expired whatever it states); the reason of a denial is the most telling one
        found (revoked over expired over used-up)."""
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    select(consents).where(consents.c.subject_id == subject_id, consents.c.consumer == consumer)
                )
                .mappings()
                .all()
            )
        if not rows:
            return ConsentDecision(None, frozenset(), "missing")
        for_purpose = [r for r in rows if r["purpose"] == purpose]
        if not for_purpose:
            return ConsentDecision(None, frozenset(), "purpose_mismatch")
        oldest_ms = at_ms - max_age_ms if max_age_ms is not None else None
        live = [
            r
            for r in for_purpose
            if r["revoked_ms"] is None
            and r["expires_ms"] > at_ms
            and r["used_ms"] is None
            and (oldest_ms is None or r["granted_ms"] >= oldest_ms)
        ]
        if live:
            best = max(live, key=lambda r: (r["kind"] == "periodic", r["expires_ms"]))
            return ConsentDecision(
                best["consent_id"],
                frozenset(json.loads(best["datasets"])),
                None,
                one_time=best["kind"] == "one-time",
            )
        if any(r["revoked_ms"] is not None for r in for_purpose):
            return ConsentDecision(None, frozenset(), "revoked")
        return ConsentDecision(None, frozenset(), "expired")

    def use_up(self, consent_id: str, at_ms: int) -> bool:
        """Mark a one-time consent used; False when another request used it first."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(consents)
                .where(consents.c.consent_id == consent_id, consents.c.used_ms.is_(None))
                .values(used_ms=at_ms)
            )
        return done.rowcount == 1

    def give_back(self, consent_id: str, used_ms: int) -> None:
        """Undo `use_up` of a request whose answer did not leave (not found, audit unavailable):
        only an answer spends a one-time consent. Guarded by `used_ms`, so it undoes that use only."""
        with self.engine.begin() as conn:
            conn.execute(
                update(consents)
                .where(consents.c.consent_id == consent_id, consents.c.used_ms == used_ms)
                .values(used_ms=None)
            )


class ConsentFollower:
    """Follows `gdx.consent.v1` from its beginning and applies every record to the consents table.

    Reading the whole compacted topic on start (no committed offsets) gives a rebuilt or fresh
    index every consent back; only records the consent service signed are applied, and the ids
    revoked before stay revoked. `caught_up` tells readiness whether the start-up replay reached
    the end offsets seen at start.
    """

    def __init__(
        self,
        store: ConsentStore,
        kafka: KafkaClients,
        topic: str,
        signatures: ConsentSignatures,
        consumer_class: type[AIOKafkaConsumer] = AIOKafkaConsumer,
    ) -> None:
        """`consumer_class`: the Kafka consumer to follow with (a subclass can delay the broker's
        answers, as a slow broker would)."""
        self.store = store
        self.kafka = kafka
        self.topic = topic
        self.signatures = signatures
        self.consumer_class = consumer_class
        self.caught_up = asyncio.Event()
        self.error: str | None = "not started"
        self._consumer: AIOKafkaConsumer | None = None
        self._applied: dict[TopicPartition, int] = {}  # next offset to apply, per partition
        self._progress = asyncio.Condition()

    async def current(self, timeout_s: float) -> bool:
        """Wait until every consent record the broker holds now is applied; False after `timeout_s`
        in all (the round trip and the wait for the follower share one deadline).

        Called before a consent-based decision, so a grant or revocation acknowledged before the
        request arrived decides it: "the next request" in the strict sense, at the cost of one
        end-offsets round trip to the broker."""
        consumer = self._consumer
        if consumer is None or not self.caught_up.is_set():
            return False
        try:
            async with asyncio.timeout(timeout_s):
                ends = await consumer.end_offsets(list(consumer.assignment()))
                async with self._progress:
                    await self._progress.wait_for(
                        lambda: all(self._applied.get(tp, 0) >= end for tp, end in ends.items())
                    )
        except (KafkaError, TimeoutError):
            return False
        return True

    def problem(self) -> str | None:
        """Why consent-based requests cannot be decided now (for readiness), or None."""
        if self.error is not None:
            return self.error
        return None if self.caught_up.is_set() else f"replaying {self.topic}"

    async def run(self) -> None:
        """Consume until cancelled; a broker or database outage is retried (the topic replayed from
        its beginning, which re-applies every record idempotently), never fatal to the API."""
        while True:
            consumer = self.kafka.consumer(
                self.topic,
                kind=self.consumer_class,
                group_id=None,
                auto_offset_reset="earliest",
                enable_auto_commit=False,
                fetch_max_wait_ms=50,
            )
            try:
                await consumer.start()
                self._consumer = consumer
                await self._consume(consumer)
            except Exception as exc:  # noqa: BLE001 — the broker or the consents table failed: retry, never die
                what = (
                    "consent topic unreadable"
                    if isinstance(exc, KafkaError | OSError)
                    else "consents cannot be applied to the index"
                )
                self.error = str(exc) if isinstance(exc, UnknownConsentKey) else f"{what} ({type(exc).__name__})"
                log.warning("consent follower failed, retrying", extra={"error": repr(exc)})
                await asyncio.sleep(1.0)
            finally:
                self._consumer = None
                await consumer.stop()

    def apply(self, key: str, value: bytes | None) -> None:
        """One record of the topic, applied when it is well formed and signed by the consent service."""
        if (record := read_consent(key, value, self.signatures)) is not None:
            self.store.apply(record)

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        partitions = consumer.assignment()
        self.error = f"no partitions of {self.topic} assigned (does the topic exist? `gdx topics apply`)"
        while not partitions:
            await asyncio.sleep(0.05)
            partitions = consumer.assignment()
        ends = await consumer.end_offsets(list(partitions))
        while True:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    key = record.key.decode("utf-8", "replace") if record.key else ""
                    await asyncio.to_thread(self.apply, key, record.value)
            # Every record fetched so far is applied: the positions are the applied offsets.
            positions = {tp: await consumer.position(tp) for tp in partitions}
            async with self._progress:
                self._applied = positions
                self._progress.notify_all()
            self.error = None
            if not self.caught_up.is_set() and all([await consumer.position(tp) >= end for tp, end in ends.items()]):
                self.caught_up.set()
                log.info("consents caught up", extra={"topic": self.topic})


async def publish_consents(kafka: KafkaClients, topic: str, records: Sequence[Consent], signer: Signer) -> None:
    """Write consent records and revocations, each signed with the consent service's key, and wait
    for the broker's acknowledgement of each."""
    producer = kafka.producer(enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for record in records:
            signed = record.signed_with(signer)
            await producer.send_and_wait(topic, signed.to_bytes(), key=record.consent_id.encode("utf-8"))
    finally:
        await producer.stop()
