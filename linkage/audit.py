"""The tamper-evident audit trail of the lookup service on `gdx.audit`.

Each lookup process writes one hash chain, in one partition of the topic (one writer per
partition, `GDX_AUDIT_PARTITION`): every record carries its sequence number, the hash of the
record before it in the partition, and its own hash, SHA-256 over the canonical JSON of the rest.
Altering a record breaks its own hash; removing or reordering records breaks the sequence and the
`prev_hash` link. Rewriting a whole tail consistently is caught by the periodic checkpoints: a
checkpoint seals the chain head with an HMAC-SHA256 under a key the writer holds and the topic
does not, so a forger cannot re-sign them.

Records are produced with an idempotent producer (acks=all) and the lookup waits for the
acknowledgement before it answers: no answer leaves without its evidence.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import AsyncIterator, Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition

from foundation.errors import GdxError
from foundation.kafka_clients import KafkaClients
from foundation.secret_files import create_secret
from linkage.index_store import now_ms
from monitoring import metrics

log = logging.getLogger("gdx.audit")

AUDIT_TOPIC = "gdx.audit"
GENESIS = "0" * 64
ACCESS = "access"
CHECKPOINT = "checkpoint"


def canonical(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def record_hash(record: dict[str, Any]) -> str:
    return hashlib.sha256(canonical({k: v for k, v in record.items() if k != "hash"})).hexdigest()


def checkpoint_signature(key: bytes, record: dict[str, Any]) -> str:
    return hmac.new(
        key, canonical({k: v for k, v in record.items() if k not in ("hash", "signature")}), hashlib.sha256
    ).hexdigest()


def load_signing_key(path: Path, create: bool) -> bytes:
    """The checkpoint key (hex in a file); the writer makes one on first start, a verifier never does."""
    if not path.is_file():
        if not create:
            raise GdxError(
                f"audit signing key {path} does not exist",
                "give the key the lookup API signs with (GDX_AUDIT_KEY_FILE)",
            )
        create_secret(path, secrets.token_hex(32) + "\n")
    try:
        return bytes.fromhex(path.read_text().strip())
    except ValueError:
        raise GdxError(f"audit signing key {path} is not hex", "write 64 hex digits into it") from None


class AuditUnavailable(Exception):
    """The audit record could not be written; the request must not be answered."""


class AuditWriter:
    """Appends records to one partition's hash chain, in order, acknowledged before returning."""

    def __init__(self, kafka: KafkaClients, topic: str, partition: int, key: bytes, *, timeout_s: float = 10.0) -> None:
        self.kafka = kafka
        self.topic = topic
        self.partition = partition
        self.chain = f"{topic}/{partition}"
        self.key = key
        self.timeout_s = timeout_s
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()
        self._seq = -1
        self._head = GENESIS
        self._stale = True
        self.last_checkpoint_ms: int | None = None
        self.error: str | None = None  # why the last append failed, until one succeeds (for readiness)
        self._failed = asyncio.Event()  # wakes checkpoint_every to retry at once

    @property
    def started(self) -> bool:
        return self._producer is not None

    async def start(self) -> None:
        """Connect, then continue the chain from its head on the topic. Only then is the writer
        started: an `append` before that would race the recovery and could chain from a stale head."""
        producer = self.kafka.producer(
            enable_idempotence=True, acks="all", linger_ms=0, request_timeout_ms=int(self.timeout_s * 1000)
        )
        try:
            await producer.start()
            await self._recover_head()
        except BaseException:
            await producer.stop()
            raise
        self._producer = producer

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def _recover_head(self) -> None:
        """Continue the chain from the last record in the partition (the topic is the truth)."""
        consumer = self.kafka.consumer(group_id=None, enable_auto_commit=False)
        await consumer.start()
        try:
            tp = TopicPartition(self.topic, self.partition)
            consumer.assign([tp])
            end = (await consumer.end_offsets([tp]))[tp]
            if end == 0:
                self._seq, self._head = -1, GENESIS
            else:
                consumer.seek(tp, end - 1)
                last = None
                while last is None:
                    batch = await consumer.getmany(tp, timeout_ms=1000)
                    for message in batch.get(tp, []):
                        last = json.loads(message.value)
                self._seq, self._head = int(last["seq"]), str(last["hash"])
        finally:
            await consumer.stop()
        self._stale = False

    async def append(self, entry: dict[str, Any]) -> tuple[int, int]:
        """Chain `entry` and write it; (partition, offset) once the broker has acknowledged it."""
        if self._producer is None:
            raise AuditUnavailable("the audit writer is not started")
        try:
            async with self._lock:
                if self._stale:
                    await self._recover_head()
                record = {**entry, "chain": self.chain, "seq": self._seq + 1, "prev_hash": self._head}
                if record.get("kind") == CHECKPOINT:
                    record["signature"] = checkpoint_signature(self.key, record)
                record["hash"] = record_hash(record)
                delivery = await self._producer.send(
                    self.topic, canonical(record), key=self.chain.encode(), partition=self.partition
                )
                self._seq, self._head = record["seq"], record["hash"]
            written = await asyncio.wait_for(delivery, self.timeout_s)
        except Exception as exc:
            self._stale = True
            self.error = f"audit trail unavailable ({type(exc).__name__})"
            self._failed.set()
            log.error("audit record not written", extra={"chain": self.chain, "error": repr(exc)})
            raise AuditUnavailable(self.error) from exc
        self.error = None
        return written.partition, written.offset

    async def checkpoint(self) -> tuple[int, int]:
        """Seal the chain head with a signed record."""
        at = now_ms()
        written = await self.append({"kind": CHECKPOINT, "time_ms": at})
        self.last_checkpoint_ms = at
        metrics.AUDIT_LAST_CHECKPOINT.labels(chain=self.chain).set(at / 1000)
        return written

    async def checkpoint_every(self, interval_s: float, retry_s: float = 1.0) -> None:
        """Checkpoint on start and then every interval, idle or not (a stale checkpoint alerts);
        at once when an append fails and then every `retry_s` while the trail cannot be written, so
        an API that readiness took out of service finds out by itself that it can serve again."""
        while True:
            with suppress(AuditUnavailable):
                await self.checkpoint()
            self._failed.clear()
            pause = interval_s if self.error is None else min(interval_s, retry_s)
            with suppress(TimeoutError):
                await asyncio.wait_for(self._failed.wait(), pause)


