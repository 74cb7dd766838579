"""Metric definitions and the Prometheus side of the exchange's health."""

from pathlib import Path

RULES_DIR = Path(__file__).resolve().parent / "rules"
"""The alerting and recording rules with their promtool tests; the local Prometheus loads them."""
