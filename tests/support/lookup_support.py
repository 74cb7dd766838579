"""A lookup API for tests: a real SQLite index filled through IndexStore, the real broker for the
audit and consent topics (under the test's own prefix), driven through FastAPI's TestClient."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from fastapi.testclient import TestClient
from sqlalchemy import select

from linkage.api_models import Problem
from linkage.audit import ANCHOR_TOPIC, AUDIT_TOPIC, VerifyRules, read_partitions
from linkage.consent import CONSENT_TOPIC, ConsentRecord, ConsentRevocation, publish_consents
from linkage.consumers import ConsumerRegistry
from linkage.database import index_engine
from linkage.index_store import IndexStore, now_ms
from linkage.migrate import upgrade
from linkage.subject_tokens import issue
from linkage.tables import consents
from schemas.event_signatures import TrustList
from streams.lookup_app import consent_signer, create_lookup_app
from streams.security.signing_keys import SigningKeys
from streams.settings import Settings
from tests.support.linkage_support import index_event

KEYS = {
    "revenue": "demo-revenue-key",
    "dlt": "demo-dlt-key",
    "bank": "demo-bank-key",
    "citizen-portal": "demo-portal-key",
}
PROBLEM_KEYS = set(Problem.model_fields)
"""Every refusal's body, whatever went wrong."""
INDEXED = (
    "dopa.person",
    "dopa.house",
    "dopa.residence",
    "dopa.marriage",
    "dbd.juristic-person",
    "dol.title-deed",
    "dlt.vehicle",
    "dlt.driving-licence",
)


def create_lookup_topics(settings: Settings) -> None:
    """The lookup API's topics, and the consent service's key, as a deployment's set-up makes it:
    before the first consent a test grants, whose time must fall within the key's validity."""
    consent_signer(settings)

    async def create() -> None:
        admin = settings.kafka.admin()
        await admin.start()
        try:
            await admin.create_topics(
                [
                    NewTopic(settings.topic(AUDIT_TOPIC), 3, 1),
                    NewTopic(settings.topic(ANCHOR_TOPIC), 1, 1),
                    NewTopic(settings.topic(CONSENT_TOPIC), 3, 1, topic_configs={"cleanup.policy": "compact"}),
                ]
            )
        finally:
            await admin.close()

    asyncio.run(create())


def lookup_settings(settings: Settings, **changes: Any) -> Settings:
    return settings.model_copy(update={"index_url": f"sqlite:///{settings.state_dir / 'index.db'}", **changes})


def fill_index(settings: Settings, datasets: tuple[str, ...] = INDEXED) -> None:
    engine = index_engine(settings.index_database_url)
    upgrade(engine)
    IndexStore(engine).apply([index_event(d) for d in datasets])
    engine.dispose()


def lookup_deployment(settings: Settings) -> Settings:
    """Settings of a lookup API of its own (topic prefix, consumers), its topics created and the
    example index filled: what every lookup test starts from."""
    settings = lookup_settings(settings)
    create_lookup_topics(settings)
    fill_index(settings)
    return settings


def wait_until(condition: Callable[[], bool], timeout_s: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout_s} s")
        time.sleep(0.05)


@contextmanager
def lookup_client(settings: Settings, registry: ConsumerRegistry | None = None) -> Iterator[TestClient]:
    """The app, started (audit writer connected, consents replayed) before the test talks to it."""
    with TestClient(create_lookup_app(settings, registry), raise_server_exceptions=False) as client:
        wait_until(lambda: client.get("/readyz").status_code == 200, what="lookup API ready")
        yield client


def get(
    client: TestClient, path: str, consumer: str | None, purpose: str, key: str | None = None, token: str | None = None
) -> Any:
    headers = {"X-API-Key": key or KEYS[consumer]} if consumer or key else {}
    if token is not None:
        headers["X-Subject-Token"] = token
    return client.get(path, params={"purpose": purpose}, headers=headers)