@dataclass
class Problem:
    partition: int
    offset: int
    what: str


@dataclass
class VerifyReport:
    records: dict[int, int] = field(default_factory=dict)
    checkpoints: dict[int, int] = field(default_factory=dict)
    unsealed: dict[int, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_partition(partition: int, messages: Iterable[tuple[int, bytes | None]], key: bytes) -> VerifyReport:
    """Walk one partition in offset order; stop at the first record that breaks the chain, saying why."""
    report = VerifyReport(records={partition: 0}, checkpoints={partition: 0}, unsealed={partition: 0})
    expected_seq, prev = 0, GENESIS
    for offset, value in messages:

        def fail(what: str, offset: int = offset) -> VerifyReport:
            report.problems.append(Problem(partition, offset, what))
            return report

        try:
            record = json.loads(value or b"")
            seq, stated_hash = int(record["seq"]), str(record["hash"])
        except (ValueError, KeyError, TypeError):
            return fail("unreadable record (not an audit record: altered or foreign)")
        if record_hash(record) != stated_hash:
            return fail(f"record seq {seq} altered: its content does not match its hash")
        if seq > expected_seq:
            return fail(f"records removed or reordered: expected seq {expected_seq}, found {seq}")
        if seq < expected_seq:
            return fail(f"records reordered or replayed: expected seq {expected_seq}, found {seq}")
        if record.get("prev_hash") != prev:
            return fail(f"record seq {seq} does not follow the record before it (removed, reordered or rewritten)")
        if record.get("kind") == CHECKPOINT:
            if not hmac.compare_digest(checkpoint_signature(key, record), str(record.get("signature", ""))):
                return fail(f"checkpoint seq {seq} has an invalid signature (forged or re-written chain)")
            report.checkpoints[partition] += 1
            report.unsealed[partition] = 0
        else:
            report.unsealed[partition] += 1
        report.records[partition] += 1
        expected_seq, prev = seq + 1, stated_hash
    return report


async def partitions(kafka: KafkaClients, topic: str) -> list[int]:
    admin = kafka.admin()
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    found = [t for t in described if t["topic"] == topic and t["error_code"] == 0]
    if not found:
        raise GdxError(f"topic {topic} does not exist", "check GDX_TOPIC_PREFIX, or run `gdx topics apply`")
    return sorted(p["partition"] for p in found[0]["partitions"])


async def read_partitions(kafka: KafkaClients, topic: str) -> AsyncIterator[tuple[int, list[tuple[int, bytes | None]]]]:
    """Every partition of the topic, read from its beginning to the end offset seen at start."""
    tps = [TopicPartition(topic, n) for n in await partitions(kafka, topic)]
    consumer = kafka.consumer(group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            messages: list[tuple[int, bytes | None]] = []
            while await consumer.position(tp) < ends[tp]:
                batch = await consumer.getmany(tp, timeout_ms=1000, max_records=10000)
                messages.extend((m.offset, m.value) for m in batch.get(tp, []) if m.offset < ends[tp])
            yield tp.partition, messages
    finally:
        await consumer.stop()


async def verify_topic(kafka: KafkaClients, topic: str, key: bytes) -> VerifyReport:
    report = VerifyReport()
    async for partition, messages in read_partitions(kafka, topic):
        part = verify_partition(partition, messages, key)
        report.records.update(part.records)
        report.checkpoints.update(part.checkpoints)
        report.unsealed.update(part.unsealed)
        report.problems.extend(part.problems)
    return report
