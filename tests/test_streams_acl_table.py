"""The ACL table's rules, pinned without a broker: who may write, read and join what."""

from __future__ import annotations

from dataclasses import replace

import pytest

from linkage.consumers import Consumer, ConsumerRegistry, Purpose, load_consumers
from linkage.subscriptions import load_subscriptions
from schemas.catalog import load_schema_catalog
from streams.acl_table import (
    DESCRIBE,
    GROUP,
    LITERAL,
    PREFIXED,
    READ,
    TOPIC,
    WRITE,
    AclRow,
    acl_table,
    principals,
    wire_fields,
)
from streams.topic_catalog import load_catalog

CATALOG = load_catalog()
REGISTRY = load_consumers()
SUBSCRIPTIONS = load_subscriptions()
WIRE = wire_fields(load_schema_catalog())


def table(
    prefix: str = "", revoked: frozenset[str] = frozenset(), registry: ConsumerRegistry = REGISTRY
) -> list[AclRow]:
    return acl_table(CATALOG, registry, SUBSCRIPTIONS, WIRE, prefix, revoked)


def allowed(rows: list[AclRow], principal: str, operation: str, topic: str) -> bool:
    """Whether a row lets `principal` do `operation` on `topic`, as the broker would match it."""
    for row in rows:
        if row.principal != principal or row.resource_type != TOPIC or row.operation != operation:
            continue
        if row.pattern == LITERAL and row.resource_name in (topic, "*"):
            return True
        if row.pattern == PREFIXED and topic.startswith(row.resource_name):
            return True
    return False


def touching(rows: list[AclRow], topic: str) -> set[str]:
    """Every principal with any right on `topic`."""
    return {row.principal for row in rows if allowed([row], row.principal, row.operation, topic)}


def test_an_agency_writes_only_its_own_change_topics() -> None:
    rows = table()
    assert allowed(rows, "agency-dopa", WRITE, "gdx.dopa.person.v1")
    assert not allowed(rows, "agency-dlt", WRITE, "gdx.dopa.person.v1")
    for ds in CATALOG.datasets:
        writers = {r.principal for r in rows if r.resource_name == ds.topic and r.operation == WRITE}
        assert writers == {f"agency-{ds.agency}"}, ds.topic
    assert not any(r.resource_name == "gdx.schemas" for r in rows), "the schemas live in the registry"
    agency_rows = [r for r in rows if r.principal.startswith("agency-")]
    assert {r.operation for r in agency_rows} == {WRITE, DESCRIBE}
    assert not any(r.resource_type == "CLUSTER" for r in rows), "Kafka 4 needs no IDEMPOTENT_WRITE"


def test_only_the_worker_reads_change_topics_and_writes_dead_letters_and_notifications() -> None:
    rows = table()
    for ds in CATALOG.datasets:
        readers = {r.principal for r in rows if r.resource_name == ds.topic and r.operation == READ}
        assert readers == {"gdx-worker"}, ds.topic  # the shipped registry has no full mandate
        dlq = f"gdx.dlq.{ds.topic}"
        assert touching(rows, dlq) == {"gdx-worker"}
        assert not allowed(rows, "gdx-worker", READ, dlq)
    for sub in SUBSCRIPTIONS:
        assert {
            r.principal for r in rows if r.resource_name == f"gdx.notify.{sub.consumer}" and r.operation == WRITE
        } == {"gdx-worker"}
    groups = [r for r in rows if r.resource_type == GROUP and r.resource_name == "gdx-index"]
    assert groups == [AclRow("gdx-worker", GROUP, "gdx-index", LITERAL, READ)]


def test_only_the_audit_writers_touch_the_audit_trail_and_only_append_and_read() -> None:
    """The lookup API for lookups, the worker for the notices it sends: each reads its chain's head
    and appends; neither reads the anchors it appends to."""
    rows = table()
    assert touching(rows, "gdx.audit") == {"gdx-lookup", "gdx-worker"}
    assert {r.operation for r in rows if r.resource_name == "gdx.audit"} == {READ, WRITE, DESCRIBE}
    assert touching(rows, "gdx.audit.anchors") == {"gdx-lookup", "gdx-worker"}
    assert {r.operation for r in rows if r.resource_name == "gdx.audit.anchors"} == {WRITE, DESCRIBE}
    forbidden = {"ALTER", "ALTER_CONFIGS", "DELETE", "CREATE", "ALL", "CLUSTER_ACTION"}
    assert not [r for r in rows if r.operation in forbidden]


def test_exactly_one_principal_writes_consents_and_the_lookup_reads_them() -> None:
    rows = table()
    assert {
        r.principal for r in rows if r.operation == WRITE and allowed([r], r.principal, WRITE, "gdx.consent.v1")
    } == {"gdx-consent"}
    assert allowed(rows, "gdx-lookup", READ, "gdx.consent.v1")
    assert not allowed(rows, "gdx-consent", READ, "gdx.consent.v1")


