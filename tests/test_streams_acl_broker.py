"""`gdx acl apply|list` against a real Kafka 4.1 broker running the StandardAuthorizer with
`allow.everyone.if.no.acl.found=false`, and the derived table enforced on real clients.

The broker is the launcher's own under `GDX_KAFKA_SECURITY=mtls`: TLS on every listener, a client
certificate from the project CA required, the principal its CN. Each check connects with the
certificate of the principal the table speaks of (`settings.kafka_as`, issued on first use), so
`rogue` is a member the CA knows and the table does not.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from functools import partial

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic

from foundation.kafka_clients import ClientSecurity, KafkaClients
from linkage.consumers import load_consumers
from linkage.subscriptions import load_subscriptions
from schemas.catalog import load_schema_catalog
from streams.acl_admin import AclDrift, ConfluentAclAdmin, acl_admin_config, acl_drift, apply_acls, is_ours
from streams.acl_table import LITERAL, TOPIC, WRITE, AclRow, acl_table, principals, wire_fields
from streams.security.pki import Pki
from streams.settings import Settings
from streams.topic_catalog import load_catalog
from tests.support.kafka_env import secured_cluster

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.skipif(
        bool(os.environ.get("KAFKA_BOOTSTRAP_SERVERS")),
        reason="starts its own broker with an authorizer; an external cluster's ACLs are not ours to test on",
    ),
]

PREFIX = "acl."
TIMEOUT_S = 20.0
CATALOG = load_catalog()
REGISTRY = load_consumers()
SUBSCRIPTIONS = load_subscriptions()
WIRE = wire_fields(load_schema_catalog())
NAMES = ["broker", "gdx-operator", *principals(CATALOG, REGISTRY, SUBSCRIPTIONS), "rogue"]
CLUSTER: list[Settings] = []


def connection(principal: str | None = None) -> dict[str, str | int]:
    """The ACL client's configuration as the command builds it, connecting with `principal`'s
    certificate (none: a TLS client without one)."""
    (settings,) = CLUSTER
    if principal is None:
        ca = Pki.of(settings.state_dir.resolve()).ca_cert
        kafka = KafkaClients(settings.bootstrap_servers, security=ClientSecurity("SSL", cafile=ca))
    else:
        kafka = settings.kafka_as(principal)
    return acl_admin_config(kafka, TIMEOUT_S)


@pytest.fixture(scope="module")
def mtls_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with secured_cluster(tmp_path_factory.mktemp("kafka-acl"), brokers=1) as settings:
        CLUSTER[:] = [settings]
        _create_topics()
        yield settings.bootstrap_servers
        CLUSTER.clear()


def _create_topics() -> None:
    admin = AdminClient(connection("gdx-operator"))
    topics = [NewTopic(PREFIX + spec.name, 1, 1) for spec in CATALOG.topics]
    for future in admin.create_topics(topics, request_timeout=TIMEOUT_S).values():
        future.result(TIMEOUT_S)


class Recording(ConfluentAclAdmin):
    """The real admin, counting the changes it is asked to make."""

    changes: list[str]

    def create(self, rows: Sequence[AclRow]) -> None:
        self.changes.append(f"create {len(rows)}")
        super().create(rows)

    def delete(self, rows: Sequence[AclRow]) -> None:
        self.changes.append(f"delete {len(rows)}")
        super().delete(rows)


def operator(bootstrap: str) -> Recording:
    admin = Recording(connection("gdx-operator"), TIMEOUT_S)
    admin.changes = []
    return admin


def table(revoked: frozenset[str] = frozenset()) -> list[AclRow]:
    return acl_table(CATALOG, REGISTRY, SUBSCRIPTIONS, WIRE, PREFIX, revoked)


def ours(row: AclRow) -> bool:
    return is_ours(row, NAMES, PREFIX)


def produce(bootstrap: str, principal: str, topic: str) -> KafkaError | None:
    """One idempotent, acks=all write as `principal`; the broker's refusal, or None."""
    errors: list[KafkaError | None] = []
    producer = Producer(
        {
            **connection(principal),
            "enable.idempotence": True,
            "acks": "all",
            "message.timeout.ms": int(TIMEOUT_S * 1000),
        }
    )
    try:
        producer.produce(PREFIX + topic, b"{}", key=b"k", on_delivery=lambda err, _msg: errors.append(err))
    except KafkaException as exc:
        return exc.args[0]  # type: ignore[no-any-return]
    producer.flush(TIMEOUT_S)
    return errors[0] if errors else KafkaError(KafkaError._TIMED_OUT)


