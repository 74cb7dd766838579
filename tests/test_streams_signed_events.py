"""Signed change events: the worker applies only what the owning agency signed, under a key the
trust list holds for it at publish time; forged, unsigned, replayed-onto-other-bytes and
version-leaping events are dead-lettered and change nothing. Unit tests at the pipeline's seam,
then the real worker on the real broker."""

from __future__ import annotations

import asyncio
import json
import stat
import time
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from linkage.database import index_engine
from linkage.index_store import IndexStore
from linkage.migrate import upgrade
from linkage.subscriptions import load_subscriptions
from linkage.views import record_view
from monitoring import metrics
from schemas import trust_list_file
from schemas.event_signatures import (
    CHUNK,
    KEY_ID_HEADER,
    PATH_HEADER,
    SIGNATURE_HEADER,
    BadSignature,
    Signer,
    TrustList,
    TrustListError,
)
from streams.pipeline import BAD_SIGNATURE, DEAD_LETTER, Pipeline, SourceRecord
from streams.security.signing_keys import SigningKeys
from streams.signature_check import SignatureCheck
from streams.worker_core import WorkerCore
from tests.support.cli_run import run_gdx
from tests.support.linkage_support import CATALOG, decoded_record, encode, on_wire
from tests.support.recording_sink import RecordingSink, recording_notifier
from tests.support.registry_support import framed
from tests.support.schema_helpers import schema_by_id
from tests.support.signing_support import AgencyKeys
from tests.support.stream_harness import Backbone, dead_letters, produce, wait_caught_up, worker

VEHICLE_TOPIC = "gdx.dlt.vehicle.v1"
TOPICS = {VEHICLE_TOPIC: "dlt.vehicle", "gdx.dopa.person.v1": "dopa.person"}
HOUR_MS = 3600 * 1000


def _stored(version: int = 1, **changes: object) -> bytes:
    return encode("dlt.vehicle", decoded_record("dlt.vehicle", version=version, **changes))


def _value(version: int = 1, **changes: object) -> bytes:
    return on_wire("dlt.vehicle", decoded_record("dlt.vehicle", version=version, **changes))


def _record(value: bytes, headers: list[tuple[str, bytes | None]], offset: int = 0) -> SourceRecord:
    return SourceRecord(VEHICLE_TOPIC, 0, offset, b"k", value, tuple(headers), timestamp_ms=int(time.time() * 1000))


@pytest.fixture
def keys(tmp_path: Path) -> AgencyKeys:
    return AgencyKeys(tmp_path / "state")


@pytest.fixture
def pipeline(tmp_path: Path, keys: AgencyKeys) -> Pipeline:
    engine = index_engine(f"sqlite:///{tmp_path / 'index.db'}")
    upgrade(engine)
    for agency in ("dlt", "dopa"):  # on the trust list before the worker starts, as `gdx up` makes them
        keys.signer(agency)
    return Pipeline(
        CATALOG, IndexStore(engine, load_subscriptions(), max_version_jump=100), TOPICS, keys.check(), schema_by_id
    )


def _held_version(pipeline: Pipeline) -> int | None:
    view = record_view(pipeline.store.engine, "dlt.vehicle", str(decoded_record("dlt.vehicle")["entity_key"]))
    return None if view is None else int(view["provenance"]["entity_version"])


def test_a_signed_event_applies_and_the_index_keeps_who_signed_it(pipeline: Pipeline, keys: AgencyKeys) -> None:
    value = _value()
    result = pipeline.process([_record(value, keys.headers("dlt", value))])
    assert result.outcomes == ["applied"]
    view = record_view(pipeline.store.engine, "dlt.vehicle", str(decoded_record("dlt.vehicle")["entity_key"]))
    assert view is not None and view["provenance"]["signed_by"] == keys.signer("dlt").key_id


