"""The principals of the exchange: who may connect to the broker, each named by its certificate
(CN=<name>, so Kafka's principal is `User:<name>`) or its SCRAM user name."""

from __future__ import annotations

from pathlib import Path

BROKER = "broker"
OPERATOR = "gdx-operator"
"""The superuser: `gdx topics apply`, `gdx acl apply` and the launcher's readiness probe."""
SERVICES = ("gdx-worker", "gdx-lookup", "gdx-consent")
AGENCIES = ("agency-dopa", "agency-dbd", "agency-dol", "agency-dlt")
SUPER_USERS = (BROKER, OPERATOR)


def consumer_principal(consumer_id: str) -> str:
    return f"consumer-{consumer_id}"


def known_principals(consumers_file: Path | None = None) -> list[str]:
    """Every client principal of the stack: operator, services, agencies, each registered consumer."""
    from linkage.consumers import load_consumers

    consumers = load_consumers(consumers_file).consumers
    return [OPERATOR, *SERVICES, *AGENCIES, *(consumer_principal(cid) for cid in sorted(consumers))]
