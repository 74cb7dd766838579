"""`gdx topics apply` on a three-broker cluster that has only just become ready (issue 21).

A topic the controller has just created reaches each broker's metadata a moment later, and the
admin client sends every read to a broker picked at random; these tests start a truly fresh cluster
so the apply meets that window, then stop brokers so that a real failure meets the bound.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable, Iterator

import pytest

from streams.local import kafka_launcher as launcher
from streams.settings import Settings
from streams.topic_admin import apply_topics
from streams.topic_catalog import load_catalog
from tests.support.cli_run import run_gdx
from tests.support.kafka_env import running_cluster

pytestmark = pytest.mark.cluster

PREFIXES = tuple(f"p{n}." for n in range(12))
"""The race showed in about one apply of three: the topics of each catalog are new to the cluster,
so twelve catalogs on a cluster that has only just become ready miss it with odds of (2/3)^12,
under 1%."""
BOUND_S = 5
SLACK_S = 5
"""Interpreter start, the reachability check and the steps before the one that fails."""


@pytest.fixture(scope="module")
def fresh_cluster(tmp_path_factory: pytest.TempPathFactory, session_cluster: Settings | None) -> Iterator[Settings]:
    """One truly fresh three-broker cluster for the module: the catalogs are applied the moment it
    is ready, then the last test takes its controller quorum away (a cluster's start is most of
    what these tests cost)."""
    with running_cluster(tmp_path_factory.mktemp("fresh"), brokers=3) as cluster:
        yield cluster
        _kill(launcher.node_state(node) for node in launcher.nodes(cluster, 3))


def test_a_fresh_three_broker_cluster_takes_every_catalog_at_once(fresh_cluster: Settings) -> None:
    catalog = load_catalog()
    for prefix in PREFIXES:
        # At once, as `gdx up` does once the cluster is ready.
        settings = Settings(kafka_bootstrap_servers=fresh_cluster.bootstrap_servers, topic_prefix=prefix)
        first = apply_topics(settings, catalog)
        assert all(change.action == "create" for change in first), f"{prefix!r}"
        # Straight after: whichever broker answers must already report every topic as made.
        again = apply_topics(settings, catalog)
        assert all(change.action == "unchanged" for change in again), [str(c) for c in again]


def test_a_cluster_without_its_controller_quorum_fails_in_one_line_within_the_bound(fresh_cluster: Settings) -> None:
    """Two of three brokers stopped: the one left answers metadata but can create nothing.

    One broker stopped is not a failure for `apply` (it creates with the replication the two
    left can hold), so the stop takes the controller quorum's majority with it.
    """
    survivor, *stopped = [launcher.node_state(node) for node in launcher.nodes(fresh_cluster, 3)]
    for state in reversed(stopped):
        assert state.pid is not None
        os.kill(state.pid, signal.SIGTERM)
        _wait_stopped(state.node)
    try:
        result = run_gdx(
            "topics",
            "apply",
            env={
                "KAFKA_BOOTSTRAP_SERVERS": fresh_cluster.bootstrap_servers,
                "GDX_TOPIC_PREFIX": "quorum.",
                "GDX_KAFKA_REQUEST_TIMEOUT_S": str(BOUND_S),
            },
        )
    finally:
        _kill([survivor])  # without a quorum it cannot shut down cleanly
    assert result.code != 0, result.out
    assert "Traceback" not in result.err, result.err
    message = result.err.strip()
    assert message.startswith("gdx: ") and "\n" not in message, message
    assert f"did not complete within {BOUND_S} s" in message and "`gdx kafka status`" in message, message
    assert result.seconds < BOUND_S + SLACK_S, f"{result.seconds:.1f} s: {message}"


def _kill(states: Iterable[launcher.NodeState]) -> None:
    """End a throwaway cluster at once: a clean shutdown takes seconds a test need not spend."""
    for state in states:
        if state.running and state.pid is not None:
            os.kill(state.pid, signal.SIGKILL)


def _wait_stopped(node: launcher.Node, timeout_s: float = 60.0) -> None:
    """Until the broker has exited (this process started it, so it lingers as a zombie: not running)."""
    deadline = time.monotonic() + timeout_s
    while launcher.node_state(node).running and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not launcher.node_state(node).running, f"Kafka node {node.node_id} did not stop within {timeout_s:g} s"