def test_every_forgery_is_dead_lettered_and_changes_nothing(pipeline: Pipeline, keys: AgencyKeys) -> None:
    genuine = _value()
    altered = _value(make="FORGED")
    stranger = Signer(keys.signer("dlt").key_id, Ed25519PrivateKey.generate())  # right key id, wrong key
    cases = {
        "no signature": (genuine, []),
        "the right key id, another key": (genuine, stranger.headers(genuine)),
        "a genuine signature replayed on altered bytes": (altered, keys.headers("dlt", genuine)),
        "another agency's key": (genuine, keys.headers("dopa", genuine)),
        "a key id with no signature": (genuine, [(KEY_ID_HEADER, keys.signer("dlt").key_id.encode())]),
        "an unknown key": (genuine, Signer("dlt-rogue", Ed25519PrivateKey.generate()).headers(genuine)),
    }
    batch = [_record(value, headers, offset) for offset, (value, headers) in enumerate(cases.values())]
    result = pipeline.process(batch)
    assert result.outcomes == [DEAD_LETTER] * len(cases), dict(zip(cases, result.outcomes, strict=True))
    assert {d.reason for d in result.dead_letters} == {BAD_SIGNATURE}
    details = [d.detail for d in result.dead_letters]
    assert "unsigned" in details[0] and "does not match" in details[1] and "does not match" in details[2]
    assert "signs for dopa, not for dlt" in details[3] and "not on the trust list" in details[5]
    assert _held_version(pipeline) is None, "nothing forged reached the index"


def test_a_version_leap_beyond_the_limit_is_dead_lettered_and_genuine_versions_still_apply(
    pipeline: Pipeline, keys: AgencyKeys
) -> None:
    first, leap, second = _value(1), _value(2**62), _value(2)
    result = pipeline.process(
        [
            _record(first, keys.headers("dlt", first), 0),
            _record(leap, keys.headers("dlt", leap), 1),
            _record(second, keys.headers("dlt", second), 2),
        ]
    )
    assert result.outcomes == ["applied", DEAD_LETTER, "applied"]
    assert [d.reason for d in result.dead_letters] == ["version-jump"]
    assert _held_version(pipeline) == 2, "the leap did not make version 2 stale"


def test_an_event_claiming_another_agency_is_refused(pipeline: Pipeline, keys: AgencyKeys) -> None:
    value = _value()
    record = decoded_record("dlt.vehicle")
    record["source_agency"] = "DOPA"
    claimed = on_wire("dlt.vehicle", record)
    result = pipeline.process(
        [_record(claimed, keys.headers("dlt", claimed)), _record(value, keys.headers("dlt", value))]
    )
    assert result.outcomes == [DEAD_LETTER, "applied"]
    assert "source_agency DOPA" in result.dead_letters[0].detail


def test_the_migration_policy_accepts_unsigned_but_never_a_wrong_signature(tmp_path: Path, keys: AgencyKeys) -> None:
    keys.signer("dlt")
    check = SignatureCheck(keys.keys.trust_list_path, {"dlt": "accept-unsigned"})
    value = _value()
    assert check.signed_by("dlt", value, [], int(time.time() * 1000)) is None
    with pytest.raises(BadSignature, match="does not match"):
        check.signed_by("dlt", _value(make="X"), keys.headers("dlt", value), int(time.time() * 1000))
    with pytest.raises(BadSignature, match="requires a signature"):
        check.signed_by("dopa", value, [], int(time.time() * 1000))


def test_a_rotated_key_signs_beside_the_old_one_until_the_overlap_ends(tmp_path: Path) -> None:
    store = SigningKeys.of(tmp_path)
    now = int(time.time() * 1000)
    old = store.signer("dol", at_ms=now - HOUR_MS)
    new_key = store.rotate("dol", overlap_s=3600, at_ms=now)
    new = store.signer("dol", at_ms=now + 1)
    assert new.key_id == new_key.key_id != old.key_id, "the publisher picks up the new key"
    trust = store.trust_list()
    value = _value()
    for signer in (old, new):
        assert trust.verify("dol", value, signer.headers(value), now + 1000) == signer.key_id
    with pytest.raises(BadSignature, match="was not valid"):
        trust.verify("dol", value, old.headers(value), now + 2 * HOUR_MS)
    assert trust.verify("dol", value, new.headers(value), now + 2 * HOUR_MS) == new.key_id


