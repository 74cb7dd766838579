"""The metric names a PromQL expression reads, for checking rules and dashboards against metrics.py.

Not a PromQL parser: it strips what cannot hold a metric name (strings, label matchers, ranges,
grouping clauses, Grafana variables) and keeps the identifiers that are not functions, keywords
or numbers. Good enough for the expressions this project writes, and tested on their shapes.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from monitoring import metrics

ROOT = Path(__file__).resolve().parents[2]
RULES_DIR = ROOT / "monitoring" / "rules"
DASHBOARD = ROOT / "monitoring" / "dashboards" / "gdx-exchange.json"

PROMETHEUS_OWN = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})
"""Series Prometheus itself writes for every target."""

_KEYWORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "inf",
        "nan",
        "atan2",
    }
)
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_VARIABLES = re.compile(r"\$\{?\w+\}?")
_IDENTIFIER = re.compile(r"(?<![\w.:])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")


def metric_names(expr: str) -> set[str]:
    text = _STRINGS.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _RANGES.sub("", text)
    text = _GROUPING.sub("", text)
    text = _VARIABLES.sub("", text)
    return {
        match.group(1)
        for match in _IDENTIFIER.finditer(text)
        if match.group(2) is None and match.group(1).lower() not in _KEYWORDS
    }


def rule_groups() -> list[dict]:
    groups: list[dict] = []
    for path in sorted(RULES_DIR.glob("*.yml")):
        groups.extend(yaml.safe_load(path.read_text())["groups"])
    return groups


def recording_rules() -> dict[str, str]:
    """Recorded name -> its expression."""
    return {rule["record"]: rule["expr"] for group in rule_groups() for rule in group["rules"] if "record" in rule}


def known_names() -> frozenset[str]:
    """Every name an expression may read: our series, our recorded series, Prometheus's own."""
    return metrics.series_names() | frozenset(recording_rules()) | PROMETHEUS_OWN


def base_metrics(names: set[str]) -> set[str]:
    """The metrics behind names, recorded names expanded to what their rules read."""
    rules = recording_rules()
    found: set[str] = set()
    pending = list(names)
    while pending:
        name = pending.pop()
        if name in found:
            continue
        found.add(name)
        if name in rules:
            pending.extend(metric_names(rules[name]))
    return found
