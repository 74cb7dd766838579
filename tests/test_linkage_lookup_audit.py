"""The audit trail: every request chained and signed on gdx.audit before its answer, and tampering
detected with the public keys only — an altered, removed or reordered record, a consistently
rewritten tail, a tail forged while the API was down, the topic deleted and recreated or
truncated, a tail left unsealed — named by partition and offset, through the library and through
`gdx audit verify`. The API refuses to chain from a head that does not verify, and stops
answering when it cannot seal its chain."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import NewTopic, RecordsToDelete
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from linkage.audit import (
    ANCHOR_TOPIC,
    AUDIT_TOPIC,
    CHECKPOINT,
    GENESIS,
    UNSEALED,
    UNSEALED_SLACK_S,
    Anchor,
    AuditUnavailable,
    AuditWriter,
    canonical,
    chain_record,
    record_hash,
    verify_partition,
)
from linkage.index_store import now_ms
from schemas.event_signatures import Signer
from schemas.examples import MALEE, SOMCHAI
from streams.audit_chains import audit_keys
from streams.settings import Settings
from tests.support.cli_run import run_gdx
from tests.support.lookup_support import (
    administer,
    audit_records,
    audit_rules,
    get,
    lookup_client,
    lookup_deployment,
    wait_until,
)

pytestmark = pytest.mark.kafka
Messages = list[tuple[int, bytes | None]]


@pytest.fixture
def trail(settings: Settings) -> Iterator[tuple[Settings, Messages]]:
    """A chain of allowed and denied requests with a checkpoint in the middle and one at the start."""
    settings = lookup_deployment(settings)
    with lookup_client(settings) as client:
        _requests(client)
        client.portal.call(client.app.state.lookup.audit.checkpoint)  # type: ignore[attr-defined]
        _requests(client)
        client.portal.call(client.app.state.lookup.audit.checkpoint)  # type: ignore[attr-defined]
    partitions = audit_records(settings)
    yield settings, partitions[settings.audit_partition]


def _requests(client: TestClient) -> None:
    assert get(client, f"/v1/citizens/{SOMCHAI}", "revenue", "estate-tax").status_code == 200
    assert get(client, f"/v1/citizens/{MALEE}", "dlt", "licence-application").status_code == 403
    assert get(client, f"/v1/citizens/{SOMCHAI}", None, "estate-tax", key="wrong").status_code == 401


def _records(messages: Messages) -> list[dict[str, object]]:
    return [json.loads(value or b"") for _offset, value in messages]


def test_every_request_is_chained_the_trail_verifies_and_an_old_unsealed_tail_is_reported(
    trail: tuple[Settings, Messages],
) -> None:
    settings, messages = trail
    records = _records(messages)
    assert [r["seq"] for r in records] == list(range(len(records)))
    assert records[0]["prev_hash"] == GENESIS and records[0]["kind"] == CHECKPOINT
    assert all(later["prev_hash"] == earlier["hash"] for earlier, later in pairwise(records))
    access = [r for r in records if r["kind"] == "access"]
    assert [(r["decision"], r["status"]) for r in access] == [("allow", 200), ("deny", 403), ("deny", 401)] * 2
    assert access[1]["reason"] == "no_consent" and access[1]["subject"] == {"kind": "citizen", "id": MALEE}
    report = verify_partition(settings.audit_partition, messages, audit_rules(settings))
    assert report.ok, report.problems
    assert report.checkpoints[settings.audit_partition] == 3 and report.unsealed[settings.audit_partition] == 0
    assert [r["kind"] for r in records] == ["checkpoint", *["access"] * 3, "checkpoint", *["access"] * 3, "checkpoint"]

    unsealed = messages[:-1]  # the three requests after the middle checkpoint, never sealed
    assert verify_partition(settings.audit_partition, unsealed, audit_rules(settings)).ok, "younger than the interval"
    later = now_ms() + int((settings.audit_checkpoint_interval_s + UNSEALED_SLACK_S + 1) * 1000)
    (problem,) = verify_partition(settings.audit_partition, unsealed, audit_rules(settings, later)).problems
    assert problem.kind == UNSEALED and problem.offset == 5, "an unsealed tail older than the interval is reported"
    assert problem.what.startswith("3 records after the last checkpoint, the first from "), problem


def _altered(messages: Messages) -> Messages:
    changed = json.loads(messages[2][1] or b"")
    changed["consumer"] = "someone-else"
    return [*messages[:2], (messages[2][0], canonical(changed)), *messages[3:]]


def _rewritten(messages: Messages) -> Messages:
    """Alter record 2 and recompute every hash after it: only the signatures can tell."""
    records = _records(messages)
    records[2]["purpose"] = "estate-tax-forged"
    for index in range(2, len(records)):
        records[index]["prev_hash"] = records[index - 1]["hash"]
        records[index]["hash"] = record_hash(records[index])
    return [(offset, canonical(record)) for (offset, _), record in zip(messages, records, strict=True)]


TAMPERING: dict[str, tuple[Callable[[Messages], Messages], int, str]] = {
    "altered": (_altered, 2, "altered"),
    "removed": (lambda m: [*m[:2], *m[3:]], 2, "removed or reordered"),
    "swapped": (lambda m: [*m[:2], m[3], m[2], *m[4:]], 2, "removed or reordered"),
    "replayed": (lambda m: [*m[:4], m[1], *m[4:]], 4, "reordered or replayed"),
    "rewritten-tail": (_rewritten, 2, "signature under key"),
}


def test_tampering_is_detected_where_it_happened(trail: tuple[Settings, Messages]) -> None:
    """One trail, every kind of tampering in turn (the trail's set-up is the cost, not the checks)."""
    settings, messages = trail
    for what, (tamper, position, words) in TAMPERING.items():
        tampered = [(offset, value) for offset, (_, value) in enumerate(tamper(messages))]
        report = verify_partition(settings.audit_partition, tampered, audit_rules(settings))
        assert not report.ok, what
        problem = report.problems[0]
        assert (problem.partition, problem.offset) == (settings.audit_partition, position), (what, problem)
        assert words in problem.what, (what, problem)


def _copy_to_topic(settings: Settings, topic: str, partition: int, messages: Messages) -> None:
    async def copy() -> None:
        admin = settings.kafka.admin()
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, partition + 1, 1)])
        finally:
            await admin.close()
        producer = settings.kafka.producer(enable_idempotence=True, acks="all")
        await producer.start()
        try:
            for _offset, value in messages:
                await producer.send_and_wait(topic, value, partition=partition)
        finally:
            await producer.stop()

    asyncio.run(copy())


