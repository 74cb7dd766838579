"""The backbone under faults, against the real broker: every scenario ends with zero mismatches.

Agencies, workers and checks run as separate `gdx` processes, as in production; the index is
SQLite or a real PostgreSQL server, and one worker or two share the partitions in one group (two
SQLite writers take turns through the index's writer lock).
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.local import kafka_launcher as launcher
from streams.settings import Settings
from tests.support.kafka_env import running_cluster
from tests.support.stream_harness import (
    Backbone,
    Process,
    dead_letters,
    injected,
    notices_on_record,
    notifications,
    owner_deaths,
    wait_caught_up,
    wait_in_flight,
    worker,
    workers,
)

pytestmark = pytest.mark.kafka

SETUPS = [("sqlite", 1), ("postgresql", 1), ("sqlite", 2), ("postgresql", 2)]
EVERY_SETUP = os.environ.get("GDX_FAULT_MATRIX") == "full"
"""The suite runs each fault with one worker and with two, and on each index database, in two
runs that between them take every value (pairs chosen so that every setup meets some faults);
GDX_FAULT_MATRIX=full runs every fault in all four setups (about 8 minutes more)."""


def setups(*chosen: tuple[str, int]) -> pytest.MarkDecorator:
    ran = SETUPS if EVERY_SETUP else list(chosen)
    return pytest.mark.parametrize(
        ("index_url", "processes"), ran, indirect=["index_url"], ids=[f"{db}-{n}" for db, n in ran]
    )


SQLITE_ALONE_POSTGRESQL_SHARED = setups(("sqlite", 1), ("postgresql", 2))
POSTGRESQL_ALONE_SQLITE_SHARED = setups(("postgresql", 1), ("sqlite", 2))


@pytest.fixture
def backbone(bootstrap_servers: str, tmp_path: Path, index_url: str) -> Backbone:
    deployment = Backbone(bootstrap_servers, f"f{uuid.uuid4().hex[:8]}.", tmp_path / "state", index_url)
    applied = deployment.gdx("topics", "apply")
    assert applied.code == 0, applied.err
    return deployment


def _assert_reconciled(backbone: Backbone) -> None:
    result = backbone.reconcile()
    assert result.code == 0, result.out + result.err
    assert "no mismatches" in result.out


def _assert_owner_deaths_notified(backbone: Backbone, exactly_once: bool) -> None:
    """Every death of a person a vehicle or title deed named at death reaches revenue, whatever
    order the worker met the deaths and the estates' versions in. Without a crash between sending
    and forgetting a notice, once; a killed worker may send one again (at least once), so then
    notices are counted by event id. A notice may also name a vehicle sold before the death, when
    the worker met the death first, so notices are not held to the owners' deaths only."""
    expected = owner_deaths(backbone)
    assert expected, "the run registered no death of an owner: the check would prove nothing"
    notices = notifications(backbone, "revenue")
    for notice in notices:
        assert notice["dataset"] == "dopa.death" and notice["party"]["kind"] == "citizen"
        assert notice["linked"] and {link["dataset"] for link in notice["linked"]} <= {"dlt.vehicle", "dol.title-deed"}
    assert all(
        notice["party"]["id"] == expected[notice["event_id"]] for notice in notices if notice["event_id"] in expected
    )
    sent = Counter(notice["event_id"] for notice in notices)
    missing = sorted(set(expected) - set(sent))
    assert not missing, f"{len(missing)} of {len(expected)} deaths of owners never notified: {missing[:5]}"
    if exactly_once:
        assert [event_id for event_id, count in sent.items() if count > 1] == []
    _assert_notices_on_record(backbone, Counter(n["notice_id"] for n in notices), exactly_once)


def _assert_notices_on_record(backbone: Backbone, revenue: Counter[str], exactly_once: bool) -> None:
    """Every notice sent, to any consumer, has its audit record and its entry in the person's access
    log (counted against the notify topics); a notice sent again after a crash may be on record
    again, under the same id."""
    told = revenue + Counter(n["notice_id"] for n in notifications(backbone, "social-security"))
    audited, logged = notices_on_record(backbone)
    assert set(told) == set(audited) == set(logged), (len(told), len(audited), len(logged))
    if exactly_once:
        assert told == audited == logged and max(told.values()) == 1


@SQLITE_ALONE_POSTGRESQL_SHARED
def test_every_injected_fault_is_absorbed_or_dead_lettered(backbone: Backbone, processes: int) -> None:
    report = backbone.simulate("--scale", "1000", "--seed", "11", "--count", "400", "--rate", "1000", faults=0.05)
    assert all(injected(report, kind) > 0 for kind in ("duplicate", "out_of_order", "malformed", "invalid_id"))
    with workers(backbone, processes) as group:
        wait_caught_up(backbone, 240, *group)
    _assert_reconciled(backbone)
    assert dead_letters(backbone) == injected(report, "malformed") + injected(report, "invalid_id")
    _assert_owner_deaths_notified(backbone, exactly_once=True)

    rebuilt = backbone.gdx("index", "rebuild", "--into", f"sqlite:///{backbone.state_dir / 'rebuilt.db'}")
    assert rebuilt.code == 0, rebuilt.out + rebuilt.err
    assert "identical" in rebuilt.out


