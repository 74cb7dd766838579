"""Notices pass the lookup policy: a subscription no purpose authorizes is refused at start, and
each notice is decided under its purpose (mandate, else the person's consent), cut to its fields
and put on the record whether sent or not, under a key that can vouch for nothing else."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import Engine

from foundation.errors import GdxError
from linkage.audit import (
    ACCESS,
    AUDIT_KEY_OWNER,
    CHECKPOINT,
    GENESIS,
    NOTICE_KEY_OWNER,
    chain_record,
    signature_problem,
)
from linkage.consent import ConsentStore
from linkage.consumers import ConsumerRegistry, load_consumers
from linkage.database import index_engine
from linkage.index_store import notice_id
from linkage.migrate import upgrade
from linkage.notices import NoticePolicy, check_subscriptions
from linkage.subscriptions import load_subscriptions
from schemas.examples import SOMCHAI
from streams.security.signing_keys import SigningKeys
from tests.support.cli_run import run_gdx
from tests.support.lookup_support import consent

AT_MS = 1_800_000_000_000
CONSENT_REGISTRY = """
[consumers.pension-fund]
name = "Government Pension Fund"

[consumers.pension-fund.purposes.survivor-benefit]
description = "pay the survivors' benefit"
operations = ["notify"]
[consumers.pension-fund.purposes.survivor-benefit.datasets]
"dopa.death" = ["entity_key"]
"dlt.vehicle" = ["relation"]
"""


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = index_engine(f"sqlite:///{tmp_path / 'index.db'}")
    upgrade(engine)
    return engine


def _notice(consumer: str, purpose: str) -> str:
    return json.dumps(
        {
            "notice_id": notice_id(consumer, "e-1", SOMCHAI),
            "consumer": consumer,
            "purpose": purpose,
            "event_id": "e-1",
            "dataset": "dopa.death",
            "entity_key": "D-2569-0001",
            "party": {"kind": "citizen", "id": SOMCHAI},
            "linked": [{"dataset": "dlt.vehicle", "entity_key": "MR0FZ29G201234567", "relation": "possesses"}],
        }
    )


def test_the_shipped_subscriptions_are_authorized() -> None:
    check_subscriptions(load_subscriptions(), load_consumers())


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        ({"purpose": "no-such-purpose"}, "names purpose 'no-such-purpose', which is not registered for it"),
        ({"purpose": "estate-tax"}, "purpose 'estate-tax' does not allow notify"),
        ({"linked_to": frozenset({"dbd.juristic-person"})}, "does not cover ['dbd.juristic-person']"),
        ({"consumer": "stranger"}, "subscription of stranger names purpose"),
    ],
)
def test_a_subscription_no_purpose_authorizes_is_refused_in_one_line(change: dict[str, object], refusal: str) -> None:
    revenue = next(s for s in load_subscriptions() if s.consumer == "revenue")
    with pytest.raises(GdxError, match="^subscription of") as refused:
        check_subscriptions([replace(revenue, **change)], load_consumers())  # type: ignore[arg-type]
    assert refusal in str(refused.value) and "\n" not in str(refused.value)


def test_a_mandated_notice_is_cut_to_its_purposes_fields(engine: Engine) -> None:
    decided = NoticePolicy(load_consumers(), ConsentStore(engine)).decide(_notice("revenue", "estate-notice"), AT_MS)
    assert decided.message is not None and decided.entry["basis"].startswith("mandate: Revenue Code")
    sent = json.loads(decided.message)
    assert "entity_key" not in sent and sent["linked"] == [{"dataset": "dlt.vehicle", "relation": "possesses"}]
    row = decided.access_row((3, 41))
    assert row is not None and (row["subject_id"], row["operation"], row["decision"]) == (SOMCHAI, "notify", "allow")
    assert (row["audit_partition"], row["audit_offset"]) == (3, 41)


def test_a_notice_under_consent_goes_only_while_the_person_consents(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "consumers.toml"
    path.write_text(CONSENT_REGISTRY)
    registry: ConsumerRegistry = load_consumers(path)
    consents = ConsentStore(engine)
    policy, notice = NoticePolicy(registry, consents), _notice("pension-fund", "survivor-benefit")
    denied = policy.decide(notice, AT_MS)
    assert denied.message is None and (denied.entry["status"], denied.entry["reason"]) == (403, "no_consent")
    assert denied.access_row((3, 1)) is not None, "a refused notice is on the person's record too"
    given = consent(SOMCHAI, "pension-fund", "survivor-benefit", ["dopa.death"], valid_s=10**7)
    consents.apply(given)
    narrow = policy.decide(notice, AT_MS)
    assert narrow.message is None, "the consent does not cover the vehicle the notice would disclose"
    wider = consent(SOMCHAI, "pension-fund", "survivor-benefit", ["dopa.death", "dlt.vehicle"], valid_s=10**7)
    consents.apply(wider)
    allowed = policy.decide(notice, AT_MS)
    assert allowed.message is not None and allowed.entry["basis"] == f"consent: {wider.consent_id}"
    assert json.loads(allowed.message)["entity_key"] == "D-2569-0001"


def test_the_workers_notice_key_vouches_for_notices_and_checkpoints_only(tmp_path: Path) -> None:
    keys = SigningKeys(tmp_path / "audit-keys")
    signer = keys.signer(NOTICE_KEY_OWNER)
    notice = {"kind": ACCESS, "time_ms": AT_MS, "operation": "notify", "request_id": "n-1"}
    lookup = {**notice, "operation": "lookup"}
    checkpoint = {"kind": CHECKPOINT, "time_ms": AT_MS}
    trust = keys.trust_list()
    signed = [chain_record(entry, "gdx.audit/1", 0, GENESIS, signer) for entry in (notice, lookup, checkpoint)]
    assert [signature_problem(trust, record) for record in signed] == [
        None,
        f"signed by the workers' notice key {signer.key_id!r}, which may sign only notices and checkpoints",
        None,
    ]


def test_a_notice_queued_before_notices_named_their_purpose_goes_under_its_subscriptions(engine: Engine) -> None:
    """Queued by an earlier version: decided under its subscription's purpose; one whose subscription
    is gone is refused on the record, never a crash."""
    subscriptions = load_subscriptions()
    policy = NoticePolicy(load_consumers(), ConsentStore(engine), subscriptions)
    legacy = json.loads(_notice("revenue", "estate-notice"))
    del legacy["purpose"], legacy["notice_id"]
    legacy["subscription"] = next(s.description for s in subscriptions if s.consumer == "revenue")
    decided = policy.decide(json.dumps(legacy), AT_MS)
    assert decided.message is not None and decided.entry["purpose"] == "estate-notice"
    assert decided.entry["request_id"] == notice_id("revenue", "e-1", SOMCHAI)
    orphan = policy.decide(json.dumps({**legacy, "subscription": "a subscription since removed"}), AT_MS)
    assert orphan.message is None and orphan.entry["reason"] == "purpose_not_allowed"


def test_gdx_audit_rotate_key_notices_rotates_the_workers_key_only(tmp_path: Path) -> None:
    keys = SigningKeys(tmp_path / "audit-keys")
    api, notices = keys.signer(AUDIT_KEY_OWNER), keys.signer(NOTICE_KEY_OWNER)
    rotated = run_gdx("audit", "rotate-key", "--notices", env={"GDX_STATE_DIR": str(tmp_path)})
    assert rotated.code == 0 and rotated.out.startswith("new notice key audit-notify-"), rotated.err
    assert keys.signer(AUDIT_KEY_OWNER).key_id == api.key_id
    assert keys.signer(NOTICE_KEY_OWNER).key_id != notices.key_id
