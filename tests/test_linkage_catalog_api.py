"""`GET /catalog` through the real lookup API (a real SQLite index, the real broker for its audit
and consent topics): HTML for a browser, JSON for a program, no key, never audited, a 4xx with a
reason for a bad request, and a 200 page when the index cannot be read."""

from __future__ import annotations

import json
import sqlite3

import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from linkage.data_catalog import DataCatalog
from streams.settings import Settings
from streams.topic_catalog import load_catalog
from tests.support.catalog_support import read_page
from tests.support.lookup_support import audit_records

pytestmark = pytest.mark.kafka
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


def test_a_browser_gets_the_page_without_a_key(lookup: tuple[Settings, TestClient]) -> None:
    _settings, client = lookup
    answer = client.get("/catalog", headers={"Accept": BROWSER})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    page = read_page(answer.text)
    assert list(page.summary) == [f"{d.agency}.{d.name}" for d in load_catalog().datasets]
    assert page.summary["dopa.person"]["records"] == "1", "the deployment's index holds one person"
    assert page.summary["dopa.death"]["records"] == "0"
    assert page.fields["dlt.vehicle"]["engine_number"]["since"] == "v2"
    assert "index-problem" not in page.paragraphs
    assert client.get("/catalog").headers["content-type"].startswith("text/html"), "HTML without an Accept header too"


def test_a_program_gets_json_by_accept_or_by_format(lookup: tuple[Settings, TestClient]) -> None:
    _settings, client = lookup
    by_accept = client.get("/catalog", headers={"Accept": "application/json"})
    by_format = client.get("/catalog", params={"format": "json"}, headers={"Accept": BROWSER})
    assert by_accept.status_code == by_format.status_code == 200
    assert by_accept.headers["content-type"] == by_format.headers["content-type"] == "application/json"
    body = by_accept.json()
    assert body == by_format.json(), "one catalog per period, whichever way it is asked for"
    assert TypeAdapter(DataCatalog).dump_python(TypeAdapter(DataCatalog).validate_python(body), mode="json") == body
    assert body["index_problem"] is None and body["freshness_window_s"] == 300
    person = next(d for d in body["datasets"] if d["dataset"] == "dopa.person")
    assert (person["agency"], person["codes"], person["topic"]) == ("dopa", [33], "gdx.dopa.person.v1")
    assert person["schema"]["subject"] == "th.go.gdx.dopa.PersonEvent"
    assert person["index"]["records"] == 1 and person["index"]["last_applied_ms"] > 0
    status = next(f for f in person["fields"] if f["name"] == "status")
    assert status["type"] == "enum th.go.gdx.dopa.PersonStatus" and status["doc"].startswith("ACTIVE, DECEASED")
    assert {(v["consumer"], v["purpose"]) for v in status["visible_to"]} == {
        ("revenue", "estate-tax"),
        ("dlt", "licence-application"),
        ("bank", "kyc"),
    }


def test_the_openapi_document_describes_the_catalog(lookup: tuple[Settings, TestClient]) -> None:
    _settings, client = lookup
    document = client.get("/openapi.json").json()
    operation = document["paths"]["/catalog"]["get"]
    assert operation["tags"] == ["catalog"] and "security" not in operation
    content = operation["responses"]["200"]["content"]
    assert set(content) == {"application/json", "text/html"}
    assert content["application/json"]["schema"] == {"$ref": "#/components/schemas/DataCatalog"}
    assert {"406", "422"} <= set(operation["responses"])
    field = document["components"]["schemas"]["CatalogField"]["properties"]
    assert field["since_version"]["description"] == "The first schema version that has the field."


def test_bad_requests_are_a_4xx_with_the_reason_and_nothing_is_audited(lookup: tuple[Settings, TestClient]) -> None:
    settings, client = lookup
    unknown = client.get("/catalog", params={"format": "xml"})
    assert unknown.status_code == 422
    assert unknown.json()["detail"] == "format must be one of html, json, not 'xml'"
    refused = client.get("/catalog", headers={"Accept": "image/png"})
    assert refused.status_code == 406 and "Accept header takes none of them" in refused.json()["detail"]
    assert client.get("/catalog", params={"format": "json"}).status_code == 200
    requests = [json.loads(value or b"{}") for messages in audit_records(settings).values() for _, value in messages]
    assert not [r for r in requests if "operation" in r], "the catalog holds no personal data: nothing to audit"


def test_an_index_that_cannot_be_read_still_gives_a_page_saying_so(lookup: tuple[Settings, TestClient]) -> None:
    settings, client = lookup
    with sqlite3.connect(settings.state_dir / "index.db") as conn:
        conn.execute("ALTER TABLE records RENAME TO records_elsewhere")
    answer = client.get("/catalog")
    assert answer.status_code == 200
    page = read_page(answer.text)
    assert page.paragraphs["index-problem"].startswith("The linkage index cannot be read (OperationalError)")
    assert page.summary["dopa.person"]["records"] == "unavailable"
    body = client.get("/catalog", params={"format": "json"}).json()
    assert body["index_problem"] == "OperationalError" and all(d["index"] is None for d in body["datasets"])
