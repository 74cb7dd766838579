"""Every metric of the exchange, defined once; the rest of the code base only imports and uses them.

Why one module: the rules (`monitoring/rules/`), the dashboard (`monitoring/dashboards/`) and the
status page all name these series, and a test checks them against this file — a metric invented
elsewhere would silently be missing from all three.

Conventions (Prometheus naming): the `gdx_` prefix, base units (seconds), `_total` on counters,
`_timestamp_seconds` for points in time (ages are computed in PromQL as `time() - ...`, so a stuck
process shows a growing age instead of a frozen one).

Label cardinality is bounded by design — never put an entity key, citizen id, event id or free
text in a label:
- `agency`: the four source agencies (`dopa`, `dbd`, `dol`, `dlt`);
- `dataset`: the catalog's datasets (a few dozen);
- `consumer`: registered consumer agencies; `purpose`: the catalog's purposes;
- `reason`: a short fixed vocabulary per metric (see `DEAD_LETTER_REASONS` and friends);
- `status`: the HTTP status code of a lookup (a handful of values);
- `group`, `topic`, `partition`: consumer groups × the catalog's partitions (tens to hundreds).

Use: `from monitoring import metrics` then `metrics.EVENTS_PUBLISHED.labels(agency="dopa",
dataset="person").inc()`; `metrics.FRESHNESS.labels(agency="dopa", dataset="person").observe(s)`.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.metrics import MetricWrapperBase

# The `_created` series prometheus_client adds to every counter and histogram double the series
# count and are used by no rule or panel; the exchange's processes do not expose them.
disable_created_metrics()  # type: ignore[no-untyped-call]  # unannotated in prometheus_client

DEAD_LETTER_REASONS = (
    "undecodable",  # bytes without the wire format's header, or a body its schema does not read
    "schema_unknown",  # a schema id the registry does not hold
    "invalid",  # decoded but fails validation (bad check digit, B.E. year in a C.E. field, …)
    "unlinkable",  # references that never resolved within the pending-link deadline
    "apply_failed",  # the index rejected the write after retries
)
"""The fixed vocabulary of `gdx_events_dead_lettered_total{reason}`."""

LOOKUP_ERROR_REASONS = (
    "invalid_request",  # malformed id, unknown dataset
    "unauthorised",  # the consumer is not authenticated
    "subject_not_proven",  # an access log asked for without the data subject's valid token
    "no_consent",  # consent missing, expired or revoked (also counted in consent denials)
    "purpose_not_allowed",  # the purpose is outside the consumer's mandate
    "not_found",  # no such entity in the index
    "rate_limited",  # over the consumer's request rate
    "unavailable",  # the index or a dependency is down
    "internal",  # a bug
)
"""The fixed vocabulary of `gdx_lookup_errors_total{reason}`."""

INDEX_RETRY_REASONS = (
    "contention",  # lost to a concurrent worker's transaction (serialization failure, deadlock, lock)
    "unavailable",  # the index is out of reach (connection lost, out of resources, shutting down)
)
"""The fixed vocabulary of `gdx_index_write_retries_total{reason}` (linkage.database.TRANSIENT_REASONS)."""

CONSENT_DENIAL_REASONS = ("missing", "expired", "revoked", "purpose_mismatch", "data_not_covered")
"""The fixed vocabulary of `gdx_consent_denials_total{reason}`."""

FRESHNESS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
"""Sub-second (a healthy pipeline) through an hour (a stalled one); 30 s is the freshness SLO bound
used by the rules, so it must stay a bucket boundary."""

FRESHNESS_SLO_SECONDS = 30.0
"""The freshness objective: a change is visible in the index within this many seconds of its source
commit. `monitoring/rules/recording.yml` reads the bucket with this bound."""

LOOKUP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""A lookup is an index read plus consent and policy checks: milliseconds when healthy."""

# --- ingest: agency publishers and stream workers -------------------------------------------

EVENTS_PUBLISHED = Counter(
    "gdx_events_published_total",
    "Change events an agency publisher wrote to Kafka (acknowledged by the broker).",
    ["agency", "dataset"],
)
EVENTS_CONSUMED = Counter(
    "gdx_events_consumed_total",
    "Change events a stream worker read from an agency topic, before any check.",
    ["agency", "dataset"],
)
EVENTS_APPLIED = Counter(
    "gdx_events_applied_total",
    "Change events written to the linkage index (the change is now visible to lookups).",
    ["agency", "dataset"],
)
EVENTS_DEAD_LETTERED = Counter(
    "gdx_events_dead_lettered_total",
    "Change events sent to the dead-letter topic, by reason (see DEAD_LETTER_REASONS).",
    ["agency", "dataset", "reason"],
)
EVENTS_DUPLICATE = Counter(
    "gdx_events_duplicate_total",
    "Re-delivered events dropped because the index holds the version they applied (at-least-once at work).",
    ["agency", "dataset"],
)
EVENTS_STALE = Counter(
    "gdx_events_stale_total",
    "Events dropped by the version guard: the index already holds a newer version of the entity "
    "(late or reordered events, and re-deliveries of versions replaced since).",
    ["agency", "dataset"],
)
INDEX_WRITE_RETRIES = Counter(
    "gdx_index_write_retries",
    "Batch writes the index refused for a transient reason and a stream worker retried, by reason (see "
    "INDEX_RETRY_REASONS); a worker keeps retrying, so a rising unavailable count is an index outage.",
    ["reason"],
)
OUTBOX_BACKLOG = Gauge(
    "gdx_outbox_backlog",
    "Rows in an agency's outbox not yet acknowledged by Kafka.",
    ["agency"],
)

