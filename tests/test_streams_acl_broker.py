"""`gdx acl apply|list` against a real Kafka 4.1 broker running the StandardAuthorizer with
`allow.everyone.if.no.acl.found=false`, and the derived table enforced on real clients.

The launcher has no way to add listeners or an authorizer (the TLS work adds that), so this test
starts the project's own broker through `launcher.up` with `render_properties` wrapped: the
launcher's PLAINTEXT listener stays (its readiness probe speaks plaintext; there a client is
User:ANONYMOUS, which no ACL names and no super user list holds), the controller listener and a
new SASL_PLAINTEXT listener (PLAIN, users in the JAAS
config) authenticates the principals, so each check runs as the principal the table speaks of.
When the TLS branch lands, the same checks should run over mTLS with the launcher's own secured
broker.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator, Sequence

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic

from foundation.kafka_clients import KafkaClients
from foundation.ports import free_port_block
from linkage.consumers import load_consumers
from linkage.subscriptions import load_subscriptions
from schemas.catalog import load_schema_catalog
from streams.acl_admin import AclDrift, ConfluentAclAdmin, acl_admin_config, acl_drift, apply_acls, is_ours
from streams.acl_table import LITERAL, TOPIC, WRITE, AclRow, acl_table, principals, wire_fields
from streams.local import kafka_launcher as launcher
from streams.topic_catalog import load_catalog
from tests.support.kafka_env import local_settings

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
PLAIN_PORT: list[int] = []
PASSWORDS = {name: f"{name}-{uuid.uuid4().hex[:8]}" for name in NAMES}


def _jaas(user: str) -> str:
    users = " ".join(f'user_{name}="{password}"' for name, password in PASSWORDS.items())
    return (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'username="{user}" password="{PASSWORDS[user]}" {users};'
    )


def _secured(render: object, sasl_port: int) -> object:
    def render_properties(settings: object, node: object, brokers: int) -> str:
        lines = dict(
            line.split("=", 1)
            for line in render(settings, node, brokers).splitlines()  # type: ignore[operator]
            if line and not line.startswith("#")
        )
        lines["listeners"] += f",SASL_PLAINTEXT://127.0.0.1:{sasl_port}"
        lines["advertised.listeners"] += f",SASL_PLAINTEXT://127.0.0.1:{sasl_port}"
        # The controller listener authenticates too, so no unauthenticated principal is a super user.
        lines["listener.security.protocol.map"] = (
            "PLAINTEXT:PLAINTEXT,CONTROLLER:SASL_PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT"
        )
        lines["inter.broker.listener.name"] = "SASL_PLAINTEXT"
        lines.update(
            {
                "sasl.enabled.mechanisms": "PLAIN",
                "sasl.mechanism.inter.broker.protocol": "PLAIN",
                "sasl.mechanism.controller.protocol": "PLAIN",
                "listener.name.sasl_plaintext.plain.sasl.jaas.config": _jaas("broker"),
                "listener.name.controller.plain.sasl.jaas.config": _jaas("broker"),
                "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
                "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                "allow.everyone.if.no.acl.found": "false",
                "super.users": "User:broker;User:gdx-operator",
            }
        )
        return "\n".join(f"{k}={v}" for k, v in lines.items()) + "\n"

    return render_properties


def connection(bootstrap: str, principal: str | None = None) -> dict[str, str | int]:
    """The ACL client's configuration as the command builds it, logged in as `principal` (SASL/PLAIN
    on this test broker; none: anonymous)."""
    config = acl_admin_config(KafkaClients(bootstrap), TIMEOUT_S)
    return config if principal is None else {**config, **security(principal)}


def security(principal: str) -> dict[str, str]:
    return {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "PLAIN",
        "sasl.username": principal,
        "sasl.password": PASSWORDS[principal],
    }


@pytest.fixture(scope="module")
def sasl_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = local_settings(tmp_path_factory.mktemp("kafka-acl"), brokers=1)
    PLAIN_PORT[:] = [settings.client_port(1)]
    sasl_port = free_port_block(1)
    try:
        with pytest.MonkeyPatch.context() as patch:  # only while this broker is started
            patch.setattr(launcher, "render_properties", _secured(launcher.render_properties, sasl_port))
            launcher.up(settings, 1, report=False)
        bootstrap = f"127.0.0.1:{sasl_port}"
        _create_topics(bootstrap)
        yield bootstrap
    finally:
        launcher.down(settings)


def _create_topics(bootstrap: str) -> None:
    admin = AdminClient(connection(bootstrap, "gdx-operator"))
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
    admin = Recording(connection(bootstrap, "gdx-operator"), TIMEOUT_S)
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
            **connection(bootstrap, principal),
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
            **connection(bootstrap, principal),
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


def test_apply_makes_the_cluster_match_and_a_second_run_changes_nothing(sasl_bootstrap: str) -> None:
    admin = operator(sasl_bootstrap)
    first = apply_acls(admin, table(), ours, TIMEOUT_S)
    assert len(first.missing) == len(table()) and not first.extra
    again = operator(sasl_bootstrap)
    second = apply_acls(again, table(), ours, TIMEOUT_S)
    assert second.in_step and again.changes == [], "a second apply creates and deletes nothing"
    assert acl_drift(again, table(), ours) == AclDrift(held=table())


def _wait_shown(admin: ConfluentAclAdmin, rows: list[AclRow]) -> None:
    """A binding reaches the broker's view a moment after the controller takes it."""
    deadline = time.monotonic() + TIMEOUT_S
    while not set(rows) <= set(admin.describe()):
        assert time.monotonic() < deadline, f"{rows} never shown"
        time.sleep(0.1)