def subject_token(settings: Settings, subject: str, consumer: str = "citizen-portal", **options: Any) -> str:
    """The token the consumer (the citizen portal) signs for a person signed in to it."""
    return issue(SigningKeys(settings.subject_token_keys_path).signer(consumer), subject, **options)


def consent(
    subject: str,
    consumer: str,
    purpose: str,
    datasets: list[str],
    *,
    kind: str = "periodic",
    valid_s: float = 3600.0,
    consent_id: str | None = None,
) -> ConsentRecord:
    now = int(time.time() * 1000)
    return ConsentRecord(
        consent_id=consent_id or str(uuid.uuid4()),
        subject_id=subject,
        consumer=consumer,
        purpose=purpose,
        datasets=datasets,
        kind=kind,  # type: ignore[arg-type]
        granted_ms=now,
        expires_ms=now + int(valid_s * 1000),
        auth_event_id=f"thaid-{uuid.uuid4().hex[:12]}",
    )


def revocation(consent_id: str) -> ConsentRevocation:
    return ConsentRevocation(consent_id=consent_id, revoked_ms=now_ms(), auth_event_id=f"thaid-{uuid.uuid4().hex[:12]}")


def publish(settings: Settings, *records: ConsentRecord | str) -> None:
    """As the consent service does, signed with its key: a bare consent id is that consent's revocation."""
    signed = [revocation(r) if isinstance(r, str) else r for r in records]
    asyncio.run(publish_consents(settings.kafka, settings.topic(CONSENT_TOPIC), signed, consent_signer(settings)))


def audit_records(settings: Settings, topic: str | None = None) -> dict[int, list[tuple[int, bytes | None]]]:
    async def read() -> dict[int, list[tuple[int, bytes | None]]]:
        return {p: m async for p, m in read_partitions(settings.kafka, topic or settings.topic(AUDIT_TOPIC))}

    return asyncio.run(read())


async def administer(settings: Settings, change: Callable[[AIOKafkaAdminClient], Awaitable[object]]) -> None:
    """Run an admin request as the operator, again while the broker still finishes a deletion."""
    admin = settings.kafka.admin()
    await admin.start()
    try:
        for _attempt in range(50):
            try:
                await change(admin)
                return
            except KafkaError:
                await asyncio.sleep(0.2)
        raise AssertionError("the admin request kept failing")
    finally:
        await admin.close()


def audit_rules(settings: Settings, at_ms: int | None = None) -> VerifyRules:
    """What an auditor checks a trail with: the public keys on the audit trust list only."""
    trust = TrustList.load(settings.audit_trust_list_path)
    return VerifyRules(trust, settings.audit_checkpoint_interval_s, at_ms or now_ms())


def audited(settings: Settings, request_id: str) -> dict[str, Any]:
    """The audit record of one request (it was acknowledged before the answer, so it is there now)."""
    for messages in audit_records(settings).values():
        for _offset, value in messages:
            record = json.loads(value or b"{}")
            if record.get("request_id") == request_id:
                return record
    raise AssertionError(f"no audit record for request {request_id}")


def used_ms(settings: Settings, consent_id: str) -> int | None | bool:
    """The consent's `used_ms` in the API's table, or False while the table does not hold it."""
    engine = index_engine(settings.index_database_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(select(consents.c.used_ms).where(consents.c.consent_id == consent_id)).first()
    finally:
        engine.dispose()
    return False if row is None else row.used_ms


def granted(settings: Settings, subject: str, kind: str = "periodic") -> str:
    """A consent of `subject` for dlt/licence-application on dopa.person, published and applied by
    the API (read from its table, so a one-time consent is not spent by asking)."""
    record = consent(subject, "dlt", "licence-application", ["dopa.person"], kind=kind)
    publish(settings, record)
    wait_until(lambda: used_ms(settings, record.consent_id) is not False, timeout_s=10, what="consent applied")
    return record.consent_id
