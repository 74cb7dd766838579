"""The metric catalogue follows Prometheus's naming conventions and keeps label cardinality bounded."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitoring import metrics

FORBIDDEN_LABELS = {"id", "key", "entity", "entity_key", "citizen_id", "event_id", "trace_id", "message", "error"}


def _families() -> list:
    return [family for metric in metrics.ALL_METRICS for family in metric.describe()]


def test_names_follow_prometheus_conventions() -> None:
    for family in _families():
        assert re.fullmatch(r"gdx_[a-z][a-z0-9_]*", family.name), family.name
        assert family.documentation, family.name
        if family.type == "counter":
            assert not family.name.endswith("_total"), "prometheus_client adds _total to counters itself"
        if "seconds" in family.name or family.type == "histogram":
            assert family.name.endswith(("_seconds", "_timestamp_seconds")), family.name
        assert not re.search(r"_(ms|millis|minutes|hours|percent)(_|$)", family.name), "use base units"


def test_labels_are_bounded() -> None:
    for metric in metrics.ALL_METRICS:
        labels = set(metric._labelnames)
        assert not labels & FORBIDDEN_LABELS, f"{metric._name}: unbounded label {labels & FORBIDDEN_LABELS}"
        assert len(labels) <= 4, metric._name


def test_every_metric_the_issue_asks_for_exists() -> None:
    wanted = {
        "gdx_events_published_total",
        "gdx_events_consumed_total",
        "gdx_events_applied_total",
        "gdx_events_dead_lettered_total",
        "gdx_events_duplicate_total",
        "gdx_events_stale_total",
        "gdx_pending_links",
        "gdx_pending_link_oldest_age_seconds",
        "gdx_freshness_seconds_bucket",
        "gdx_consumer_lag_offsets",
        "gdx_consumer_lag_seconds",
        "gdx_lookups_total",
        "gdx_lookup_errors_total",
        "gdx_lookup_duration_seconds_bucket",
        "gdx_consent_denials_total",
        "gdx_audit_last_checkpoint_timestamp_seconds",
        "gdx_outbox_backlog",
    }
    assert wanted <= metrics.series_names()


def test_the_freshness_slo_bound_is_a_bucket_boundary() -> None:
    assert metrics.FRESHNESS_SLO_SECONDS in metrics.FRESHNESS_BUCKETS
    assert metrics.FRESHNESS_BUCKETS[0] < 0.1 and metrics.FRESHNESS_BUCKETS[-1] >= 1800


def test_exposition_has_no_created_series_and_no_unused_label_sets() -> None:
    """A process exposes only what it used: an unused labelled metric adds no samples (an audit
    checkpoint of 0, "sealed in 1970", would page the operator from every process)."""
    text = generate_latest().decode()
    assert "_created" not in text
    assert not re.search(r"^gdx_audit_last_checkpoint_timestamp_seconds ", text, re.MULTILINE)


def test_the_slo_bucket_label_matches_what_the_rules_select() -> None:
    """The rules select the SLO bucket by its `le` label as exposed ("30.0"): observe and read back."""
    child = metrics.FRESHNESS.labels(agency="test", dataset="exposition")
    for seconds in (0.2, 0.4, 45.0):
        child.observe(seconds)
    samples = {
        s.labels.get("le"): s.value
        for family in text_string_to_metric_families(generate_latest().decode())
        for s in family.samples
        if s.name == "gdx_freshness_seconds_bucket" and s.labels.get("dataset") == "exposition"
    }
    slo_bucket = [le for le in samples if re.fullmatch(r"30(\.0)?", le)]
    assert len(slo_bucket) == 1 and samples[slo_bucket[0]] == 2
    assert samples["0.25"] == 1 and samples["+Inf"] == 3
    matcher = 'le=~"30(\\\\.0)?"'
    assert matcher in (Path(metrics.__file__).parent / "rules" / "recording.yml").read_text()
