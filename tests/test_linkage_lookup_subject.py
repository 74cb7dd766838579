"""The data subject's view: every lookup about me — who, when, why, which datasets — allowed or not."""

from __future__ import annotations

import pytest

from schemas.examples import MALEE, SOMCHAI
from streams.settings import Settings
from tests.support.lookup_support import get, lookup_client, lookup_deployment

pytestmark = pytest.mark.kafka


def test_a_person_sees_every_access_to_their_data_and_nobody_elses(settings: Settings) -> None:
    settings = lookup_deployment(settings)
    with lookup_client(settings) as client:
        allowed = get(client, f"/v1/citizens/{SOMCHAI}", "revenue", "estate-tax").json()
        denied = get(client, f"/v1/citizens/{SOMCHAI}", "dlt", "licence-application").json()
        get(client, f"/v1/citizens/{MALEE}", "revenue", "estate-tax")
        answer = get(client, f"/v1/citizens/{SOMCHAI}/access-log", "citizen-portal", "subject-access")
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
        again = get(client, f"/v1/citizens/{SOMCHAI}/access-log", "citizen-portal", "subject-access").json()
        assert answer.json()["request_id"] in {e["request_id"] for e in again["accesses"]}  # viewing is an access too
        nosy = get(client, f"/v1/citizens/{SOMCHAI}/access-log", "revenue", "estate-tax")
        assert nosy.status_code == 403 and nosy.json()["reason"] == "purpose_not_allowed"