def test_the_worker_trusts_a_key_added_after_it_started(
    tmp_path: Path, keys: AgencyKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trust_list_file, "RELOAD_EVERY_S", 0.0)
    check = keys.check()  # no trust list yet: the agency has not started
    value = _value()
    assert check.signed_by("dlt", value, keys.headers("dlt", value), int(time.time() * 1000)) is not None


def test_keys_are_private_and_the_trust_list_public(tmp_path: Path) -> None:
    store = SigningKeys.of(tmp_path)
    signer = store.signer("dbd")
    assert stat.S_IMODE(store.root.stat().st_mode) == 0o700
    assert stat.S_IMODE((store.root / f"{signer.key_id}.key").stat().st_mode) == 0o600
    document = json.loads(store.trust_list_path.read_text())
    assert [entry["key_id"] for entry in document["keys"]] == [signer.key_id]
    assert "PRIVATE" not in store.trust_list_path.read_text()


def test_a_malformed_trust_list_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "trust-list.json"
    path.write_text('{"keys": [{"key_id": "x"}]}')
    with pytest.raises(TrustListError, match=str(path)):
        TrustList.load(path)


async def test_bad_signatures_are_counted_as_dead_letters(pipeline: Pipeline) -> None:
    counter = metrics.EVENTS_DEAD_LETTERED.labels(agency="dlt", dataset="vehicle", reason="bad_signature")
    before = counter._value.get()
    core = WorkerCore(
        pipeline, RecordingSink(), {t: f"gdx.dlq.{t}" for t in TOPICS}, recording_notifier(pipeline.store.engine)
    )
    await core.handle([_record(_value(), [])])
    assert counter._value.get() == before + 1


@pytest.mark.kafka
def test_the_real_worker_applies_only_signed_events_and_any_consumer_can_check_one(
    bootstrap_servers: str, tmp_path: Path
) -> None:
    backbone = Backbone(
        bootstrap_servers, f"s{uuid.uuid4().hex[:8]}.", tmp_path / "state", f"sqlite:///{tmp_path / 'index.db'}"
    )
    assert backbone.gdx("topics", "apply").code == 0
    topic = f"{backbone.prefix}{VEHICLE_TOPIC}"
    keys = AgencyKeys(backbone.state_dir)
    first, forged, second = (framed(topic, v) for v in (_stored(1), _stored(2, make="FORGED"), _stored(3)))
    old = keys.signer("dlt")
    rotated = backbone.gdx("keys", "rotate", "dlt")
    assert rotated.code == 0 and "new key" in rotated.out, rotated.err
    new = SigningKeys.of(backbone.state_dir.resolve()).signer("dlt")
    assert new.key_id != old.key_id
    key = str(decoded_record("dlt.vehicle")["entity_key"]).encode()
    asyncio.run(
        produce(
            bootstrap_servers,
            topic,
            [
                (key, first, old.headers(first)),  # the old key, inside its overlap
                (key, forged, Signer(new.key_id, Ed25519PrivateKey.generate()).headers(forged)),
                (key, forged, []),
                (key, second, new.headers(second)),
            ],
        )
    )
    with worker(backbone) as process:
        wait_caught_up(backbone, 120, process)
    view = record_view(index_engine(backbone.index_url), "dlt.vehicle", key.decode())
    assert view is not None and view["provenance"]["entity_version"] == 3
    assert view["provenance"]["signed_by"] == new.key_id and view["payload"]["make"] != "FORGED"
    assert dead_letters(backbone) == 2
    rebuilt = backbone.gdx("index", "rebuild")  # the replay keeps out what the worker kept out
    assert rebuilt.code == 0 and "identical" in rebuilt.out and "dead-letter 2" in rebuilt.out, rebuilt.out

    genuine = backbone.gdx("events", "verify", topic, "0", "0")
    assert genuine.code == 0 and f"with key {old.key_id}" in genuine.out, genuine.out + genuine.err
    bad = backbone.gdx("events", "verify", topic, "0", "1")
    assert bad.code == 1 and "BAD SIGNATURE" in bad.out, bad.out + bad.err
    unsigned = backbone.gdx("events", "verify", topic, "0", "2")
    assert unsigned.code == 1 and "UNSIGNED" in unsigned.out
    missing = backbone.gdx("events", "verify", topic, "0", "99")
    assert missing.code != 0 and missing.err.count("\n") == 1 and "holds offsets 0..3" in missing.err
    unknown = backbone.gdx("events", "verify", "gdx.nope.v1", "0", "0")
    assert unknown.code == 1 and unknown.err.count("\n") == 1 and "no change topic" in unknown.err, unknown.err
    listed = backbone.gdx("keys", "list")
    assert old.key_id in listed.out and new.key_id in listed.out


