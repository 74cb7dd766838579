"""Consent records from gdx.consent.v1 decide consented lookups: grant, expiry, one-time, revocation."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from linkage.consent import (
    CONSENT_TOPIC,
    Consent,
    ConsentFollower,
    ConsentRecord,
    ConsentSignatures,
    ConsentStore,
    UnknownConsentKey,
    publish_consents,
    read_consent,
)
from linkage.database import index_engine
from linkage.index_store import now_ms
from linkage.migrate import upgrade
from schemas.examples import MALEE, SOMCHAI
from schemas.identifiers import with_check_digit
from schemas.trust_list_file import TrustListFile
from streams.lookup_app import consent_signer
from streams.security.signing_keys import SigningKeys
from streams.settings import Settings
from tests.support.cli_run import run_gdx
from tests.support.lookup_support import (
    consent,
    create_lookup_topics,
    get,
    granted,
    lookup_settings,
    publish,
    revocation,
    used_ms,
    wait_until,
)

pytestmark = pytest.mark.kafka
PERSON = f"/v1/citizens/{SOMCHAI}"


def _licence(client: TestClient, subject: str = SOMCHAI) -> tuple[int, dict[str, object]]:
    answer = get(client, f"/v1/citizens/{subject}", "dlt", "licence-application")
    return answer.status_code, answer.json()


def test_a_granted_consent_allows_and_its_revocation_refuses_the_next_request(
    lookup: tuple[Settings, TestClient],
) -> None:
    settings, client = lookup
    assert _licence(client)[1]["consent_reason"] == "missing"
    granted = consent(SOMCHAI, "dlt", "licence-application", ["dopa.person", "dopa.house"])
    publish(settings, granted)
    status, body = _licence(client)  # acknowledged before the request: it decides the request
    assert status == 200 and body["basis"] == f"consent: {granted.consent_id}"
    assert _licence(client, MALEE)[1]["consent_reason"] == "missing"  # another person's data stays closed
    publish(settings, granted.consent_id)  # a signed revocation: the very next request is refused
    status, body = _licence(client)
    assert (status, body["consent_reason"]) == (403, "revoked")


def test_a_revoked_status_record_also_revokes(lookup: tuple[Settings, TestClient]) -> None:
    settings, client = lookup
    granted = consent(SOMCHAI, "dlt", "licence-application", ["dopa.person"])
    publish(settings, granted)
    wait_until(lambda: _licence(client)[0] == 200, timeout_s=10, what="consent applied")
    publish(settings, granted.model_copy(update={"status": "REVOKED"}))
    wait_until(lambda: _licence(client)[1].get("consent_reason") == "revoked", timeout_s=10, what="revocation applied")


def test_neither_an_unsigned_consent_nor_a_revoked_one_granted_again_allows(
    lookup: tuple[Settings, TestClient],
) -> None:
    """Whoever holds the topic cannot make up a consent, and the consent service cannot revive one."""
    settings, client = lookup
    given = consent(SOMCHAI, "dlt", "licence-application", ["dopa.person"])
    publish(settings, given)
    assert _licence(client)[0] == 200
    publish(settings, given.consent_id)
    assert _licence(client)[1]["consent_reason"] == "revoked"
    made_up = consent(SOMCHAI, "dlt", "licence-application", ["dopa.person"])
    asyncio.run(_produce_unsigned(settings, made_up))
    publish(settings, given.model_copy(update={"granted_ms": now_ms(), "auth_event_id": "thaid-again"}))
    status, body = _licence(client)  # both applied, or rather read, before the request is decided
    assert (status, body["consent_reason"]) == (403, "revoked")


async def _produce_unsigned(settings: Settings, record: ConsentRecord) -> None:
    producer = settings.kafka.producer(acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(settings.topic(CONSENT_TOPIC), record.to_bytes(), key=record.consent_id.encode())
    finally:
        await producer.stop()


def test_an_expired_consent_is_refused(lookup: tuple[Settings, TestClient]) -> None:
    settings, client = lookup
    publish(settings, consent(SOMCHAI, "dlt", "licence-application", ["dopa.person"], valid_s=3.0))
    wait_until(lambda: _licence(client)[0] == 200, timeout_s=3, what="consent applied")
    wait_until(lambda: _licence(client)[0] == 403, timeout_s=6, what="consent expired")
    assert _licence(client)[1]["consent_reason"] == "expired"


def test_a_one_time_consent_is_used_up_by_the_first_lookup(lookup: tuple[Settings, TestClient]) -> None:
    settings, client = lookup
    granted(settings, SOMCHAI, "one-time")
    first, second = _licence(client), _licence(client)
    assert first[0] == 200
    assert second[0] == 403 and second[1]["consent_reason"] == "expired"


def test_a_one_time_consent_survives_a_not_found(lookup: tuple[Settings, TestClient]) -> None:
    settings, client = lookup
    unknown = with_check_digit("199999999999")
    consent_id = granted(settings, unknown, "one-time")
    assert _licence(client, unknown)[0] == 404
    assert used_ms(settings, consent_id) is None
    assert _licence(client, unknown)[0] == 404  # not 403: the consent was not spent by an answer that never left


def test_a_one_time_consent_survives_an_unavailable_audit_trail(lookup: tuple[Settings, TestClient]) -> None:
    settings, client = lookup
    consent_id = granted(settings, SOMCHAI, "one-time")
    parts = client.app.state.lookup  # type: ignore[attr-defined]
    client.portal.call(parts.audit.stop)  # type: ignore[attr-defined]
    assert _licence(client)[0] == 503
    assert used_ms(settings, consent_id) is None
    client.portal.call(parts.audit.start)  # type: ignore[attr-defined]
    assert _licence(client)[0] == 200
    assert _licence(client)[1]["consent_reason"] == "expired"


def test_concurrent_lookups_spend_a_one_time_consent_once(lookup: tuple[Settings, TestClient]) -> None:
    settings, client = lookup
    granted(settings, SOMCHAI, "one-time")
    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(status for status, _body in pool.map(lambda _i: _licence(client), range(8)))
    assert statuses == [200] + [403] * 7


def test_the_answer_holds_only_what_both_purpose_and_consent_cover(lookup: tuple[Settings, TestClient]) -> None:
    settings, client = lookup
    publish(settings, consent(SOMCHAI, "dlt", "licence-application", ["dopa.person", "dlt.vehicle"]))
    wait_until(lambda: _licence(client)[0] == 200, timeout_s=10, what="consent applied")
    body = _licence(client)[1]
    assert set(body["record"]["fields"]) == {"name", "name_en", "date_of_birth", "house_id", "status"}
    assert "card" not in body["record"]["fields"]
    assert (
        body["linked"] == []
    )  # dlt.vehicle: consented, but not in the purpose; dopa.house: in the purpose, not consented


def test_a_consent_without_the_subjects_registry_covers_nothing(lookup: tuple[Settings, TestClient]) -> None:
    settings, client = lookup
    publish(settings, consent(SOMCHAI, "dlt", "licence-application", ["dopa.house"]))
    wait_until(
        lambda: _licence(client)[1].get("consent_reason") == "data_not_covered", timeout_s=10, what="consent applied"
    )


def test_a_consent_for_another_purpose_is_a_purpose_mismatch(lookup: tuple[Settings, TestClient]) -> None:
    settings, client = lookup
    publish(settings, consent(SOMCHAI, "dlt", "road-tax", ["dopa.person"]))
    wait_until(
        lambda: _licence(client)[1].get("consent_reason") == "purpose_mismatch", timeout_s=10, what="consent applied"
    )


@pytest.mark.parametrize("index_url", ["sqlite", "postgresql"], indirect=True)
def test_replaying_the_topic_keeps_a_used_one_time_consent_used(index_url: str) -> None:
    engine = index_engine(index_url)
    upgrade(engine)
    store = ConsentStore(engine)
    record = consent(SOMCHAI, "dlt", "licence-application", ["dopa.person"], kind="one-time")
    store.apply(record)
    now = int(time.time() * 1000)
    assert store.check(SOMCHAI, "dlt", "licence-application", now).consent_id == record.consent_id
    assert store.use_up(record.consent_id, now) and not store.use_up(record.consent_id, now)
    store.apply(record)
    assert store.check(SOMCHAI, "dlt", "licence-application", now).reason == "expired"
    store.apply(revocation(record.consent_id))
    assert store.check(SOMCHAI, "dlt", "licence-application", now).reason == "revoked"


@pytest.mark.parametrize("index_url", ["sqlite", "postgresql"], indirect=True)
@pytest.mark.parametrize("revoked_first", [False, True])
def test_a_revoked_consent_granted_again_under_its_id_stays_revoked(index_url: str, revoked_first: bool) -> None:
    """Revocation is final, even when the revocation came first or the topic no longer holds it."""
    engine = index_engine(index_url)
    upgrade(engine)
    store = ConsentStore(engine)
    record = consent(SOMCHAI, "dlt", "licence-application", ["dopa.person"])
    for applied in (
        [revocation(record.consent_id), record] if revoked_first else [record, revocation(record.consent_id)]
    ):
        store.apply(applied)
    store.apply(record.model_copy(update={"granted_ms": now_ms(), "auth_event_id": "thaid-again"}))
    decision = store.check(SOMCHAI, "dlt", "licence-application", now_ms())
    assert (decision.consent_id, decision.reason) == (None, "revoked" if not revoked_first else "missing")
    engine.dispose()


@pytest.mark.parametrize("index_url", ["sqlite", "postgresql"], indirect=True)
def test_an_older_version_of_a_consent_sent_again_does_not_undo_the_newer(index_url: str) -> None:
    engine = index_engine(index_url)
    upgrade(engine)
    store = ConsentStore(engine)
    wide = consent(SOMCHAI, "dlt", "licence-application", ["dopa.person", "dopa.house"])
    narrow = wide.model_copy(update={"datasets": ["dopa.person"], "granted_ms": wide.granted_ms + 1000})
    store.apply(narrow)
    store.apply(wide)  # replayed by whoever can write the topic: signed, but older
    assert store.check(SOMCHAI, "dlt", "licence-application", now_ms()).datasets == {"dopa.person"}
    engine.dispose()


def test_only_records_the_consent_service_signed_are_read(tmp_path: Path) -> None:
    keys = SigningKeys(tmp_path / "consent-keys")
    signer = keys.signer("consent")  # made first: a key signs only what is granted while it is valid
    signatures = ConsentSignatures(TrustListFile(keys.trust_list_path))
    signed = consent(SOMCHAI, "dlt", "licence-application", ["dopa.person"]).signed_with(signer)
    impostor = SigningKeys(tmp_path / "elsewhere").signer("consent")
    wrong_owner = keys.signer("audit")  # on the list, but not the consent service's
    altered = signed.model_copy(update={"datasets": ["dopa.person", "dlt.vehicle"]})
    cases = {
        "signed": signed,
        "unsigned": signed.model_copy(update={"key_id": None, "signature": None}),
        "foreign key": signed.signed_with(wrong_owner),
        "altered": altered,
    }
    read = {name: read_consent(r.consent_id, r.to_bytes(), signatures) for name, r in cases.items()}
    assert read == {"signed": signed, "unsigned": None, "foreign key": None, "altered": None}
    assert read_consent(signed.consent_id, None, signatures) is None, "a tombstone cannot be signed"
    forged = signed.signed_with(impostor)  # a key no trust list holds: the follower stops there, not skips
    with pytest.raises(UnknownConsentKey, match="which the consent trust list .* does not hold"):
        read_consent(forged.consent_id, forged.to_bytes(), signatures)


def test_a_consent_whose_key_is_not_its_id_is_rejected(tmp_path: Path) -> None:
    """The compacted topic keeps one record per key: a consent keyed otherwise is refused."""
    keys = SigningKeys(tmp_path / "consent-keys")
    signer = keys.signer("consent")
    signed = consent(SOMCHAI, "dlt", "licence-application", ["dopa.person"]).signed_with(signer)
    signatures = ConsentSignatures(TrustListFile(keys.trust_list_path))
    assert read_consent("another-key", signed.to_bytes(), signatures) is None


class _SlowBroker(AIOKafkaConsumer):
    """A consumer whose end offsets arrive after 0.8 s, as from a broker under load."""

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        await asyncio.sleep(0.8)
        return await super().end_offsets(partitions)


class _StuckStore(ConsentStore):
    """A store whose writes wait until released, as on a database lock another writer holds."""

    def __init__(self, engine: Engine, release: threading.Event) -> None:
        super().__init__(engine)
        self.release = release

    def apply(self, record: Consent) -> None:
        self.release.wait(30)
        super().apply(record)


def test_the_consent_wait_is_at_most_its_timeout_in_all(settings: Settings) -> None:
    settings = lookup_settings(settings)
    create_lookup_topics(settings)
    engine = index_engine(settings.index_database_url)
    upgrade(engine)
    release = threading.Event()
    topic = settings.topic(CONSENT_TOPIC)
    signer = consent_signer(settings)
    signatures = ConsentSignatures(TrustListFile(settings.consent_trust_list_path))
    follower = ConsentFollower(_StuckStore(engine, release), settings.kafka, topic, signatures, _SlowBroker)

    async def slow_and_stuck() -> float:
        following = asyncio.create_task(follower.run())
        try:
            await asyncio.wait_for(follower.caught_up.wait(), 20)
            await publish_consents(
                settings.kafka,
                topic,
                [consent(SOMCHAI, "dlt", "licence-application", ["dopa.person"])],
                signer,
            )
            began = time.monotonic()
            assert not await follower.current(1.0)
            return time.monotonic() - began
        finally:
            release.set()
            following.cancel()
            with pytest.raises(asyncio.CancelledError):
                await following

    assert asyncio.run(slow_and_stuck()) < 1.3
    engine.dispose()


def test_after_gdx_consent_rotate_key_records_under_either_key_are_read(tmp_path: Path) -> None:
    keys = SigningKeys(tmp_path / "consent-keys")
    old = keys.signer("consent")
    signatures = ConsentSignatures(TrustListFile(keys.trust_list_path))  # read before the rotation
    rotated = run_gdx("consent", "rotate-key", "--overlap-hours", "1", env={"GDX_STATE_DIR": str(tmp_path)})
    assert rotated.code == 0 and rotated.out.startswith("new consent key consent-"), rotated.err
    new = keys.signer("consent")
    assert new.key_id != old.key_id
    for signer in (old, new):  # the new key is looked up in the file at once, not skipped
        record = consent(SOMCHAI, "dlt", "licence-application", ["dopa.person"]).signed_with(signer)
        assert read_consent(record.consent_id, record.to_bytes(), signatures) == record, signer.key_id
