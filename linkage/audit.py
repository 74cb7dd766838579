"""The tamper-evident audit trail of the lookup service on `gdx.audit`.

Each lookup process writes one hash chain, in one partition of the topic (one writer per
partition, `GDX_AUDIT_PARTITION`), and so does each stream worker for the notices it sends
(`GDX_WORKER_AUDIT_PARTITION`, under a key of its own that signs only notices). Every record
carries its sequence number, the hash of the record before it in the partition, and its own hash,
SHA-256 over the canonical JSON of the rest.
Altering a record breaks its own hash; removing or reordering records breaks the sequence and the
`prev_hash` link.

Every record is also signed (Ed25519, `key_id` + `signature`) with the lookup service's audit key,
whose public half is on the audit trust list: an auditor checks the trail with public keys only,
and whoever can write to the topic but does not hold the key can neither rewrite a tail nor
append one while the API is down. Signing every record rather than only the checkpoints costs
one signature per lookup (about 30 µs, against milliseconds per lookup) and leaves no stretch of
the trail that a forger could extend unnoticed.

Periodic checkpoints seal the chain head, and each sealed head is copied to a second topic,
`gdx.audit.anchors`, which the API's principal may only append to: deleting, recreating or
truncating `gdx.audit` leaves anchors the trail no longer reaches. When the chain cannot be
sealed for longer than the configured period, the writer refuses further records, so the API
stops answering (X-Road's rule for its time-stamped message log).

Records are produced with an idempotent producer (acks=all) and the lookup waits for the
acknowledgement before it answers: no answer leaves without its evidence.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from cryptography.exceptions import InvalidSignature

from foundation.errors import GdxError
from foundation.kafka_clients import KafkaClients
from foundation.moments import utc_stamp
from linkage.consumers import NOTIFY
from linkage.index_store import now_ms
from monitoring import metrics
from schemas.event_signatures import Signer, TrustList

log = logging.getLogger("gdx.audit")

AUDIT_TOPIC = "gdx.audit"
ANCHOR_TOPIC = "gdx.audit.anchors"
AUDIT_KEY_OWNER = "audit"
"""The owner of the lookup service's keys on the audit trust list."""
NOTICE_KEY_OWNER = "audit-notify"
"""The owner of the stream workers' keys: they sign the notices they send, and their own chain's
checkpoints, and nothing else, so a worker's key cannot vouch for a lookup."""
DOMAIN = b"gdx-audit-v1:"
GENESIS = "0" * 64
ACCESS = "access"
CHECKPOINT = "checkpoint"
UNSEALED_SLACK_S = 5.0
"""A checkpoint's own write time: a tail is overdue once older than the interval plus this."""


