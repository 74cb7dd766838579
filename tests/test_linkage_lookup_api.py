"""The lookup API over a real SQLite index and the real broker: answers, least data, errors."""

from __future__ import annotations

import dataclasses

import pytest
from fastapi.testclient import TestClient

from linkage.consumers import load_consumers
from linkage.database import index_engine
from linkage.index_store import IndexStore
from schemas.examples import KRUNG_BANK, MALEE, NIRAN, SIAM_TRADING, SOMCHAI
from schemas.identifiers import with_check_digit
from streams.settings import Settings
from tests.support.linkage_support import index_event
from tests.support.lookup_support import (
    KEYS,
    audited,
    consent,
    get,
    lookup_client,
    lookup_deployment,
    publish,
    wait_until,
)

pytestmark = pytest.mark.kafka
UNKNOWN_PERSON = with_check_digit("199999999999")


def test_a_mandated_lookup_answers_only_the_permitted_datasets_and_fields(lookup: tuple[Settings, TestClient]) -> None:
    settings, client = lookup
    answer = get(client, f"/v1/citizens/{SOMCHAI}", "revenue", "estate-tax")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["basis"].startswith("mandate: Revenue Code")
    assert body["status"] == "ACTIVE"
    assert body["record"]["fields"] == {
        "name": {"prefix": "นาย", "first_name": "สมชาย", "middle_name": None, "last_name": "ใจดี"},
        "date_of_birth": "1985-03-14",
        "status": "ACTIVE",
    }
    assert {item["dataset"] for item in body["linked"]} == {"dlt.vehicle", "dol.title-deed"}
    vehicle = next(item for item in body["linked"] if item["dataset"] == "dlt.vehicle")
    assert set(vehicle["fields"]) == {"plate", "vehicle_class", "make", "model", "status"}
    assert vehicle["relation"] == "possesses" and "parties" not in vehicle
    assert "entity_key" not in vehicle and "share" not in vehicle  # the chassis number is not in the purpose
    deed = next(item for item in body["linked"] if item["dataset"] == "dol.title-deed")
    assert (deed["relation"], deed["share"]) == ("owns-share-of", "1/2") and "entity_key" not in deed
    assert "entity_key" not in body["record"] and "relation" not in body["record"]
    provenance = vehicle["provenance"]
    assert provenance["agency"] == "DLT" and provenance["dataset"] == "dlt.vehicle"
    assert provenance["entity_version"] == 1 and provenance["as_of"].endswith("Z") and provenance["source_time"]
    record = audited(settings, body["request_id"])
    assert (record["decision"], record["consumer"], record["purpose"]) == ("allow", "revenue", "estate-tax")
    assert record["datasets"] == ["dlt.vehicle", "dol.title-deed", "dopa.person"]


def test_a_consented_juristic_lookup_is_cut_to_the_purpose(lookup: tuple[Settings, TestClient]) -> None:
    settings, client = lookup
    publish(settings, consent(SIAM_TRADING, "bank", "kyc", ["dbd.juristic-person"]))
    wait_until(
        lambda: get(client, f"/v1/juristic-persons/{SIAM_TRADING}", "bank", "kyc").status_code == 200,
        what="consent applied",
    )
    body = get(client, f"/v1/juristic-persons/{SIAM_TRADING}", "bank", "kyc").json()
    assert set(body["record"]["fields"]) == {
        "name_th",
        "name_en",
        "juristic_type",
        "status",
        "registered_on",
        "directors",
    }
    assert body["linked"] == [] and body["status"] == "ACTIVE"


@pytest.mark.parametrize(
    ("path", "consumer", "purpose", "key", "status", "reason"),
    [
        (f"/v1/citizens/{SOMCHAI}", None, "estate-tax", None, 401, "unauthorised"),
        (f"/v1/citizens/{SOMCHAI}", None, "estate-tax", "not-a-key", 401, "unauthorised"),
        (f"/v1/citizens/{SOMCHAI[:12]}0", "revenue", "estate-tax", None, 422, "invalid_request"),
        ("/v1/citizens/12345", "revenue", "estate-tax", None, 422, "invalid_request"),
        (f"/v1/citizens/{UNKNOWN_PERSON}", "revenue", "estate-tax", None, 404, "not_found"),
        (f"/v1/citizens/{SOMCHAI}", "revenue", "marketing", None, 403, "purpose_not_allowed"),
        (f"/v1/citizens/{SOMCHAI}", "dlt", "identity-check", None, 403, "purpose_not_allowed"),
        (f"/v1/citizens/{SOMCHAI}", "dlt", "licence-application", None, 403, "no_consent"),
        (f"/v1/juristic-persons/{KRUNG_BANK}", "revenue", "estate-tax", None, 403, "purpose_not_allowed"),
    ],
)
def test_refusals_carry_status_reason_and_are_audited(
    lookup: tuple[Settings, TestClient],
    path: str,
    consumer: str | None,
    purpose: str,
    key: str | None,
    status: int,
    reason: str,
) -> None:
    settings, client = lookup
    answer = get(client, path, consumer, purpose, key)
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["reason"] == reason and body["detail"]
    if status == 422:
        assert "check digit" in body["detail"] or "not 13 digits" in body["detail"]
    record = audited(settings, body["request_id"])
    assert record["decision"] == "deny" and record["status"] == status and record["reason"] == reason


def test_no_consent_names_the_consent_reason(lookup: tuple[Settings, TestClient]) -> None:
    _settings, client = lookup
    body = get(client, f"/v1/citizens/{MALEE}", "dlt", "licence-application").json()
    assert (body["reason"], body["consent_reason"]) == ("no_consent", "missing")


