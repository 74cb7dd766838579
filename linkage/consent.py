"""Consent records: the person's permission for one consumer and purpose to see some datasets.

A consent travels as a JSON record on the compacted topic `gdx.consent.v1`, keyed by its consent
id (a record keyed otherwise is skipped: its tombstone would revoke nothing), so the topic always
holds the latest state of every consent; a record with `status` REVOKED, or a tombstone, revokes
it. The lookup process applies the topic to the `consents` table (see `ConsentFollower`) and
checks requests against that table.

A one-time consent is used up by the first answer it allows: the `used_ms` update is guarded so
that of two concurrent lookups only one wins, and given back when that answer does not leave.
Re-applying the same consent (a replay of the topic on start) keeps `used_ms`, so a restart never
revives a used consent.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import BaseModel, Field, ValidationError, field_validator
from sqlalchemy import Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite

from foundation.kafka_clients import KafkaClients
from foundation.redaction import redact_ids
from linkage.index_store import now_ms
from linkage.tables import consents
from schemas.identifiers import thai_id_problem

log = logging.getLogger("gdx.consent")

CONSENT_TOPIC = "gdx.consent.v1"


class ConsentRecord(BaseModel):
    """One consent as it travels on the topic."""

    consent_id: str = Field(min_length=1, max_length=64)
    subject_id: str
    consumer: str = Field(min_length=1, max_length=64)
    purpose: str = Field(min_length=1, max_length=64)
    datasets: list[str] = Field(min_length=1)
    kind: Literal["one-time", "periodic"]
    granted_ms: int
    expires_ms: int
    status: Literal["GRANTED", "REVOKED"] = "GRANTED"

    @field_validator("subject_id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        problem = thai_id_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode("utf-8")


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

    def apply(self, key: str, value: bytes | None) -> None:
        """Apply one record of the topic; a malformed one is logged and skipped (it is not ours to fix)."""
        applied = now_ms()
        if value is None:
            with self.engine.begin() as conn:
                conn.execute(
                    update(consents)
                    .where(consents.c.consent_id == key, consents.c.revoked_ms.is_(None))
                    .values(revoked_ms=applied, applied_ms=applied)
                )
            return
        try:
            record = ConsentRecord.model_validate_json(value)
        except ValidationError as exc:
            log.warning(
                "malformed consent record skipped", extra={"key": redact_ids(key), "error": redact_ids(str(exc))}
            )
            return
        if record.consent_id != key:  # its tombstone, keyed by `key`, would revoke nothing
            log.warning(
                "consent record skipped: its key is not its consent_id",
                extra={"key": key, "consent_id": record.consent_id},
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
            "revoked_ms": applied if record.status == "REVOKED" else None,
            "applied_ms": applied,
        }
        statement = self._insert(consents).values(row)
        with self.engine.begin() as conn:
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=[consents.c.consent_id],
                    set_={k: statement.excluded[k] for k in row if k != "consent_id"},
                )
            )

    def check(self, subject_id: str, consumer: str, purpose: str, at_ms: int) -> ConsentDecision:
        """The best consent of this subject for this consumer and purpose, or why there is none.

        Among several, a live one wins; the reason of a denial is the most telling one found
        (revoked over expired over used-up)."""
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
        live = [r for r in for_purpose if r["revoked_ms"] is None and r["expires_ms"] > at_ms and r["used_ms"] is None]
        if live:
            best = max(live, key=lambda r: (r["kind"] == "periodic", r["expires_ms"]))
            return ConsentDecision(
                best["consent_id"], frozenset(json.loads(best["datasets"])), None, one_time=best["kind"] == "one-time"
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

    Reading the whole compacted topic on start (no committed offsets) makes the table a pure
    function of the topic: a rebuilt or fresh index gets every consent back. `caught_up` tells
    readiness whether the start-up replay reached the end offsets seen at start.
    """

    def __init__(
        self,
        store: ConsentStore,
        kafka: KafkaClients,
        topic: str,
        consumer_class: type[AIOKafkaConsumer] = AIOKafkaConsumer,
    ) -> None:
        """`consumer_class`: the Kafka consumer to follow with (a subclass can delay the broker's
        answers, as a slow broker would)."""
        self.store = store
        self.kafka = kafka
        self.topic = topic
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
                self.error = f"{what} ({type(exc).__name__})"
                log.warning("consent follower failed, retrying", extra={"error": repr(exc)})
                await asyncio.sleep(1.0)
            finally:
                self._consumer = None
                await consumer.stop()

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
                    await asyncio.to_thread(self.store.apply, key, record.value)
            # Every record fetched so far is applied: the positions are the applied offsets.
            positions = {tp: await consumer.position(tp) for tp in partitions}
            async with self._progress:
                self._applied = positions
                self._progress.notify_all()
            self.error = None
            if not self.caught_up.is_set() and all([await consumer.position(tp) >= end for tp, end in ends.items()]):
                self.caught_up.set()
                log.info("consents caught up", extra={"topic": self.topic})


async def publish_consents(kafka: KafkaClients, topic: str, records: Sequence[ConsentRecord | str]) -> None:
    """Write consent records, a bare consent id being its revocation (a tombstone), and wait for
    the broker's acknowledgement of each."""
    producer = kafka.producer(enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for record in records:
            if isinstance(record, str):
                await producer.send_and_wait(topic, None, key=record.encode("utf-8"))
            else:
                await producer.send_and_wait(topic, record.to_bytes(), key=record.consent_id.encode("utf-8"))
    finally:
        await producer.stop()
