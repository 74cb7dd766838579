"""The data catalog against its sources, without a broker: built from the repository's topic
catalog, schemas, consumer registry and subscriptions it shows every dataset, field and purpose;
built from changed copies of the sources it changes with them; the index's part per dataset, and
an index that cannot be read; the HTML page; and content negotiation."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import pytest
from sqlalchemy import Engine

from linkage.catalog_html import render
from linkage.consumers import CONSUMERS_FILE, ConsumerRegistry, load_consumers
from linkage.data_catalog import CONSENT, INDEX_FIELDS, CatalogDataset, CatalogPage, describe
from linkage.database import index_engine
from linkage.negotiation import negotiate
from linkage.policy import PARTIES_FIELD, RECORD_FIELDS
from linkage.subscriptions import SUBSCRIPTIONS_FILE, load_subscriptions
from schemas.catalog import RELEASED_DIR, SchemaCatalog, load_schema_catalog
from schemas.compose import SOURCE_DIR, composed_events
from streams.topic_catalog import CATALOG_FILE, load_catalog
from tests.support.catalog_support import read_page
from tests.support.status_support import seed_index

NOW_MS = 1_760_000_000_000
HTML, JSON = "text/html", "application/json"


def build(schemas: SchemaCatalog | None = None, registry: ConsumerRegistry | None = None) -> dict[str, CatalogDataset]:
    topics = load_catalog()
    entries = describe(
        topics.datasets,
        topics.agencies,
        schemas or load_schema_catalog(),
        registry or load_consumers(),
        load_subscriptions(),
    )
    return {entry.dataset: entry for entry in entries}


def payload_fields(source_dir: Path = SOURCE_DIR) -> dict[str, list[dict]]:
    """`agency.dataset` → the payload fields of its composed current schema, straight from the sources."""
    events = composed_events(source_dir)
    found = {}
    for (agency, dataset), event in events.items():
        payload = next(f for f in event["fields"] if f["name"] == "payload")
        found[f"{agency}.{dataset}"] = next(b for b in payload["type"] if isinstance(b, dict))["fields"]
    return found


def test_every_dataset_of_the_topic_catalog_is_listed_with_its_owner_codes_topic_and_schema() -> None:
    raw = tomllib.loads((Path(__file__).parents[1] / "streams" / CATALOG_FILE).read_text(encoding="utf-8"))
    expected = [
        (f"{agency}.{dataset}", agency, body["name"], tuple(codes), f"gdx.{agency}.{dataset}.v1")
        for agency, body in raw["agencies"].items()
        for dataset, codes in body["datasets"].items()
    ]
    catalog = build()
    assert [(d.dataset, d.agency, d.agency_name, d.codes, d.topic) for d in catalog.values()] == expected
    assert catalog["dbd.juristic-person"].codes == (15, 16)
    schemas = load_schema_catalog()
    for key, entry in catalog.items():
        assert entry.schema is not None, key
        agency, dataset = key.split(".", 1)
        assert entry.schema.subject == schemas.datasets[(agency, dataset)]
        assert [(v.version, v.released) for v in entry.schema.versions] == [
            (k.version, k.released) for k in schemas.versions(entry.schema.subject)
        ]
    vehicle = catalog["dlt.vehicle"].schema
    assert vehicle is not None and vehicle.subject == "th.go.gdx.dlt.VehicleEvent"
    assert [(v.version, v.released) for v in vehicle.versions] == [(1, True), (2, True)]
    assert (vehicle.current_version, vehicle.current_released) == (2, True)


def test_every_payload_field_is_listed_with_its_doc_and_a_readable_type() -> None:
    catalog = build()
    for key, fields in payload_fields().items():
        listed = {f.name: f for f in catalog[key].fields if f.kind == "payload"}
        assert [(f["name"], f.get("doc", "")) for f in fields] == [(f.name, f.doc) for f in listed.values()], key
        assert all(f.type for f in listed.values()), key
    types = {(key, f.name): f.type for key, entry in catalog.items() for f in entry.fields}
    assert types[("dopa.person", "citizen_id")] == "string"
    assert types[("dopa.person", "house_id")] == "null | string"
    assert types[("dopa.person", "date_of_birth")] == "int (date)"
    assert types[("dopa.person", "name")] == "record th.go.gdx.common.PersonName"
    assert types[("dopa.person", "name_en")] == "null | record th.go.gdx.common.PersonName", "a reference by name"
    assert types[("dopa.person", "card")] == "null | record th.go.gdx.dopa.IdCard", "the enclosing namespace"
    assert types[("dopa.person", "status")] == "enum th.go.gdx.dopa.PersonStatus"
    assert types[("dbd.juristic-person", "registered_capital")] == "bytes (decimal 18,2)"
    assert types[("dbd.juristic-person", "directors")] == "array of record th.go.gdx.dbd.Director"
    since = {f.name: f.since_version for f in catalog["dlt.vehicle"].fields}
    assert (since["plate"], since["engine_number"]) == (1, 2), "engine_number came with v2"


def test_every_purpose_is_listed_on_the_datasets_it_reaches_with_its_fields_and_basis() -> None:
    raw = tomllib.loads(CONSUMERS_FILE.read_text(encoding="utf-8"))["consumers"]
    catalog = build()
    expected: dict[str, set[tuple[str, str, str, tuple[str, ...]]]] = {key: set() for key in catalog}
    for consumer, body in raw.items():
        for purpose, spec in body.get("purposes", {}).items():
            for dataset, fields in spec.get("datasets", {}).items():
                expected[dataset].add((consumer, purpose, spec.get("mandate", CONSENT), tuple(fields)))
    assert {
        key: {(a.consumer, a.purpose, a.basis, a.fields) for a in entry.access} for key, entry in catalog.items()
    } == expected
    for key, entry in catalog.items():
        for field in entry.fields:
            assert {(v.consumer, v.purpose) for v in field.visible_to} == {
                (a.consumer, a.purpose) for a in entry.access if field.name in a.fields
            }, (key, field.name)
    name = next(f for f in catalog["dopa.person"].fields if f.name == "name")
    assert [(v.consumer, v.purpose, v.basis) for v in name.visible_to] == [
        ("revenue", "estate-tax", "Revenue Code, sections 3 sexies and 19 (summons of information for assessment)"),
        ("dlt", "licence-application", "consent"),
        ("bank", "kyc", "consent"),
    ]
    identity_check = next(a for a in catalog["dopa.person"].access if a.purpose == "identity-check")
    assert identity_check.fields == () and identity_check.operations == ("verify",)


def test_every_subscription_is_listed_on_the_datasets_it_watches_and_links_to() -> None:
    raw = tomllib.loads(SUBSCRIPTIONS_FILE.read_text(encoding="utf-8"))["subscriptions"]
    catalog = build()
    expected = {(d, s["consumer"], "watched") for s in raw for d in s["datasets"]} | {
        (d, s["consumer"], "linked") for s in raw for d in s.get("linked_to", [])
    }
    assert {(key, n.consumer, n.role) for key, entry in catalog.items() for n in entry.subscriptions} == expected


def test_a_field_added_to_a_copy_of_the_schemas_appears_with_its_type_and_doc(tmp_path: Path) -> None:
    sources = tmp_path / "avro"
    shutil.copytree(SOURCE_DIR, sources)
    person = sources / "dopa" / "person.avsc"
    schema = json.loads(person.read_text(encoding="utf-8"))
    schema["fields"].append(
        {
            "name": "registered_at",
            "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}],
            "default": None,
            "doc": "When the person was first entered in the registry (UTC).",
        }
    )
    schema["fields"].append(
        {
            "name": "previous_card",
            "type": ["null", "IdCard"],
            "default": None,
            "doc": "The card before the current one.",
        }
    )
    person.write_text(json.dumps(schema), encoding="utf-8")
    entry = build(load_schema_catalog(sources, RELEASED_DIR))["dopa.person"]
    added = entry.fields[[f.name for f in entry.fields].index("status") + 1]
    assert (added.name, added.kind, added.type, added.doc, added.since_version, added.visible_to) == (
        "registered_at",
        "payload",
        "null | long (timestamp-millis)",
        "When the person was first entered in the registry (UTC).",
        2,
        (),
    )
    previous = next(f for f in entry.fields if f.name == "previous_card")
    assert previous.type == "null | record th.go.gdx.dopa.IdCard", "a simple name resolves in its namespace"
    assert entry.schema is not None
    assert (entry.schema.current_version, entry.schema.current_released) == (2, False)
    assert [(v.version, v.released) for v in entry.schema.versions] == [(1, True), (2, False)]
    unchanged = build()["dopa.person"].schema
    assert unchanged is not None and unchanged.current_released, "the repository's own sources are untouched"


def test_a_purpose_removed_from_a_copy_of_the_registry_disappears(tmp_path: Path) -> None:
    text = CONSUMERS_FILE.read_text(encoding="utf-8")
    start = text.index("[consumers.bank.purposes.kyc]")
    end = text.index("[consumers.citizen-portal]")
    copy = tmp_path / "consumers.toml"
    copy.write_text(text[:start] + text[end:], encoding="utf-8")
    before, after = build(), build(registry=load_consumers(copy))
    assert ("bank", "kyc") in {(a.consumer, a.purpose) for a in before["dbd.juristic-person"].access}
    for entry in after.values():
        assert ("bank", "kyc") not in {(a.consumer, a.purpose) for a in entry.access}, entry.dataset
        assert all(("bank", "kyc") not in {(v.consumer, v.purpose) for v in f.visible_to} for f in entry.fields)
    assert [(a.consumer, a.purpose) for a in after["dbd.juristic-person"].access] == [
        ("social-security", "employer-update")
    ], "its notices are a disclosure too"
    assert [v.purpose for f in after["dopa.person"].fields if f.name == "name" for v in f.visible_to] == [
        "estate-tax",
        "licence-application",
    ]


def test_parties_and_names_the_schema_lacks_are_listed_beside_the_payload(tmp_path: Path) -> None:
    text = CONSUMERS_FILE.read_text(encoding="utf-8").replace(
        '"dopa.house" = ["address"]', '"dopa.house" = ["address", "parties", "colour_of_roof"]'
    )
    copy = tmp_path / "consumers.toml"
    copy.write_text(text, encoding="utf-8")
    fields = {f.name: f for f in build(registry=load_consumers(copy))["dopa.house"].fields}
    assert fields["parties"].kind == "index" and fields["parties"].type is None
    assert [(v.consumer, v.purpose) for v in fields["parties"].visible_to] == [("dlt", "licence-application")]
    assert fields["colour_of_roof"].kind == "not-in-schema" and "nobody receives it" in fields["colour_of_roof"].doc
    index_fields = [f.name for f in build()["dopa.house"].fields if f.kind == "index"]
    assert index_fields == ["parties", "entity_key", "relation", "share"], "listed even where no purpose names them"


def test_every_field_least_data_knows_beside_the_payload_is_described() -> None:
    assert set(INDEX_FIELDS) == {PARTIES_FIELD, *RECORD_FIELDS}


def test_the_index_part_is_per_dataset_and_read_at_most_once_per_period(engine: Engine) -> None:
    seed_index(engine, NOW_MS)
    now = [NOW_MS / 1000]
    page = CatalogPage(engine, tuple(build().values()), cache_s=5, clock=lambda: now[0])
    catalog = page.catalog()
    index = {d.dataset: d.index for d in catalog.datasets}
    assert catalog.index_problem is None and catalog.generated_ms == NOW_MS
    held = {key: (s.records, s.recent, s.freshness_p50_s, s.freshness_p99_s) for key, s in index.items() if s}
    assert len(held) == len(index), "every dataset has a summary"
    assert held["dopa.person"] == (1, 1, 1.0, 1.0) and held["dopa.marriage"] == (1, 1, 8.0, 8.0)
    assert held["dlt.driving-licence"] == (1, 1, 95.0, 95.0)
    assert held["dbd.commercial-registration"] == (1, 0, None, None), "applied an hour ago: outside the window"
    assert held["dopa.death"] == (0, 0, None, None), "a dataset the index holds none of"
    person = index["dopa.person"]
    assert person is not None and person.last_applied_ms == NOW_MS - 30_000
    now[0] += 4.9
    assert page.catalog() is catalog
    now[0] += 0.1
    assert page.catalog() is not catalog


def test_an_unreadable_index_is_a_sentence_on_the_page_and_null_in_the_data(tmp_path: Path) -> None:
    empty = index_engine(f"sqlite:///{tmp_path / 'no-tables.db'}")
    try:
        catalog = CatalogPage(empty, tuple(build().values())).catalog()
    finally:
        empty.dispose()
    assert catalog.index_problem == "OperationalError"
    assert all(d.index is None for d in catalog.datasets)
    page = read_page(render(catalog))
    assert page.paragraphs["index-problem"] == (
        "The linkage index cannot be read (OperationalError): records, last "
        "change applied and freshness are unavailable."
    )
    assert page.summary["dopa.person"]["records"] == "unavailable"
    assert page.fields["dopa.person"]["name"]["type"] == "record th.go.gdx.common.PersonName", "the rest still shows"


def test_the_page_shows_every_dataset_and_field_with_who_may_see_it(engine: Engine) -> None:
    seed_index(engine, NOW_MS)
    catalog = CatalogPage(engine, tuple(build().values()), clock=lambda: NOW_MS / 1000).catalog()
    page = read_page(render(catalog))
    assert list(page.summary) == list(page.fields) == [d.dataset for d in catalog.datasets]
    assert page.summary["dbd.juristic-person"] | {"last-applied": ""} == {
        "dataset": "dbd.juristic-person",
        "codes": "15, 16",
        "agency": "DBD",
        "subject": "th.go.gdx.dbd.JuristicPersonEvent",
        "versions": "v1 released",
        "records": "1",
        "last-applied": "",
        "freshness-p50": "4.00 s",
        "freshness-p99": "4.00 s",
    }
    assert page.summary["dopa.person"]["last-applied"].endswith("UTC (30 s ago)")
    assert page.summary["dlt.vehicle"]["versions"] == "v1, v2 released"
    for key, fields in payload_fields().items():
        assert [f["name"] for f in fields] + list(INDEX_FIELDS) == list(page.fields[key]), key
    name = page.fields["dopa.person"]["name"]
    assert name["doc"] == "Registered name in Thai." and name["since"] == "v1"
    assert name["visible"] == (
        "revenue / estate-tax — Revenue Code, sections 3 sexies and 19 (summons of information "
        "for assessment) dlt / licence-application — consent bank / kyc — consent"
    )
    assert page.fields["dopa.person"]["citizen_id"]["visible"] == "no purpose"


def test_every_value_on_the_page_is_escaped(tmp_path: Path) -> None:
    text = (
        CONSUMERS_FILE.read_text(encoding="utf-8")
        .replace(
            'description = "open an account for a customer or a company"',
            'description = "<script>alert(1)</script> & co"',
        )
        .replace('"dopa.house" = ["address"]', '"dopa.house" = ["address", "<b>"]')
    )
    copy = tmp_path / "consumers.toml"
    copy.write_text(text, encoding="utf-8")
    empty = index_engine(f"sqlite:///{tmp_path / 'no-tables.db'}")
    try:
        html = render(CatalogPage(empty, tuple(build(registry=load_consumers(copy)).values())).catalog())
    finally:
        empty.dispose()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in html
    assert "<b>" not in html and 'data-field="&lt;b&gt;"' in html


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, HTML),
        ("", HTML),
        ("*/*", HTML),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", HTML),
        ("application/json", JSON),
        ("application/json, text/html;q=0.5", JSON),
        ("application/*", JSON),
        ("text/*;q=0.2, application/json;q=0.1", HTML),
        ("*/*;q=0.5, text/html;q=0", JSON),
        ("image/png", None),
        ("application/json;q=0, text/html;q=0", None),
        ("application/json;q=oops", None),
    ],
)
def test_the_accept_header_chooses_html_or_json(accept: str | None, chosen: str | None) -> None:
    assert negotiate(accept, (HTML, JSON)) == chosen