def test_apply_removes_our_stray_bindings_and_keeps_foreign_ones(sasl_bootstrap: str) -> None:
    admin = operator(sasl_bootstrap)
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


def test_the_table_is_what_the_broker_enforces(sasl_bootstrap: str) -> None:
    apply_acls(operator(sasl_bootstrap), table(), ours, TIMEOUT_S)
    # An idempotent producer with WRITE on its topics needs nothing on the cluster (Kafka >= 3.0).
    assert produce(sasl_bootstrap, "agency-dopa", "gdx.dopa.person.v1") is None
    refused = produce(sasl_bootstrap, "agency-dlt", "gdx.dopa.person.v1")
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert produce(sasl_bootstrap, "gdx-worker", "gdx.notify.revenue") is None
    assert produce(sasl_bootstrap, "gdx-lookup", "gdx.consent.v1") is not None, "only gdx-consent writes consents"
    assert produce(sasl_bootstrap, "gdx-consent", "gdx.consent.v1") is None

    assert consume(sasl_bootstrap, "consumer-revenue", "gdx.notify.revenue", "consumer-revenue.tax") is None
    other = consume(sasl_bootstrap, "consumer-revenue", "gdx.notify.social-security", "consumer-revenue.tax")
    assert other is not None and other.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    dlq = consume(sasl_bootstrap, "consumer-revenue", "gdx.dlq.gdx.dopa.person.v1", "consumer-revenue.tax")
    assert dlq is not None and dlq.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    rogue = consume(sasl_bootstrap, "rogue", "gdx.dopa.person.v1", "gdx-index")
    assert rogue is not None, "a rogue principal neither reads change topics nor joins gdx-index"
    worker_in_other_group = consume(sasl_bootstrap, "consumer-revenue", "gdx.notify.revenue", "gdx-index")
    assert worker_in_other_group is not None and worker_in_other_group.code() == KafkaError.GROUP_AUTHORIZATION_FAILED

    lookup = AdminClient(connection(sasl_bootstrap, "gdx-lookup"))
    compact = ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource("TOPIC", PREFIX + "gdx.audit", incremental_configs=[compact])
    with pytest.raises(KafkaException, match="(?i)authoriz"):
        for future in lookup.incremental_alter_configs([resource], request_timeout=TIMEOUT_S).values():
            future.result(TIMEOUT_S)


def test_an_anonymous_plaintext_client_can_do_nothing(sasl_bootstrap: str) -> None:
    """The launcher's plaintext listener answers metadata (its readiness probe) and nothing else."""
    apply_acls(operator(sasl_bootstrap), table(), ours, TIMEOUT_S)
    plain = f"127.0.0.1:{PLAIN_PORT[0]}"
    errors: list[KafkaError | None] = []
    producer = Producer({**connection(plain), "message.timeout.ms": 5000, "acks": "all"})
    producer.produce(PREFIX + "gdx.dopa.person.v1", b"{}", key=b"k", on_delivery=lambda err, _m: errors.append(err))
    producer.flush(TIMEOUT_S)
    assert errors and errors[0] is not None and errors[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_a_revoked_principal_loses_every_right_on_the_next_apply(sasl_bootstrap: str) -> None:
    admin = operator(sasl_bootstrap)
    apply_acls(admin, table(), ours, TIMEOUT_S)
    assert produce(sasl_bootstrap, "agency-dol", "gdx.dol.title-deed.v1") is None
    found = apply_acls(admin, table(frozenset({"agency-dol"})), ours, TIMEOUT_S)
    assert found.extra and {row.principal for row in found.extra} == {"agency-dol"}
    refused = produce(sasl_bootstrap, "agency-dol", "gdx.dol.title-deed.v1")
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    apply_acls(admin, table(), ours, TIMEOUT_S)
