"""The audit trail: every request chained on gdx.audit before its answer, and tampering detected
— an altered, removed or reordered record, or a consistently rewritten tail, named by partition
and offset, through the library and through `gdx audit verify`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from itertools import pairwise

import pytest
from aiokafka.admin import NewTopic
from fastapi.testclient import TestClient

from linkage.audit import (
    AUDIT_TOPIC,
    CHECKPOINT,
    GENESIS,
    AuditUnavailable,
    AuditWriter,
    canonical,
    load_signing_key,
    record_hash,
    verify_partition,
)
from schemas.examples import MALEE, SOMCHAI
from streams.settings import Settings
from tests.support.cli_run import run_gdx
from tests.support.lookup_support import audit_records, get, lookup_client, lookup_deployment

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


def _key(settings: Settings) -> bytes:
    return load_signing_key(settings.audit_key_path, create=False)


def test_every_request_is_chained_and_the_trail_verifies(trail: tuple[Settings, Messages]) -> None:
    settings, messages = trail
    records = _records(messages)
    assert [r["seq"] for r in records] == list(range(len(records)))
    assert records[0]["prev_hash"] == GENESIS and records[0]["kind"] == CHECKPOINT
    assert all(later["prev_hash"] == earlier["hash"] for earlier, later in pairwise(records))
    access = [r for r in records if r["kind"] == "access"]
    assert [(r["decision"], r["status"]) for r in access] == [("allow", 200), ("deny", 403), ("deny", 401)] * 2
    assert access[1]["reason"] == "no_consent" and access[1]["subject"] == {"kind": "citizen", "id": MALEE}
    report = verify_partition(settings.audit_partition, messages, _key(settings))
    assert report.ok, report.problems
    assert report.checkpoints[settings.audit_partition] == 3 and report.unsealed[settings.audit_partition] == 0
    assert [r["kind"] for r in records] == ["checkpoint", *["access"] * 3, "checkpoint", *["access"] * 3, "checkpoint"]


def _altered(messages: Messages) -> Messages:
    changed = json.loads(messages[2][1] or b"")
    changed["consumer"] = "someone-else"
    return [*messages[:2], (messages[2][0], canonical(changed)), *messages[3:]]


def _rewritten(messages: Messages) -> Messages:
    """Alter record 2 and recompute every hash after it: only the checkpoints' signatures can tell."""
    records = _records(messages)
    records[2]["purpose"] = "estate-tax-forged"
    for index in range(2, len(records)):
        records[index]["prev_hash"] = records[index - 1]["hash"]
        records[index]["hash"] = record_hash(records[index])
    return [(offset, canonical(record)) for (offset, _), record in zip(messages, records, strict=True)]


@pytest.mark.parametrize(
    ("tamper", "position", "words"),
    [
        (_altered, 2, "altered"),
        (lambda m: [*m[:2], *m[3:]], 2, "removed or reordered"),
        (lambda m: [*m[:2], m[3], m[2], *m[4:]], 2, "removed or reordered"),
        (lambda m: [*m[:4], m[1], *m[4:]], 4, "reordered or replayed"),
        (_rewritten, 4, "invalid signature"),
    ],
    ids=["altered", "removed", "swapped", "replayed", "rewritten-tail"],
)
def test_tampering_is_detected_where_it_happened(
    trail: tuple[Settings, Messages], tamper: Callable[[Messages], Messages], position: int, words: str
) -> None:
    settings, messages = trail
    tampered = [(offset, value) for offset, (_, value) in enumerate(tamper(messages))]
    report = verify_partition(settings.audit_partition, tampered, _key(settings))
    assert not report.ok
    problem = report.problems[0]
    assert (problem.partition, problem.offset) == (settings.audit_partition, position) and words in problem.what, (
        problem
    )


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


def test_gdx_audit_verify_passes_an_intact_trail_and_names_a_removed_record(trail: tuple[Settings, Messages]) -> None:
    settings, messages = trail
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "GDX_TOPIC_PREFIX": settings.topic_prefix,
        "GDX_STATE_DIR": str(settings.state_dir),
    }
    intact = run_gdx("audit", "verify", env=env)
    assert intact.code == 0, intact.err
    assert f"partition {settings.audit_partition}: {len(messages)} records, 3 checkpoints" in intact.out
    assert "every chain intact" in intact.out
    copy = settings.topic("gdx.audit-tampered")
    _copy_to_topic(settings, copy, settings.audit_partition, [*messages[:3], *messages[4:]])
    tampered = run_gdx("audit", "verify", "--topic", copy, env=env)
    assert tampered.code == 1
    assert f"TAMPERED partition {settings.audit_partition} offset 3: records removed" in tampered.out


def test_audit_verify_without_the_key_is_one_clear_line(settings: Settings) -> None:
    env = {"KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers, "GDX_STATE_DIR": str(settings.state_dir)}
    result = run_gdx("audit", "verify", env=env)
    assert result.code == 1 and "Traceback" not in result.err
    assert result.err.strip().splitlines() == [
        f"gdx: audit signing key {settings.state_dir / 'audit.key'} does not exist — "
        "give the key the lookup API signs with (GDX_AUDIT_KEY_FILE)"
    ]


def test_a_restarted_api_continues_the_chain(trail: tuple[Settings, Messages]) -> None:
    settings, messages = trail
    with lookup_client(settings) as client:
        _requests(client)
    after = audit_records(settings)[settings.audit_partition]
    assert after[: len(messages)] == messages and len(after) > len(messages)
    assert verify_partition(settings.audit_partition, after, _key(settings)).ok


async def test_an_append_while_the_writer_starts_is_refused_not_chained_from_a_stale_head(settings: Settings) -> None:
    """A record appended while the writer is still reading the chain's head from the topic would be
    chained from the genesis, and the recovery would then rewind the head under it."""
    settings = await asyncio.to_thread(lookup_deployment, settings)
    topic, key = settings.topic(AUDIT_TOPIC), b"k" * 32
    first = AuditWriter(settings.kafka, topic, 0, key)
    await first.start()
    await first.append({"kind": "access", "time_ms": 1})
    await first.stop()

    second = AuditWriter(settings.kafka, topic, 0, key)
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
        await asyncio.wait_for(second.append({"kind": "access", "time_ms": 2}), 5)
    gate.set()
    await starting
    await second.append({"kind": "access", "time_ms": 3})
    await second.stop()
    messages = (await asyncio.to_thread(audit_records, settings))[0]
    report = verify_partition(0, messages, key)
    assert report.ok and report.records == {0: 2}, report.problems