def test_a_consumer_reads_only_its_own_notify_topic_under_its_own_groups() -> None:
    rows = table()
    assert allowed(rows, "consumer-revenue", READ, "gdx.notify.revenue")
    assert not allowed(rows, "consumer-revenue", READ, "gdx.notify.social-security")
    assert not allowed(rows, "consumer-social-security", READ, "gdx.notify.revenue")
    for ds in CATALOG.datasets:
        assert not allowed(rows, "consumer-revenue", READ, f"gdx.dlq.{ds.topic}")
        assert not allowed(rows, "consumer-revenue", READ, ds.topic)  # estate-tax lists only some fields
    revenue_groups = [r for r in rows if r.principal == "consumer-revenue" and r.resource_type == GROUP]
    assert revenue_groups == [AclRow("consumer-revenue", GROUP, "consumer-revenue.", PREFIXED, READ)]
    # A subscriber missing from the consumer registry is a principal all the same.
    assert allowed(rows, "consumer-social-security", READ, "gdx.notify.social-security")


def _with_purpose(consumer: str, purpose: Purpose) -> ConsumerRegistry:
    held = REGISTRY.consumers[consumer]
    changed = replace(held, purposes={**held.purposes, purpose.name: purpose})
    return ConsumerRegistry({**REGISTRY.consumers, consumer: changed})


@pytest.mark.parametrize(
    ("mandate", "extra_fields", "reads"),
    [
        ("Land Transport Act, section 1 (a test mandate)", ("entity_key", "parties"), True),
        (None, ("entity_key", "parties"), False),  # consent cannot cover a stream of everyone's records
        ("Land Transport Act, section 1 (a test mandate)", ("entity_key",), False),  # the parties' IDs are on the wire
    ],
)
def test_a_change_topic_is_readable_only_on_a_mandate_that_lists_every_field(
    mandate: str | None, extra_fields: tuple[str, ...], reads: bool
) -> None:
    fields = tuple(sorted(WIRE["dopa.person"])) + extra_fields
    purpose = Purpose("road-safety", "test", frozenset({"lookup"}), {"dopa.person": fields}, mandate)
    rows = table(registry=_with_purpose("dlt", purpose))
    assert allowed(rows, "consumer-dlt", READ, "gdx.dopa.person.v1") is reads
    assert not allowed(rows, "consumer-dlt", READ, "gdx.dopa.house.v1")
    assert not allowed(rows, "consumer-dlt", READ, "gdx.dlq.gdx.dopa.person.v1")


def test_every_name_carries_the_prefix() -> None:
    rows = table(prefix="t1.")
    names = {r.resource_name for r in rows}
    assert all(name.startswith("t1.") for name in names), sorted(n for n in names if not n.startswith("t1."))
    assert AclRow("gdx-worker", GROUP, "t1.gdx-index", LITERAL, READ) in rows
    assert AclRow("consumer-revenue", GROUP, "t1.consumer-revenue.", PREFIXED, READ) in rows
    assert AclRow("gdx-monitor", GROUP, "t1.", PREFIXED, DESCRIBE) in rows
    assert len(rows) == len(table())


def test_the_monitor_describes_but_reads_nothing() -> None:
    rows = table()
    monitor = [r for r in rows if r.principal == "gdx-monitor"]
    assert {r.operation for r in monitor} == {DESCRIBE}
    assert AclRow("gdx-monitor", GROUP, "*", LITERAL, DESCRIBE) in monitor
    assert not allowed(rows, "gdx-monitor", DESCRIBE, "gdx.audit")


def test_a_revoked_principal_has_no_rows_and_the_others_keep_theirs() -> None:
    full = table()
    rows = table(revoked=frozenset({"agency-dlt", "consumer-revenue"}))
    assert not [r for r in rows if r.principal in ("agency-dlt", "consumer-revenue")]
    assert rows == [r for r in full if r.principal not in ("agency-dlt", "consumer-revenue")]


def test_super_users_need_no_rows_and_every_principal_is_named() -> None:
    rows = table()
    assert not [r for r in rows if r.principal in ("broker", "gdx-operator")]
    names = principals(CATALOG, REGISTRY, SUBSCRIPTIONS)
    assert {r.principal for r in rows} == set(names)
    expected_consumers = {f"consumer-{c}" for c in REGISTRY.consumers} | {
        f"consumer-{s.consumer}" for s in SUBSCRIPTIONS
    }
    assert expected_consumers <= set(names)
    assert {
        "gdx-worker",
        "gdx-lookup",
        "gdx-consent",
        "gdx-monitor",
        "agency-dopa",
        "agency-dbd",
        "agency-dol",
        "agency-dlt",
    } <= set(names)


def test_the_table_is_deterministic_and_sorted() -> None:
    assert table() == table() == sorted(set(table()))


def test_wire_fields_cover_every_catalog_dataset() -> None:
    assert {f"{ds.agency}.{ds.name}" for ds in CATALOG.datasets} == set(WIRE)
    assert {"citizen_id", "name", "date_of_birth"} <= WIRE["dopa.person"]


def test_unused_registry_entries_do_not_matter() -> None:
    """A consumer with no purposes still gets its group prefix and nothing else."""
    lone = Consumer("lone", "Lone", "0" * 64, 1.0, 1, {})
    rows = table(registry=ConsumerRegistry({**REGISTRY.consumers, "lone": lone}))
    assert [r for r in rows if r.principal == "consumer-lone"] == [
        AclRow("consumer-lone", GROUP, "consumer-lone.", PREFIXED, READ)
    ]


def test_the_readme_shows_the_table_as_generated() -> None:
    """The README's table is `gdx acl list --offline`'s output; a registry change must regenerate it."""
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Authorization", 1)[1]
    block = section.split("```text\n", 1)[1].split("```", 1)[0].splitlines()
    assert block[1:-1] == [str(row) for row in table()], "regenerate with `gdx acl list --offline`"