def _publishing(backbone: Backbone, seed: str, count: int = 1500, rate: int = 150) -> Process:
    """Agencies loading and then living at `rate` events/s in the background. A fault that waits for
    a worker to get work in flight first gives them more life: a 3-broker mTLS cluster's first
    commit once came after 1,500 events at 150/s were over."""
    return Process(
        backbone,
        *backbone.simulate_args(
            "--scale", "1000", "--seed", seed, "--count", str(count), "--rate", str(rate), faults=0.02
        ),
        name=f"simulate-{seed}",
    )


def _still_publishing(publisher: Process) -> None:
    """With wait_in_flight before the fault: the fault met work committed, work uncommitted, and
    work not yet published."""
    assert publisher.popen.poll() is None, "the publisher finished before the fault: nothing was left in flight"


def _finish(publisher: Process, timeout_s: float = 300) -> None:
    assert publisher.wait(timeout_s) == 0, publisher.tail()


@POSTGRESQL_ALONE_SQLITE_SHARED
def test_a_worker_killed_mid_stream_resumes_without_loss(backbone: Backbone, processes: int) -> None:
    """The first worker is killed and started again on its audit chain; with two, the other one
    goes on meanwhile."""
    publisher = _publishing(backbone, "21")
    with workers(backbone, processes) as group:
        wait_in_flight(backbone, 120, *group)
        group[0].kill(signal.SIGKILL)
        _still_publishing(publisher)
        with worker(backbone, "worker-1-again", audit_partition=None if processes == 1 else 1) as again:
            _finish(publisher)
            wait_caught_up(backbone, 240, again, *group[1:])
    _assert_reconciled(backbone)
    _assert_owner_deaths_notified(backbone, exactly_once=False)


@pytest.mark.parametrize("index_url", ["sqlite", "postgresql"], indirect=True)
def test_two_workers_share_the_partitions_through_rebalances(backbone: Backbone) -> None:
    """A worker joins (a rebalance), one crashes (another, after its session times out), one
    leaves gracefully (a third), each while work is in flight."""
    # Three faults, a session timeout and three worker starts: the agencies must still be publishing
    # at the last one, on a loaded machine too (2,500 events were over before it in one CI run).
    publisher = _publishing(backbone, "22", count=7500)
    with worker(backbone, "worker-a") as first:
        wait_in_flight(backbone, 120, first)
        with worker(backbone, "worker-b", audit_partition=2) as second:
            before = wait_in_flight(backbone, 120, first, second)
            first.kill(signal.SIGKILL)
            _still_publishing(publisher)
            with worker(backbone, "worker-c") as third:
                wait_in_flight(backbone, 180, second, third, beyond=before[0])
                second.kill(signal.SIGTERM)
                _finish(publisher)
                wait_caught_up(backbone, 300, third)
    _assert_reconciled(backbone)
    _assert_owner_deaths_notified(backbone, exactly_once=False)


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory: pytest.TempPathFactory, session_cluster: Settings | None) -> Iterator[Settings]:
    """A broker of this module's own, so restarting it disturbs no other test (sharing the
    session broker's CA, started first, so the session's operator reaches it)."""
    with running_cluster(tmp_path_factory.mktemp("kafka-restart"), brokers=1) as settings:
        yield settings


def _deployment(cluster: Settings, tmp_path: Path, index_url: str) -> Backbone:
    deployment = Backbone(cluster.bootstrap_servers, f"r{uuid.uuid4().hex[:8]}.", tmp_path / "state", index_url)
    applied = deployment.gdx("topics", "apply")
    assert applied.code == 0, applied.err
    return deployment


@SQLITE_ALONE_POSTGRESQL_SHARED
def test_a_broker_restarted_mid_stream_loses_nothing(
    own_broker: Settings, tmp_path: Path, index_url: str, processes: int
) -> None:
    backbone = _deployment(own_broker, tmp_path, index_url)
    publisher = _publishing(backbone, "23", count=4500)
    with workers(backbone, processes) as group:
        wait_in_flight(backbone, 120, *group)
        launcher.down(own_broker)
        _still_publishing(publisher)
        time.sleep(5)
        launcher.up(own_broker, 1, report=False)
        _finish(publisher)
        wait_caught_up(backbone, 300, *group)
    _assert_reconciled(backbone)


@POSTGRESQL_ALONE_SQLITE_SHARED
def test_one_broker_of_three_killed_mid_stream_loses_nothing(
    three_broker_cluster: Settings, tmp_path: Path, index_url: str, processes: int
) -> None:
    backbone = _deployment(three_broker_cluster, tmp_path, index_url)
    victim = launcher.nodes(three_broker_cluster, 3)[2]
    publisher = _publishing(backbone, "24", count=4500)
    try:
        with workers(backbone, processes) as group:
            wait_in_flight(backbone, 120, *group)
            state = launcher.node_state(victim)
            assert state.running and state.pid is not None
            os.kill(state.pid, signal.SIGKILL)
            _still_publishing(publisher)
            _finish(publisher)
            wait_caught_up(backbone, 300, *group)
        _assert_reconciled(backbone)
    finally:
        launcher.up(three_broker_cluster, 3, report=False)
