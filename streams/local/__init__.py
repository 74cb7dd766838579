"""Launchers of the local infrastructure the stack runs on: the Kafka broker and its jars,
Prometheus, Alertmanager, and the process bookkeeping they share."""
