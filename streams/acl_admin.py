"""Make the cluster's ACLs match the derived table (`streams.acl_table`), idempotently.

aiokafka has no ACL API, so the admin calls go through confluent-kafka's AdminClient (librdkafka:
CreateAcls, DescribeAcls, DeleteAcls, the same requests Kafka's own `kafka-acls.sh` sends, from a
maintained, typed client with no JVM to start per call). Its connection comes from the same
`KafkaClients` as every other client's (`acl_admin_config`).

Which bindings are "ours": those of a principal the table speaks for, of a revoked principal, or of
any principal named by the project's scheme (`agency-*`, `consumer-*`, `gdx-*`: a consumer dropped
from the registry loses its rights on the next apply), on a resource under the topic prefix. Only
ours are created or deleted; any other binding is shown as foreign and left alone, so an operator's
own grants and another environment's (another prefix) survive.

ACLs live in the KRaft metadata log, and a broker learns of a change a moment after the controller
accepts it: after a change `apply` reads back until the cluster shows exactly the table, so a second
run straight after (or a client started next) sees what this one made.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ConfigResource,
    ResourcePatternType,
    ResourceType,
)

from foundation.errors import GdxError
from foundation.kafka_clients import KafkaClients
from streams.acl_table import AclRow
from streams.security.principals import SUPER_USERS

PRINCIPAL_TYPE = "User:"
OUR_PRINCIPAL_PREFIXES = ("agency-", "consumer-", "gdx-")
CLUSTER_RESOURCE = "kafka-cluster"
RETRY_PAUSE_S = 0.2


def acl_admin_config(kafka: KafkaClients, timeout_s: float = 15.0) -> dict[str, str | int]:
    """The AdminClient's configuration: the connection (and its security) as every client of the
    project gets it, from `KafkaClients`, with the ACL calls' timeouts."""
    timeout_ms = max(1000, int(timeout_s * 1000))
    return {
        **kafka.librdkafka_config(),
        "socket.timeout.ms": timeout_ms,
        "socket.connection.setup.timeout.ms": timeout_ms,
        # librdkafka logs every refused connection; the call's own error is our one line instead.
        "log_level": 0,
    }


class AclAdmin(Protocol):
    """The seam to the cluster: the three ACL calls, in the table's own terms."""

    def describe(self) -> list[AclRow]:
        """Every binding on the cluster."""
        ...

    def create(self, rows: Sequence[AclRow]) -> None: ...

    def delete(self, rows: Sequence[AclRow]) -> None: ...