def consume(bootstrap: str, principal: str, topic: str, group: str) -> KafkaError | None:
    """Join `group` and poll `topic` as `principal` until a record or an error; the error, or None."""
    consumer = Consumer(
        {
            **connection(principal),
            "group.id": PREFIX + group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.subscribe([PREFIX + topic])
        for _ in range(int(TIMEOUT_S)):
            message = consumer.poll(1.0)
            if message is None:
                continue
            error = message.error()
            if error is None:
                return None
            if error.code() in (KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED):
                return error  # type: ignore[no-any-return]
        return KafkaError(KafkaError._TIMED_OUT)
    finally:
        consumer.close()


def test_apply_makes_the_cluster_match_and_a_second_run_changes_nothing(mtls_bootstrap: str) -> None:
    admin = operator(mtls_bootstrap)
    first = apply_acls(admin, table(), ours, TIMEOUT_S)
    assert len(first.missing) == len(table()) and not first.extra
    again = operator(mtls_bootstrap)
    second = apply_acls(again, table(), ours, TIMEOUT_S)
    assert second.in_step and again.changes == [], "a second apply creates and deletes nothing"
    assert acl_drift(again, table(), ours) == AclDrift(held=table())


def _wait_shown(admin: ConfluentAclAdmin, rows: list[AclRow]) -> None:
    """A binding reaches the broker's view a moment after the controller takes it."""
    deadline = time.monotonic() + TIMEOUT_S
    while not set(rows) <= set(admin.describe()):
        assert time.monotonic() < deadline, f"{rows} never shown"
        time.sleep(0.1)


def test_apply_removes_our_stray_bindings_and_keeps_foreign_ones(mtls_bootstrap: str) -> None:
    admin = operator(mtls_bootstrap)
    apply_acls(admin, table(), ours, TIMEOUT_S)
    stray = AclRow("agency-dlt", TOPIC, PREFIX + "gdx.dopa.person.v1", LITERAL, WRITE)
    foreign = AclRow("partner-x", TOPIC, "scratch", LITERAL, "READ")
    admin.create([stray, foreign])
    _wait_shown(admin, [stray, foreign])
    found = apply_acls(admin, table(), ours, TIMEOUT_S)
    assert found.extra == [stray] and found.foreign == [foreign]
    after = acl_drift(admin, table(), ours)
    assert after.in_step and after.foreign == [foreign]
    admin.delete([foreign])


def test_the_table_is_what_the_broker_enforces(mtls_bootstrap: str) -> None:
    apply_acls(operator(mtls_bootstrap), table(), ours, TIMEOUT_S)
    # An idempotent producer with WRITE on its topics needs nothing on the cluster (Kafka >= 3.0).
    assert produce(mtls_bootstrap, "agency-dopa", "gdx.dopa.person.v1") is None
    refused = produce(mtls_bootstrap, "agency-dlt", "gdx.dopa.person.v1")
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert produce(mtls_bootstrap, "gdx-worker", "gdx.notify.revenue") is None
    assert produce(mtls_bootstrap, "gdx-lookup", "gdx.consent.v1") is not None, "only gdx-consent writes consents"
    assert produce(mtls_bootstrap, "gdx-consent", "gdx.consent.v1") is None

    assert consume(mtls_bootstrap, "consumer-revenue", "gdx.notify.revenue", "consumer-revenue.tax") is None
    other = consume(mtls_bootstrap, "consumer-revenue", "gdx.notify.social-security", "consumer-revenue.tax")
    assert other is not None and other.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    dlq = consume(mtls_bootstrap, "consumer-revenue", "gdx.dlq.gdx.dopa.person.v1", "consumer-revenue.tax")
    assert dlq is not None and dlq.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    rogue = consume(mtls_bootstrap, "rogue", "gdx.dopa.person.v1", "gdx-index")
    assert rogue is not None, "a rogue principal neither reads change topics nor joins gdx-index"
    worker_in_other_group = consume(mtls_bootstrap, "consumer-revenue", "gdx.notify.revenue", "gdx-index")
    assert worker_in_other_group is not None and worker_in_other_group.code() == KafkaError.GROUP_AUTHORIZATION_FAILED

    lookup = AdminClient(connection("gdx-lookup"))
    compact = ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource("TOPIC", PREFIX + "gdx.audit", incremental_configs=[compact])
    with pytest.raises(KafkaException, match="(?i)authoriz"):
        for future in lookup.incremental_alter_configs([resource], request_timeout=TIMEOUT_S).values():
            future.result(TIMEOUT_S)


def _record(errors: list[KafkaError | None], err: KafkaError | None, _message: object) -> None:
    errors.append(err)


def test_a_client_without_a_certificate_can_do_nothing(mtls_bootstrap: str) -> None:
    """No listener speaks plaintext, and a TLS client without a certificate fails the handshake:
    whatever the ACLs, an anonymous client cannot write (nor reach the broker at all)."""
    apply_acls(operator(mtls_bootstrap), table(), ours, TIMEOUT_S)
    for config in (acl_admin_config(KafkaClients(mtls_bootstrap), TIMEOUT_S), connection(None)):
        errors: list[KafkaError | None] = []
        producer = Producer({**config, "message.timeout.ms": 5000, "acks": "all"})
        producer.produce(PREFIX + "gdx.dopa.person.v1", b"{}", key=b"k", on_delivery=partial(_record, errors))
        producer.flush(TIMEOUT_S)
        assert errors and errors[0] is not None, "an anonymous client's record was delivered"
        assert errors[0].code() in (KafkaError._MSG_TIMED_OUT, KafkaError._TRANSPORT, KafkaError._SSL), errors[0]


def test_a_revoked_principal_loses_every_right_on_the_next_apply(mtls_bootstrap: str) -> None:
    admin = operator(mtls_bootstrap)
    apply_acls(admin, table(), ours, TIMEOUT_S)
    assert produce(mtls_bootstrap, "agency-dol", "gdx.dol.title-deed.v1") is None
    found = apply_acls(admin, table(frozenset({"agency-dol"})), ours, TIMEOUT_S)
    assert found.extra and {row.principal for row in found.extra} == {"agency-dol"}
    refused = produce(mtls_bootstrap, "agency-dol", "gdx.dol.title-deed.v1")
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    apply_acls(admin, table(), ours, TIMEOUT_S)
