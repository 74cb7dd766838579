"""The data subject's view: every lookup about me — who, when, why, which datasets — allowed or not,
and only to me: the portal's API key is not enough, a token the portal signed for me must come
with it. A missing, expired, foreign or someone else's token is refused, and audited like any
other access."""

from __future__ import annotations

import time

import pytest

from schemas.examples import MALEE, SOMCHAI
from streams.settings import Settings
from tests.support.cli_run import run_gdx
from tests.support.lookup_support import audited, get, lookup_client, lookup_deployment, subject_token

pytestmark = pytest.mark.kafka


def test_a_person_sees_every_access_to_their_data_and_nobody_elses(settings: Settings) -> None:
    settings = lookup_deployment(settings)
    token = subject_token(settings, SOMCHAI)
    with lookup_client(settings) as client:
        allowed = get(client, f"/v1/citizens/{SOMCHAI}", "revenue", "estate-tax").json()
        denied = get(client, f"/v1/citizens/{SOMCHAI}", "dlt", "licence-application").json()
        get(client, f"/v1/citizens/{MALEE}", "revenue", "estate-tax")
        answer = get(client, f"/v1/citizens/{SOMCHAI}/access-log", "citizen-portal", "subject-access", token=token)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["citizen_id"] == SOMCHAI and body["basis"].startswith("mandate: Personal Data Protection Act")
        accesses = {entry["request_id"]: entry for entry in body["accesses"]}
        assert set(accesses) == {allowed["request_id"], denied["request_id"]}
        mine = accesses[allowed["request_id"]]
        assert (mine["consumer"], mine["consumer_name"], mine["purpose"], mine["decision"]) == (
            "revenue",
            "Revenue Department",
            "estate-tax",
            "allow",
        )
        assert mine["datasets"] == ["dlt.vehicle", "dol.title-deed", "dopa.person"] and mine["time"].endswith("Z")
        refused = accesses[denied["request_id"]]
        assert (refused["consumer"], refused["decision"], refused["reason"]) == ("dlt", "deny", "no_consent")
        again = get(client, f"/v1/citizens/{SOMCHAI}/access-log", "citizen-portal", "subject-access", token=token)
        assert answer.json()["request_id"] in {e["request_id"] for e in again.json()["accesses"]}  # an access too
        nosy = get(client, f"/v1/citizens/{SOMCHAI}/access-log", "revenue", "estate-tax", token=token)
        assert nosy.status_code == 403 and nosy.json()["reason"] == "purpose_not_allowed"


def test_the_portal_key_alone_or_a_token_that_does_not_prove_the_person_is_refused_and_audited(
    settings: Settings,
) -> None:
    settings = lookup_deployment(settings)
    path = f"/v1/citizens/{SOMCHAI}/access-log"
    subject_token(settings, SOMCHAI, consumer="revenue")  # another consumer's key, registered for revenue
    attempts = {
        "no token": (None, 401, "missing"),
        "another person's token": (subject_token(settings, MALEE), 403, "proves another person"),
        "an expired token": (subject_token(settings, SOMCHAI, at_s=time.time() - 400), 401, "expired"),
        "a token living too long": (subject_token(settings, SOMCHAI, lifetime_s=3600), 401, "longer than 300 s"),
        "a token of another consumer's key": (
            subject_token(settings, SOMCHAI, consumer="revenue"),
            401,
            "is not registered for citizen-portal",
        ),
        "not a token": ("not-a-jwt", 401, "not a JWT"),
    }
    with lookup_client(settings) as client:
        for what, (token, status, words) in attempts.items():
            answer = get(client, path, "citizen-portal", "subject-access", token=token)
            assert answer.status_code == status, (what, answer.text)
            body = answer.json()
            assert body["reason"] == "subject_not_proven" and words in body["detail"], (what, body)
            record = audited(settings, body["request_id"])
            assert (record["operation"], record["status"], record["reason"]) == (
                "access-log",
                status,
                "subject_not_proven",
            ), what
        shown = get(client, path, "citizen-portal", "subject-access", token=subject_token(settings, SOMCHAI)).json()
        refusals = [e for e in shown["accesses"] if e["reason"] == "subject_not_proven"]
        assert len(refusals) == len(attempts), "the person sees every attempt to read their log"
        assert (
            get(
                client,
                f"/v1/citizens/{MALEE}/access-log",
                "citizen-portal",
                "subject-access",
                token=subject_token(settings, MALEE),
            ).status_code
            == 200
        )


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        (("12345",), "'12345': "),
        ((SOMCHAI, "--consumer", "revenue"), "consumer 'revenue' has no purpose that shows an access log"),
        ((SOMCHAI, "--lifetime-s", "3600"), "--lifetime-s 3600 is out of range"),
    ],
)
def test_gdx_subject_token_refuses_bad_input_in_one_line(
    settings: Settings, arguments: tuple[str, ...], words: str
) -> None:
    result = run_gdx("subject-token", *arguments, env={"GDX_STATE_DIR": str(settings.state_dir)})
    assert result.code == 1 and "Traceback" not in result.err
    (line,) = result.err.strip().splitlines()
    assert line.startswith("gdx: ") and words in line, line
    assert not settings.subject_token_keys_path.exists(), "no key made by a refused command"