# --- linking and freshness -------------------------------------------------------------------

PENDING_LINKS = Gauge(
    "gdx_pending_links",
    "Applied records waiting for a referenced identifier (e.g. a vehicle whose owner is not yet known).",
    ["agency", "dataset"],
)
PENDING_LINK_OLDEST_AGE = Gauge(
    "gdx_pending_link_oldest_age_seconds",
    "Age of the oldest pending link; 0 when none wait.",
    ["agency", "dataset"],
)
FRESHNESS = Histogram(
    "gdx_freshness_seconds",
    "Source commit time to visible in the index (applied time - source time) per applied event.",
    ["agency", "dataset"],
    buckets=FRESHNESS_BUCKETS,
)

# --- consumer lag ------------------------------------------------------------------------------

CONSUMER_LAG_OFFSETS = Gauge(
    "gdx_consumer_lag_offsets",
    "Messages between a consumer group's committed offset and the partition's end.",
    ["group", "topic", "partition"],
)
CONSUMER_LAG_SECONDS = Gauge(
    "gdx_consumer_lag_seconds",
    "Age of the oldest message a consumer group has not yet committed on a partition; 0 when caught up.",
    ["group", "topic", "partition"],
)

# --- lookups, consent and audit ------------------------------------------------------------------

LOOKUPS = Counter(
    "gdx_lookups_total",
    "Lookups answered, by consumer agency, dataset, declared purpose and HTTP status (errors included).",
    ["consumer", "dataset", "purpose", "status"],
)
LOOKUP_ERRORS = Counter(
    "gdx_lookup_errors_total",
    "Lookups that failed, by HTTP status and reason (see LOOKUP_ERROR_REASONS); a subset of gdx_lookups_total.",
    ["consumer", "status", "reason"],
)
LOOKUP_DURATION = Histogram(
    "gdx_lookup_duration_seconds",
    "Time to answer a lookup, consent and policy checks included.",
    ["consumer", "dataset"],
    buckets=LOOKUP_BUCKETS,
)
CONSENT_DENIALS = Counter(
    "gdx_consent_denials_total",
    "Lookups refused for want of a valid consent, by reason (see CONSENT_DENIAL_REASONS).",
    ["consumer", "purpose", "reason"],
)
AUDIT_LAST_CHECKPOINT = Gauge(
    "gdx_audit_last_checkpoint_timestamp_seconds",
    "Unix time of the last audit-chain checkpoint (hash-chain head sealed and written); age = time() - this.",
    ["chain"],
    multiprocess_mode="max",
)
"""Labelled by the chain's name (`<topic>/<partition>`, one per lookup process) so that only the
process that seals a chain exposes the series: an unlabelled gauge would read 0 — "sealed in 1970" —
in every process. Several lookup processes behind one port share their metrics through files
(prometheus_client's multiprocess mode), where "max" keeps each chain's latest seal."""

ALERT_NOTIFICATIONS = Counter(
    "gdx_alert_notifications_total",
    "Alert notifications Alertmanager delivered to the project's receiver, by alert and status (firing, resolved).",
    ["alertname", "severity", "status"],
)
ALERTS_FIRING = Gauge(
    "gdx_alerts_firing",
    "Alerts the receiver holds as firing now, by alert.",
    ["alertname", "severity"],
)
"""`alertname` and `severity` come from the project's own rules (`monitoring/rules/alerts.yml`): a
fixed vocabulary, and only Alertmanager, holding the receiver's token, can add to it."""

ALL_METRICS: tuple[MetricWrapperBase, ...] = (
    EVENTS_PUBLISHED,
    EVENTS_CONSUMED,
    EVENTS_APPLIED,
    EVENTS_DEAD_LETTERED,
    EVENTS_DUPLICATE,
    EVENTS_STALE,
    INDEX_WRITE_RETRIES,
    OUTBOX_BACKLOG,
    PENDING_LINKS,
    PENDING_LINK_OLDEST_AGE,
    FRESHNESS,
    CONSUMER_LAG_OFFSETS,
    CONSUMER_LAG_SECONDS,
    LOOKUPS,
    LOOKUP_ERRORS,
    LOOKUP_DURATION,
    CONSENT_DENIALS,
    AUDIT_LAST_CHECKPOINT,
    ALERT_NOTIFICATIONS,
    ALERTS_FIRING,
)

_SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}


def series_names() -> frozenset[str]:
    """Every series name the exchange's metrics expose (`..._total`, `..._bucket`, …), for checks of
    rules and dashboards against what exists."""
    names: set[str] = set()
    for metric in ALL_METRICS:
        for family in metric.describe():
            names.update(family.name + suffix for suffix in _SUFFIXES[family.type])
    return frozenset(names)