def _auditor(settings: Settings, tmp_path: Path) -> dict[str, str]:
    """`gdx audit verify`'s environment with the public trust list only: no state, no private key."""
    trust = tmp_path / "auditor" / "audit-trust-list.json"
    trust.parent.mkdir()
    shutil.copy(settings.audit_trust_list_path, trust)
    return {
        "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "GDX_TOPIC_PREFIX": settings.topic_prefix,
        "GDX_STATE_DIR": str(tmp_path / "auditor"),
        "GDX_AUDIT_TRUST_LIST_FILE": str(trust),
    }


def test_gdx_audit_verify_passes_an_intact_trail_and_names_a_removed_record(
    trail: tuple[Settings, Messages], tmp_path: Path
) -> None:
    settings, messages = trail
    env = _auditor(settings, tmp_path)
    intact = run_gdx("audit", "verify", env=env)
    assert intact.code == 0, intact.err
    assert (
        f"partition {settings.audit_partition}: {len(messages)} records, 3 checkpoints, 0 after the last checkpoint; "
        f"reaches its anchored head, seq {len(messages) - 1}"
    ) in intact.out
    assert "every chain intact, signed and sealed" in intact.out
    copy = settings.topic("gdx.audit-tampered")
    _copy_to_topic(settings, copy, settings.audit_partition, [*messages[:3], *messages[4:]])
    tampered = run_gdx("audit", "verify", "--topic", copy, env=env)
    assert tampered.code == 1
    assert f"TAMPERED partition {settings.audit_partition} offset 3: records removed" in tampered.out


