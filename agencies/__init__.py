"""Simulated agency source systems that publish master-data change events."""
