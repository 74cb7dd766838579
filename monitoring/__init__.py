"""Metric definitions and the Prometheus side of the exchange's health."""
