"""The principals of the exchange: who may connect to the broker, each named by its certificate
(CN=<name>, so Kafka's principal is `User:<name>`) or its SCRAM user name."""

from __future__ import annotations

from pathlib import Path

from agencies.population import AGENCIES as SIMULATED_AGENCIES

BROKER = "broker"
REGISTRY = "schema-registry"
"""The local schema registry's server certificate; it serves TLS and connects to nobody."""
OPERATOR = "gdx-operator"
"""The superuser: `gdx topics apply`, `gdx acl apply` and the launcher's readiness probe."""
WORKER = "gdx-worker"
"""The stream worker (`gdx worker`): reads the change topics in gdx-index, writes dead letters, notifications."""
LOOKUP = "gdx-lookup"
"""The lookup API (`gdx serve`): appends to and reads gdx.audit, follows gdx.consent.v1."""
CONSENT = "gdx-consent"
"""`gdx consent grant|revoke`: the one writer of gdx.consent.v1."""
MONITOR = "gdx-monitor"
"""The lag monitor (`gdx lag`): describes groups and topics, reads no record."""
SERVICES = (WORKER, LOOKUP, CONSENT, MONITOR)
SUPER_USERS = (BROKER, OPERATOR)


def agency_principal(agency: str) -> str:
    """The principal an agency's outbox publisher connects as (`dopa` → `agency-dopa`)."""
    return f"agency-{agency}"


AGENCIES = tuple(agency_principal(agency) for agency in SIMULATED_AGENCIES)


def consumer_principal(consumer_id: str) -> str:
    return f"consumer-{consumer_id}"


def known_principals(consumers_file: Path | None = None) -> list[str]:
    """Every client principal of the stack: operator, services, agencies, each registered consumer."""
    from linkage.consumers import load_consumers

    consumers = load_consumers(consumers_file).consumers
    return [OPERATOR, *SERVICES, *AGENCIES, *(consumer_principal(cid) for cid in sorted(consumers))]