def test_malformed_requests_are_422_not_500(lookup: tuple[Settings, TestClient]) -> None:
    _settings, client = lookup
    headers = {"X-API-Key": KEYS["dlt"]}
    missing_purpose = client.get(f"/v1/citizens/{SOMCHAI}", headers=headers)
    assert missing_purpose.status_code == 422 and missing_purpose.json()["reason"] == "invalid_request"
    bad_body = client.post("/v1/verify", params={"purpose": "identity-check"}, headers=headers, content=b"{not json")
    assert bad_body.status_code == 422
    bad_date = client.post(
        "/v1/verify",
        params={"purpose": "identity-check"},
        headers=headers,
        json={"citizen_id": SOMCHAI, "date_of_birth": "2566-13-40"},
    )
    assert bad_date.status_code == 422 and "date_of_birth" in bad_date.json()["detail"]


def test_verify_answers_yes_or_no_without_personal_data(lookup: tuple[Settings, TestClient]) -> None:
    settings, client = lookup
    headers = {"X-API-Key": KEYS["dlt"]}

    def verify(**query: str) -> dict[str, object]:
        answer = client.post("/v1/verify", params={"purpose": "identity-check"}, headers=headers, json=query)
        assert answer.status_code == 200, answer.text
        return answer.json()

    match = verify(citizen_id=SOMCHAI, first_name="สมชาย", last_name="ใจดี", date_of_birth="1985-03-14")
    assert (match["exists"], match["alive"], match["name_matches"], match["date_of_birth_matches"]) == (
        True,
        True,
        True,
        True,
    )
    assert match["provenance"]["dataset"] == "dopa.person"
    assert "name" not in match and "fields" not in match and "record" not in match
    latin = verify(citizen_id=SOMCHAI, first_name="somchai", last_name="JAIDEE")
    assert latin["name_matches"] is True and latin["date_of_birth_matches"] is None
    wrong = verify(citizen_id=SOMCHAI, first_name="สมชาย", last_name="รักไทย", date_of_birth="1985-03-15")
    assert (wrong["name_matches"], wrong["date_of_birth_matches"]) == (False, False)
    unknown = verify(citizen_id=UNKNOWN_PERSON, first_name="x")
    assert (unknown["exists"], unknown["alive"], unknown["name_matches"]) == (False, None, None)
    engine = index_engine(settings.index_database_url)
    IndexStore(engine).apply([index_event("dopa.death", citizen_id=SOMCHAI, informant_citizen_id=MALEE)])
    assert verify(citizen_id=SOMCHAI)["alive"] is False
    bad = client.post(
        "/v1/verify", params={"purpose": "identity-check"}, headers=headers, json={"citizen_id": NIRAN[:12] + "0"}
    )
    assert bad.status_code == 422 and "check digit" in bad.json()["detail"]


def test_over_the_rate_limit_is_429_with_retry_after(settings: Settings) -> None:
    settings = lookup_deployment(settings)
    registry = load_consumers()
    revenue = registry.consumers["revenue"]
    registry.consumers["revenue"] = dataclasses.replace(revenue, rate_per_s=0.5, burst=3)
    with lookup_client(settings, registry) as client:
        statuses = [get(client, f"/v1/citizens/{SOMCHAI}", "revenue", "estate-tax").status_code for _ in range(5)]
        assert statuses == [200, 200, 200, 429, 429]
        limited = get(client, f"/v1/citizens/{SOMCHAI}", "revenue", "estate-tax")
        assert limited.json()["reason"] == "rate_limited" and int(limited.headers["Retry-After"]) >= 1
        assert get(client, f"/v1/citizens/{SOMCHAI}", "dlt", "licence-application").status_code == 403


def test_each_of_several_processes_enforces_its_share_of_the_rate(settings: Settings) -> None:
    settings = lookup_deployment(settings).model_copy(update={"lookup_workers": 2})
    registry = load_consumers()
    registry.consumers["revenue"] = dataclasses.replace(registry.consumers["revenue"], rate_per_s=0.5, burst=4)
    with lookup_client(settings, registry) as client:
        statuses = [get(client, f"/v1/citizens/{SOMCHAI}", "revenue", "estate-tax").status_code for _ in range(3)]
        assert statuses == [200, 200, 429], "a burst of 4 over two processes is 2 in each"


def test_health_readiness_metrics_and_openapi(lookup: tuple[Settings, TestClient]) -> None:
    _settings, client = lookup
    assert client.get("/healthz").json()["status"] == "alive"
    assert client.get("/readyz").status_code == 200
    get(client, f"/v1/citizens/{SOMCHAI}", "revenue", "estate-tax")
    get(client, f"/v1/citizens/{MALEE}", "dlt", "licence-application")
    metrics = client.get("/metrics").text
    assert 'gdx_lookups_total{consumer="revenue",dataset="dopa.person",purpose="estate-tax",status="200"}' in metrics
    assert 'gdx_consent_denials_total{consumer="dlt",purpose="licence-application",reason="missing"}' in metrics
    assert 'gdx_audit_last_checkpoint_timestamp_seconds{chain="' in metrics
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths) == {
        "/v1/citizens/{citizen_id}",
        "/v1/juristic-persons/{juristic_id}",
        "/v1/verify",
        "/v1/citizens/{citizen_id}/access-log",
        "/catalog",
    }


def test_an_undecodable_body_is_422(lookup: tuple[Settings, TestClient]) -> None:
    _settings, client = lookup
    answer = client.post(
        "/v1/verify",
        params={"purpose": "identity-check"},
        headers={"X-API-Key": KEYS["dlt"], "Content-Type": "application/json"},
        content=b"\xa3\xff",
    )
    assert answer.status_code == 422 and answer.json()["reason"] == "invalid_request"