class ConfluentAclAdmin:
    """`AclAdmin` over confluent-kafka's AdminClient."""

    def __init__(self, config: Mapping[str, str | int], timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.bootstrap = str(config.get("bootstrap.servers", ""))
        self._admin = AdminClient(dict(config))

    def _call(self, what: str, call: Callable[[], object]) -> object:
        try:
            return call()
        except TimeoutError:
            raise GdxError(
                f"{what}: the cluster at {self.bootstrap} did not answer within {self.timeout_s:g} s",
                "check that it is up (`gdx kafka status`), or raise GDX_KAFKA_REQUEST_TIMEOUT_S",
            ) from None
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if isinstance(error, KafkaError) and error.code() == KafkaError.SECURITY_DISABLED:
                raise GdxError(
                    f"{what}: the cluster at {self.bootstrap} has no authorizer, so it holds no ACLs",
                    "run the broker with authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                ) from None
            reason = error.str() if isinstance(error, KafkaError) else str(exc)
            raise GdxError(
                f"{what} at {self.bootstrap} failed: {' '.join(reason.split())}",
                "check that the cluster is up (`gdx kafka status`) and that the operator principal is a super user",
            ) from None

    def _require_authorizer(self) -> None:
        """A broker without an authorizer answers DescribeAcls with an empty list, as if it held no
        ACLs; only its `authorizer.class.name` tells the two apart."""

        def authorizer() -> object:
            nodes = self._admin.describe_cluster(request_timeout=self.timeout_s).result(self.timeout_s).nodes
            broker = ConfigResource(ResourceType.BROKER, str(nodes[0].id))
            configs = self._admin.describe_configs([broker], request_timeout=self.timeout_s)[broker]
            entry = configs.result(self.timeout_s).get("authorizer.class.name")
            return entry.value if entry is not None else None

        if not self._call("reading the broker's authorizer", authorizer):
            raise GdxError(
                f"the cluster at {self.bootstrap} has no authorizer, so it holds no ACLs",
                "run the broker with authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            )

    def describe(self) -> list[AclRow]:
        self._require_authorizer()
        # None matches any name, principal and host (the stubs say str, the documentation says None).
        every = AclBindingFilter(
            ResourceType.ANY,
            None,  # type: ignore[arg-type]
            ResourcePatternType.ANY,
            None,  # type: ignore[arg-type]
            None,  # type: ignore[arg-type]
            AclOperation.ANY,
            AclPermissionType.ANY,
        )

        def read() -> object:
            return self._admin.describe_acls(every, request_timeout=self.timeout_s).result(self.timeout_s)

        bindings = self._call("reading the ACLs", read)
        assert isinstance(bindings, list)
        return sorted(_row(binding) for binding in bindings)

    def create(self, rows: Sequence[AclRow]) -> None:
        if not rows:
            return
        bindings = [_binding(row) for row in rows]

        def make() -> object:
            for future in self._admin.create_acls(bindings, request_timeout=self.timeout_s).values():
                future.result(self.timeout_s)
            return None

        self._call(f"creating {len(rows)} ACL bindings", make)

    def delete(self, rows: Sequence[AclRow]) -> None:
        if not rows:
            return
        filters = [_filter(row) for row in rows]

        def remove() -> object:
            for future in self._admin.delete_acls(filters, request_timeout=self.timeout_s).values():
                future.result(self.timeout_s)
            return None

        self._call(f"deleting {len(rows)} ACL bindings", remove)


def _binding(row: AclRow) -> AclBinding:
    restype = ResourceType.BROKER if row.resource_type == "CLUSTER" else ResourceType[row.resource_type]
    principal = row.principal if ":" in row.principal else f"{PRINCIPAL_TYPE}{row.principal}"
    return AclBinding(
        restype,
        row.resource_name,
        ResourcePatternType[row.pattern],
        principal,
        row.host,
        AclOperation[row.operation],
        AclPermissionType[row.permission],
    )


def _filter(row: AclRow) -> AclBindingFilter:
    """The filter that matches exactly one binding: every field named."""
    exact = _binding(row)
    return AclBindingFilter(
        exact.restype,
        exact.name,
        exact.resource_pattern_type,
        exact.principal,
        exact.host,
        exact.operation,
        exact.permission_type,
    )


def _name(value: Enum | str | int) -> str:
    return value.name if isinstance(value, Enum) else str(value)


def _row(binding: object) -> AclRow:
    assert isinstance(binding, AclBinding)
    restype = _name(binding.restype)
    return AclRow(
        principal=binding.principal.removeprefix(PRINCIPAL_TYPE),
        resource_type="CLUSTER" if restype == "BROKER" else restype,
        resource_name=binding.name,
        pattern=_name(binding.resource_pattern_type),
        operation=_name(binding.operation),
        permission=_name(binding.permission_type),
        host=binding.host,
    )


def is_ours(row: AclRow, principals: Collection[str], prefix: str) -> bool:
    """Whether `apply` manages this binding (see the module's docstring)."""
    name = row.principal
    if name in SUPER_USERS:
        return False
    named = name in principals or (":" not in name and name.startswith(OUR_PRINCIPAL_PREFIXES))
    return named and row.resource_name.startswith(prefix) if prefix else named


@dataclass
class AclDrift:
    """The cluster against the table: held (in both), missing (table only), extra (ours, cluster
    only), foreign (not ours, left alone)."""

    held: list[AclRow] = field(default_factory=list)
    missing: list[AclRow] = field(default_factory=list)
    extra: list[AclRow] = field(default_factory=list)
    foreign: list[AclRow] = field(default_factory=list)

    @property
    def in_step(self) -> bool:
        return not self.missing and not self.extra


def compare(desired: Sequence[AclRow], live: Sequence[AclRow], ours: Callable[[AclRow], bool]) -> AclDrift:
    wanted, present = set(desired), set(live)
    return AclDrift(
        held=sorted(wanted & present),
        missing=sorted(wanted - present),
        extra=sorted(row for row in present - wanted if ours(row)),
        foreign=sorted(row for row in present - wanted if not ours(row)),
    )


def acl_drift(admin: AclAdmin, desired: Sequence[AclRow], ours: Callable[[AclRow], bool]) -> AclDrift:
    return compare(desired, admin.describe(), ours)


def apply_acls(
    admin: AclAdmin,
    desired: Sequence[AclRow],
    ours: Callable[[AclRow], bool],
    timeout_s: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> AclDrift:
    """Create the missing bindings and delete our extra ones; returns what it found (and so did).

    Safe to run any number of times: a run against a cluster that already matches calls neither
    create nor delete. After a change it reads back until the cluster shows the table, for `timeout_s`.
    """
    found = acl_drift(admin, desired, ours)
    if found.in_step:
        return found
    admin.create(found.missing)
    admin.delete(found.extra)
    deadline = clock() + timeout_s
    while True:
        now = acl_drift(admin, desired, ours)
        if now.in_step:
            return found
        if clock() >= deadline:
            raise GdxError(
                f"the cluster still shows {len(now.missing)} missing and {len(now.extra)} extra ACL bindings "
                f"{timeout_s:g} s after `acl apply` changed them",
                "check that every broker is up (`gdx kafka status`), or raise GDX_KAFKA_REQUEST_TIMEOUT_S",
            )
        sleep(RETRY_PAUSE_S)