def test_audit_verify_without_the_trust_list_is_one_clear_line(settings: Settings) -> None:
    env = {"KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers, "GDX_STATE_DIR": str(settings.state_dir)}
    result = run_gdx("audit", "verify", env=env)
    assert result.code == 1 and "Traceback" not in result.err
    assert result.err.strip().splitlines() == [
        f"gdx: audit trust list: no trust list at {settings.audit_trust_list_path} — "
        "give the lookup service's public audit keys (GDX_AUDIT_TRUST_LIST_FILE)"
    ]


def _forged_tail(messages: Messages, signer: Signer) -> bytes:
    """The record an insider with write access appends while the API is down: chained right, hashed
    right, signed under the API's key id with a key of their own."""
    last = json.loads(messages[-1][1] or b"")
    record = {
        "kind": "access",
        "time_ms": now_ms(),
        "consumer": "revenue",
        "purpose": "estate-tax",
        "subject": {"kind": "citizen", "id": MALEE},
        "decision": "allow",
        "status": 200,
    }
    return canonical(chain_record(record, last["chain"], last["seq"] + 1, last["hash"], signer))


def test_a_tail_forged_while_the_api_is_down_is_caught_and_the_api_refuses_to_chain_from_it(
    trail: tuple[Settings, Messages], tmp_path: Path
) -> None:
    settings, messages = trail
    real_key_id = json.loads(messages[-1][1] or b"")["key_id"]
    forged = _forged_tail(messages, Signer(real_key_id, Ed25519PrivateKey.generate()))
    unsigned = json.loads(forged)
    del unsigned["key_id"], unsigned["signature"]
    unsigned["hash"] = record_hash(unsigned)
    for value in (forged, canonical(unsigned)):
        tampered = [*messages, (len(messages), value)]
        (problem,) = verify_partition(settings.audit_partition, tampered, audit_rules(settings)).problems
        assert problem.offset == len(messages) and "forged" in problem.what, problem

    async def append() -> None:
        producer = settings.kafka.producer(acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(settings.topic(AUDIT_TOPIC), forged, partition=settings.audit_partition)
        finally:
            await producer.stop()

    asyncio.run(append())
    audit = run_gdx("audit", "verify", env=_auditor(settings, tmp_path))
    assert audit.code == 1
    assert (
        f"TAMPERED partition {settings.audit_partition} offset {len(messages)}: record seq {len(messages)}: its "
        f"signature under key '{real_key_id}' does not match its content (forged or rewritten)"
    ) in audit.out
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "GDX_TOPIC_PREFIX": settings.topic_prefix,
        "GDX_STATE_DIR": str(settings.state_dir),
        "GDX_INDEX_URL": settings.index_database_url,
        "GDX_LOOKUP_PORT": "0",
    }
    serve = run_gdx("serve", env=env, timeout=60)
    assert serve.code == 1 and "Traceback" not in serve.err
    assert serve.err.strip().splitlines() == [
        f"gdx: the audit chain {settings.topic(AUDIT_TOPIC)}/{settings.audit_partition} ends in a record the API "
        f"will not chain from (offset {len(messages)}): its signature under key '{real_key_id}' does not match its "
        "content (forged or rewritten) — run `gdx audit verify` and have the trail examined"
    ]


def test_the_audit_topic_deleted_and_recreated_is_caught_by_its_anchors(
    trail: tuple[Settings, Messages], tmp_path: Path
) -> None:
    """The insider deletes the trail and lets the API begin a fresh, well-signed chain on the new topic."""
    settings, messages = trail
    topic = settings.topic(AUDIT_TOPIC)
    asyncio.run(administer(settings, lambda admin: admin.delete_topics([topic])))
    asyncio.run(administer(settings, lambda admin: admin.create_topics([NewTopic(topic, 3, 1)])))
    with lookup_client(settings) as client:
        _requests(client)
    audit = run_gdx("audit", "verify", env=_auditor(settings, tmp_path))
    assert audit.code == 1
    assert (
        f"TAMPERED partition {settings.audit_partition} offset 0: record seq 0 is not the head anchored at "
    ) in audit.out, audit.out
    assert "the topic deleted and recreated" in audit.out


def test_a_truncated_trail_and_a_removed_tail_are_caught(trail: tuple[Settings, Messages], tmp_path: Path) -> None:
    settings, messages = trail
    rules = audit_rules(settings)
    last = json.loads(messages[-1][1] or b"")
    anchors = {last["seq"]: Anchor(last["seq"], last["hash"], last["time_ms"])}
    (problem,) = verify_partition(settings.audit_partition, messages[:-2], rules, anchors).problems
    assert problem.offset == len(messages) - 2 and f"ends before seq {last['seq']}" in problem.what, problem

    tp = TopicPartition(settings.topic(AUDIT_TOPIC), settings.audit_partition)
    asyncio.run(administer(settings, lambda admin: admin.delete_records({tp: RecordsToDelete(3)})))
    audit = run_gdx("audit", "verify", env=_auditor(settings, tmp_path))
    assert audit.code == 1
    assert (
        f"TAMPERED partition {settings.audit_partition} offset 3: records removed or reordered: expected seq 0, found 3"
    ) in audit.out


def test_an_api_that_cannot_seal_its_chain_stops_answering_and_says_why(settings: Settings) -> None:
    """X-Road's rule: the anchor topic lost, the chain unsealed beyond the limit, nothing is answered."""
    settings = lookup_deployment(settings).model_copy(
        update={"audit_checkpoint_interval_s": 0.5, "audit_max_unsealed_s": 2.0}
    )
    anchors = settings.topic(ANCHOR_TOPIC)
    with lookup_client(settings) as client:
        assert get(client, f"/v1/citizens/{SOMCHAI}", "revenue", "estate-tax").status_code == 200
        asyncio.run(administer(settings, lambda admin: admin.delete_topics([anchors])))
        wait_until(lambda: client.get("/readyz").status_code == 503, timeout_s=20, what="not ready")
        assert "audit trail not sealed for" in client.get("/readyz").text
        refused = get(client, f"/v1/citizens/{SOMCHAI}", "revenue", "estate-tax")
        assert refused.status_code == 503 and "audit trail not sealed for" in refused.json()["detail"]
        asyncio.run(administer(settings, lambda admin: admin.create_topics([NewTopic(anchors, 1, 1)])))
        wait_until(lambda: client.get("/readyz").status_code == 200, timeout_s=30, what="sealed and ready again")
        assert get(client, f"/v1/citizens/{SOMCHAI}", "revenue", "estate-tax").status_code == 200


def test_a_restarted_api_continues_the_chain_under_a_rotated_key(trail: tuple[Settings, Messages]) -> None:
    settings, messages = trail
    rotated = run_gdx("audit", "rotate-key", "--overlap-hours", "1", env={"GDX_STATE_DIR": str(settings.state_dir)})
    assert rotated.code == 0 and "new audit key" in rotated.out, rotated.err
    with lookup_client(settings) as client:
        _requests(client)
    after = audit_records(settings)[settings.audit_partition]
    assert after[: len(messages)] == messages and len(after) > len(messages)
    assert verify_partition(settings.audit_partition, after, audit_rules(settings)).ok
    assert len({json.loads(value or b"")["key_id"] for _offset, value in after}) == 2, "both keys verify"


async def test_an_append_while_the_writer_starts_is_refused_not_chained_from_a_stale_head(settings: Settings) -> None:
    """A record appended while the writer is still reading the chain's head from the topic would be
    chained from the genesis, and the recovery would then rewind the head under it."""
    settings = await asyncio.to_thread(lookup_deployment, settings)
    topic, keys = settings.topic(AUDIT_TOPIC), audit_keys(settings)

    def writer() -> AuditWriter:
        return AuditWriter(settings.kafka, topic, 0, keys, anchor_topic=settings.topic(ANCHOR_TOPIC), max_unsealed_s=60)

    first = writer()
    await first.start()
    await first.append({"kind": "access", "time_ms": now_ms()})
    await first.stop()

    second = writer()
    recover = second._recover_head
    recovering, gate = asyncio.Event(), asyncio.Event()

    async def held_recovery() -> None:
        recovering.set()
        await gate.wait()
        await recover()

    second._recover_head = held_recovery  # type: ignore[method-assign]
    starting = asyncio.create_task(second.start())
    await recovering.wait()
    with pytest.raises(AuditUnavailable):
        await asyncio.wait_for(second.append({"kind": "access", "time_ms": now_ms()}), 5)
    gate.set()
    await starting
    await second.append({"kind": "access", "time_ms": now_ms()})
    await second.stop()
    messages = (await asyncio.to_thread(audit_records, settings))[0]
    report = verify_partition(0, messages, audit_rules(settings))
    assert report.ok and report.records == {0: 2}, report.problems


def test_gdx_audit_rotate_key_refuses_a_negative_overlap_in_one_line(tmp_path: Path) -> None:
    result = run_gdx("audit", "rotate-key", "--overlap-hours", "-1", env={"GDX_STATE_DIR": str(tmp_path)})
    assert result.code == 1 and "Traceback" not in result.err
    assert result.err.strip().splitlines() == ["gdx: --overlap-hours -1 is negative — give 0 or more hours"]
    assert not (tmp_path / "audit-keys").exists(), "no key made by a refused command"