def canonical(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def record_hash(record: dict[str, Any]) -> str:
    return hashlib.sha256(canonical({k: v for k, v in record.items() if k != "hash"})).hexdigest()


def _signed_bytes(record: dict[str, Any]) -> bytes:
    return DOMAIN + canonical({k: v for k, v in record.items() if k not in ("hash", "signature")})


def sign_record(signer: Signer, record: dict[str, Any]) -> None:
    """Add `key_id` and `signature` (over everything but the hash and the signature itself)."""
    record["key_id"] = signer.key_id
    record["signature"] = base64.b64encode(signer.private_key.sign(_signed_bytes(record))).decode()


def chain_record(entry: dict[str, Any], chain: str, seq: int, prev_hash: str, signer: Signer) -> dict[str, Any]:
    """`entry` as the record `seq` of `chain` after `prev_hash`: linked, signed, then hashed."""
    record = {**entry, "chain": chain, "seq": seq, "prev_hash": prev_hash}
    sign_record(signer, record)
    record["hash"] = record_hash(record)
    return record


def signature_problem(trust: TrustList, record: dict[str, Any]) -> str | None:
    """Why the record's signature does not prove the lookup service wrote it, or None when it does."""
    if "signature" not in record:
        return "not signed (forged, or written before audit records were signed)"
    key_id = str(record.get("key_id"))
    key = trust.keys.get(key_id)
    if key is None or key.agency not in (AUDIT_KEY_OWNER, NOTICE_KEY_OWNER):
        return f"signed by key {key_id!r}, which is not on the audit trust list (forged or foreign)"
    if key.agency == NOTICE_KEY_OWNER and record.get("kind") != CHECKPOINT and record.get("operation") != NOTIFY:
        return f"signed by the workers' notice key {key_id!r}, which may sign only notices and checkpoints"
    at = record.get("time_ms")
    if not isinstance(at, int) or not key.valid_at(at):
        return f"signed by key {key_id!r} outside its validity period (time_ms {at})"
    try:
        key.public_key.verify(base64.b64decode(str(record.get("signature")), validate=True), _signed_bytes(record))
    except (InvalidSignature, binascii.Error, ValueError):
        return f"its signature under key {key_id!r} does not match its content (forged or rewritten)"
    return None


class AuditChainBroken(GdxError):
    """The record a writer would chain from does not verify: chaining from it would vouch for it."""


def check_head(
    chain: str, trust: TrustList, last: tuple[int, bytes | None], before: tuple[int, bytes | None] | None
) -> tuple[int, str]:
    """(seq, hash) of the record the writer chains from, once its hash, its place after the record
    before it and its signature verify; AuditChainBroken naming the offset otherwise."""
    offset, value = last

    def broken(what: str) -> AuditChainBroken:
        return AuditChainBroken(
            f"the audit chain {chain} ends in a record the API will not chain from (offset {offset}): {what}",
            "run `gdx audit verify` and have the trail examined",
        )

    record = _parsed(value)
    if record is None:
        raise broken("not an audit record")
    if record_hash(record) != record["hash"]:
        raise broken("altered, it does not match its hash")
    if record.get("chain") != chain:
        raise broken(f"it belongs to chain {record.get('chain')!r}")
    if problem := signature_problem(trust, record):
        raise broken(problem)
    if before is None:
        if (record["seq"], record.get("prev_hash")) != (0, GENESIS):
            raise broken(f"seq {record['seq']} with nothing before it (the trail was truncated)")
    elif (previous := _parsed(before[1])) is None or (record["seq"], record.get("prev_hash")) != (
        previous["seq"] + 1,
        previous["hash"],
    ):
        raise broken("it does not follow the record before it (removed, reordered or appended by someone else)")
    return int(record["seq"]), str(record["hash"])


def _parsed(value: bytes | None) -> dict[str, Any] | None:
    """The record when it has the shape of one (a JSON object with an integer seq and a hash)."""
    try:
        record = json.loads(value or b"")
    except ValueError:
        return None
    if (
        not isinstance(record, dict)
        or not isinstance(record.get("seq"), int)
        or not isinstance(record.get("hash"), str)
    ):
        return None
    return record


class AuditUnavailable(Exception):
    """The audit record could not be written; the request must not be answered."""


@dataclass(frozen=True)
class AuditKeys:
    """What a writer signs with, and the public keys it checks the record it chains from against."""

    signer: Signer
    trust: TrustList


class AuditWriter:
    """Appends signed records to one partition's hash chain, in order, acknowledged before returning,
    and seals the head now and then: a checkpoint on the chain, anchored on the anchor topic."""

    def __init__(
        self,
        kafka: KafkaClients,
        topic: str,
        partition: int,
        keys: AuditKeys,
        *,
        anchor_topic: str,
        max_unsealed_s: float,
        timeout_s: float = 10.0,
    ) -> None:
        self.kafka = kafka
        self.topic = topic
        self.anchor_topic = anchor_topic
        self.partition = partition
        self.chain = f"{topic}/{partition}"
        self.keys = keys
        self.max_unsealed_s = max_unsealed_s
        self.timeout_s = timeout_s
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()
        self._seq = -1
        self._head = GENESIS
        self._stale = True
        self.last_checkpoint_ms: int | None = None
        """When the head was last sealed: checkpoint written and anchored."""
        self.error: str | None = None  # why the last append failed, until one succeeds (for readiness)
        self.seal_error: str | None = None  # why the last seal failed, until one succeeds
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
        except BaseException as exc:
            await producer.stop()
            if isinstance(exc, AuditChainBroken):
                self.error = str(exc)
            raise
        self._producer = producer

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def _recover_head(self) -> None:
        """Continue the chain from the last record in the partition (the topic is the truth), once
        that record verifies: a record someone else appended is never sealed by this writer."""
        self._seq, self._head = await chain_head(self.kafka, self.topic, self.partition, self.keys.trust)
        self._stale = False

    def seal_problem(self) -> str | None:
        """Why the API must stop answering: the head has not been sealed for longer than allowed."""
        if self.last_checkpoint_ms is None:
            return None
        unsealed_s = (now_ms() - self.last_checkpoint_ms) / 1000
        if unsealed_s <= self.max_unsealed_s:
            return None
        return (
            f"audit trail not sealed for {unsealed_s:.0f} s (limit {self.max_unsealed_s:g} s): "
            f"{self.seal_error or 'no checkpoint written'}"
        )

    async def append(self, entry: dict[str, Any]) -> tuple[int, int]:
        """Chain `entry` and write it; (partition, offset) once the broker has acknowledged it."""
        return (await self._append(entry))[0]

    async def _append(self, entry: dict[str, Any]) -> tuple[tuple[int, int], dict[str, Any]]:
        if self._producer is None:
            raise AuditUnavailable("the audit writer is not started")
        if entry.get("kind") != CHECKPOINT and (overdue := self.seal_problem()):
            raise AuditUnavailable(overdue)
        try:
            async with self._lock:
                if self._stale:
                    await self._recover_head()
                record = chain_record(entry, self.chain, self._seq + 1, self._head, self.keys.signer)
                delivery = await self._producer.send(
                    self.topic, canonical(record), key=self.chain.encode(), partition=self.partition
                )
                self._seq, self._head = record["seq"], record["hash"]
            written = await asyncio.wait_for(delivery, self.timeout_s)
        except Exception as exc:
            self._stale = True
            self.error = (
                str(exc) if isinstance(exc, AuditChainBroken) else f"audit trail unavailable ({type(exc).__name__})"
            )
            self._failed.set()
            log.error("audit record not written", extra={"chain": self.chain, "error": repr(exc)})
            raise AuditUnavailable(self.error) from exc
        self.error = None
        return (written.partition, written.offset), record

    async def checkpoint(self) -> tuple[int, int]:
        """Seal the chain head: a signed checkpoint record, then a copy of it on the anchor topic."""
        at = now_ms()
        written, record = await self._append({"kind": CHECKPOINT, "time_ms": at})
        assert self._producer is not None  # the append above succeeded
        try:
            anchored = await self._producer.send(self.anchor_topic, canonical(record), key=self.chain.encode())
            await asyncio.wait_for(anchored, self.timeout_s)
        except Exception as exc:
            self.seal_error = f"anchor not written to {self.anchor_topic} ({type(exc).__name__})"
            self._failed.set()
            log.error("audit head not anchored", extra={"chain": self.chain, "error": repr(exc)})
            raise AuditUnavailable(self.seal_error) from exc
        self.seal_error = None
        self.last_checkpoint_ms = at
        metrics.AUDIT_LAST_CHECKPOINT.labels(chain=self.chain).set(at / 1000)
        return written

    async def checkpoint_every(self, interval_s: float, retry_s: float = 1.0) -> None:
        """Checkpoint on start and then every interval, idle or not (a stale checkpoint alerts);
        at once when an append or a seal fails and then every `retry_s` while it keeps failing, so
        an API that readiness took out of service finds out by itself that it can serve again."""
        while True:
            with suppress(AuditUnavailable):
                await self.checkpoint()
            self._failed.clear()
            pause = interval_s if self.error is None and self.seal_error is None else min(interval_s, retry_s)
            with suppress(TimeoutError):
                await asyncio.wait_for(self._failed.wait(), pause)


async def chain_head(kafka: KafkaClients, topic: str, partition: int, trust: TrustList) -> tuple[int, str]:
    """(seq, hash) of the verified last record of the partition; (-1, GENESIS) when it is empty."""
    consumer = kafka.consumer(group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        start, end = (await consumer.beginning_offsets([tp]))[tp], (await consumer.end_offsets([tp]))[tp]
        if end == start:
            return -1, GENESIS
        consumer.seek(tp, max(start, end - 2))
        tail: list[tuple[int, bytes | None]] = []
        while not tail or tail[-1][0] < end - 1:
            batch = await consumer.getmany(tp, timeout_ms=1000)
            tail.extend((m.offset, m.value) for m in batch.get(tp, []))
    finally:
        await consumer.stop()
    tail = [(offset, value) for offset, value in tail if offset < end]
    return check_head(f"{topic}/{partition}", trust, tail[-1], tail[-2] if len(tail) > 1 else None)


TAMPERED = "TAMPERED"
UNSEALED = "UNSEALED"


@dataclass
class Problem:
    partition: int
    offset: int
    what: str
    kind: str = TAMPERED


@dataclass(frozen=True)
class Anchor:
    """The last sealed head of a chain, as copied to the anchor topic."""

    seq: int
    hash: str
    time_ms: int


@dataclass
class VerifyReport:
    records: dict[int, int] = field(default_factory=dict)
    checkpoints: dict[int, int] = field(default_factory=dict)
    unsealed: dict[int, int] = field(default_factory=dict)
    anchored: dict[int, int] = field(default_factory=dict)
    """Per partition: the sequence number of the last anchored head the trail reaches."""
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, other: VerifyReport) -> None:
        self.records.update(other.records)
        self.checkpoints.update(other.checkpoints)
        self.unsealed.update(other.unsealed)
        self.anchored.update(other.anchored)
        self.problems.extend(other.problems)


@dataclass(frozen=True)
class VerifyRules:
    """What a trail is checked against besides itself."""

    trust: TrustList
    interval_s: float
    """The checkpoint interval: a tail unsealed for longer is reported."""
    at_ms: int
    """The moment of the check (the age of an unsealed tail)."""


def verify_partition(
    partition: int,
    messages: Iterable[tuple[int, bytes | None]],
    rules: VerifyRules,
    anchors: Mapping[int, Anchor] | None = None,
) -> VerifyReport:
    """Walk one partition in offset order; stop at the first record that breaks the chain, saying why.
    Then: every head sealed outside the topic (`anchors`, by seq) must be in the trail with the same
    hash, the last one included, and whatever follows the last checkpoint must be younger than the
    checkpoint interval."""
    anchors = anchors or {}
    report = VerifyReport(records={partition: 0}, checkpoints={partition: 0}, unsealed={partition: 0})
    expected_seq, prev, end = 0, GENESIS, 0
    unsealed_from: tuple[int, int] | None = None  # (offset, time_ms) of the first record after a checkpoint
    for offset, value in messages:

        def fail(what: str, offset: int = offset) -> VerifyReport:
            report.problems.append(Problem(partition, offset, what))
            return report

        record = _parsed(value)
        if record is None:
            return fail("unreadable record (not an audit record: altered or foreign)")
        seq, stated_hash = record["seq"], record["hash"]
        if record_hash(record) != stated_hash:
            return fail(f"record seq {seq} altered: its content does not match its hash")
        if seq > expected_seq:
            return fail(f"records removed or reordered: expected seq {expected_seq}, found {seq}")
        if seq < expected_seq:
            return fail(f"records reordered or replayed: expected seq {expected_seq}, found {seq}")
        if record.get("prev_hash") != prev:
            return fail(f"record seq {seq} does not follow the record before it (removed, reordered or rewritten)")
        if problem := signature_problem(rules.trust, record):
            return fail(f"record seq {seq}: {problem}")
        if (anchor := anchors.get(seq)) is not None and stated_hash != anchor.hash:
            return fail(
                f"record seq {seq} is not the head anchored at {utc_stamp(anchor.time_ms)} "
                "(the chain was rewritten, or the topic deleted and recreated)"
            )
        if record.get("kind") == CHECKPOINT:
            report.checkpoints[partition] += 1
            report.unsealed[partition] = 0
            unsealed_from = None
        else:
            report.unsealed[partition] += 1
            unsealed_from = unsealed_from or (offset, int(record["time_ms"]))
        report.records[partition] += 1
        expected_seq, prev, end = seq + 1, stated_hash, offset + 1
    if anchors:
        last = anchors[max(anchors)]
        if expected_seq <= last.seq:
            report.problems.append(
                Problem(
                    partition,
                    end,
                    f"the trail ends before seq {last.seq}, which was sealed and anchored at "
                    f"{utc_stamp(last.time_ms)}: records removed, or the topic deleted and recreated",
                )
            )
            return report
        report.anchored[partition] = last.seq
    if unsealed_from is not None:
        offset, since_ms = unsealed_from
        age_s = (rules.at_ms - since_ms) / 1000
        if age_s > rules.interval_s + UNSEALED_SLACK_S:
            report.problems.append(
                Problem(
                    partition,
                    offset,
                    f"{report.unsealed[partition]} records after the last checkpoint, the first from "
                    f"{utc_stamp(since_ms)} ({age_s:.0f} s ago, longer than the checkpoint interval of "
                    f"{rules.interval_s:g} s): no seal vouches for them yet (the API stopped before sealing, or "
                    "cannot seal)",
                    UNSEALED,
                )
            )
    return report


def read_anchors(
    messages: Iterable[tuple[int, bytes | None]], rules: VerifyRules, topic: str
) -> tuple[dict[int, dict[int, Anchor]], list[Problem]]:
    """Every head anchored for the chains of `topic`, by partition and seq, from the anchor topic's
    (single) partition. Of two anchors of one seq the first stands: a second with another hash is a
    chain begun again. An anchor that is not a checkpoint the lookup service signed is a problem
    (on partition -1)."""
    anchors: dict[int, dict[int, Anchor]] = {}
    problems: list[Problem] = []
    for offset, value in messages:
        record = _parsed(value)
        problem = (
            "is not an audit checkpoint"
            if record is None or record.get("kind") != CHECKPOINT
            else "does not match its hash"
            if record_hash(record) != record["hash"]
            else signature_problem(rules.trust, record)
        )
        if problem or record is None:
            problems.append(Problem(-1, offset, f"the anchor {problem}"))
            continue
        chain_topic, _, number = str(record.get("chain")).rpartition("/")
        if chain_topic == topic and number.isdigit():
            by_seq = anchors.setdefault(int(number), {})
            by_seq.setdefault(record["seq"], Anchor(record["seq"], record["hash"], int(record["time_ms"])))
    return anchors, problems


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


async def verify_topic(kafka: KafkaClients, topic: str, anchor_topic: str, rules: VerifyRules) -> VerifyReport:
    """Every chain of `topic`, each against its last head anchored on `anchor_topic`."""
    report = VerifyReport()
    anchors: dict[int, dict[int, Anchor]] = {}
    async for _partition, messages in read_partitions(kafka, anchor_topic):
        found, problems = read_anchors(messages, rules, topic)
        anchors.update(found)
        report.problems.extend(problems)
    async for partition, messages in read_partitions(kafka, topic):
        report.add(verify_partition(partition, messages, rules, anchors.pop(partition, None)))
    for partition, by_seq in sorted(anchors.items()):
        last = by_seq[max(by_seq)]
        report.problems.append(
            Problem(
                partition,
                0,
                f"partition {partition} is gone, but its seq {last.seq} was anchored at {utc_stamp(last.time_ms)}: "
                "the topic was deleted and recreated with fewer partitions",
            )
        )
    return report