def test_signature_headers_are_the_documented_names() -> None:
    signer = Signer("dlt-1", Ed25519PrivateKey.generate())
    headers = dict(signer.headers(b"v"))
    assert set(headers) == {KEY_ID_HEADER, SIGNATURE_HEADER, PATH_HEADER}
    assert {KEY_ID_HEADER, SIGNATURE_HEADER, PATH_HEADER} == {"gdx-signing-key", "gdx-signature", "gdx-signature-path"}
    signature = headers[SIGNATURE_HEADER]
    assert signature is not None and len(signature) == 64 and headers[PATH_HEADER] == bytes(4)


def test_a_chunk_is_signed_once_and_each_of_its_events_verifies_alone(keys: AgencyKeys) -> None:
    values = [_value(version) for version in range(1, CHUNK + 6)]  # one full chunk and 5 more
    signed = keys.signer("dlt").sign_all(values)
    signatures = {dict(headers)[SIGNATURE_HEADER] for headers in signed}
    assert len(signatures) == 2, "one signature per chunk"
    now = int(time.time() * 1000)
    for value, headers in zip(values, signed, strict=True):
        alone = TrustList.load(keys.keys.trust_list_path)  # a fresh verifier: nothing cached
        assert alone.verify("dlt", value, headers, now) == keys.signer("dlt").key_id
    trust = TrustList.load(keys.keys.trust_list_path)
    with pytest.raises(BadSignature, match="does not match"):
        trust.verify("dlt", values[1], signed[0], now)  # another event's path
    path = dict(signed[0])[PATH_HEADER]
    assert path is not None
    with pytest.raises(BadSignature, match="not 4 \\+ 32 per level"):
        trust.verify("dlt", values[0], [*signed[0][:2], (PATH_HEADER, path[:-1])], now)
    with pytest.raises(BadSignature, match="does not fit"):
        trust.verify("dlt", values[0], [*signed[0][:2], (PATH_HEADER, (1 << 20).to_bytes(4, "big") + path[4:])], now)


def test_gdx_keys_refuses_bad_input_in_one_line_and_makes_nothing(tmp_path: Path) -> None:
    env = {"GDX_STATE_DIR": str(tmp_path / "state")}
    empty = run_gdx("keys", "list", env=env)
    assert empty.code == 0 and "no signing keys" in empty.out, empty.err
    for args, code, said in (
        (("keys", "rotate", "dlt", "--overlap-hours", "-1"), 1, "is negative"),
        (("keys", "rotate", "nope"), 2, "invalid choice"),
        (("events", "verify", "gdx.dlt.vehicle.v1", "0", "zero"), 2, "invalid int value"),
    ):
        done = run_gdx(*args, env=env)
        assert done.code == code and done.err.count("\n") == 1 and said in done.err, done.err
        assert "Traceback" not in done.err
    assert not (tmp_path / "state" / "signing" / "trust-list.json").exists(), "a refused command made no key"
