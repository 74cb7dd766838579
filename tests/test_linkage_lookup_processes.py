"""`gdx serve --workers N`: N lookup processes behind one port — each its own audit chain, the
metrics of all of them in every scrape, a process that dies started again, and a clear line when
the audit topic has too few partitions."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from linkage.audit import AUDIT_TOPIC, verify_partition
from monitoring.scrape_targets import targets_dir
from schemas.examples import SOMCHAI
from streams.lookup_processes import EARLY_EXIT_S
from streams.settings import Settings
from tests.support.cli_run import run_gdx
from tests.support.lookup_support import (
    KEYS,
    audit_records,
    audit_rules,
    create_lookup_topics,
    lookup_deployment,
    lookup_settings,
    wait_until,
)
from tests.support.serve_support import ca_file, lookup_api

pytestmark = pytest.mark.kafka


def _env(settings: Settings, workers: int) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "GDX_TOPIC_PREFIX": settings.topic_prefix,
        "GDX_STATE_DIR": str(settings.state_dir),
        "GDX_INDEX_URL": settings.index_database_url,
        "GDX_LOOKUP_PORT": "0",
        "GDX_LOOKUP_WORKERS": str(workers),
        "GDX_LOG_LEVEL": "INFO",
    }


_TRUSTED: dict[str, ssl.SSLContext] = {}
"""Per API address, the TLS context trusting its project CA (the processes serve HTTPS)."""


@contextmanager
def _serving(settings: Settings, workers: int, logs: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`gdx serve` over HTTPS, its address trusted through the project CA of the test's state."""
    env = _env(settings, workers)
    with lookup_api(env, logs) as (url, server):
        assert url.startswith("https://")
        _TRUSTED[url] = ssl.create_default_context(cafile=str(ca_file(env)))
        yield url, server


def _lookup(url: str) -> int:
    """One lookup on a connection of its own, so the processes share the requests between them."""
    request = urllib.request.Request(
        f"{url}/v1/citizens/{SOMCHAI}?purpose=estate-tax", headers={"X-API-Key": KEYS["revenue"], "Connection": "close"}
    )
    with urllib.request.urlopen(request, timeout=10, context=_TRUSTED[url]) as answer:
        return answer.status


def _samples(url: str, family: str) -> list[Sample]:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10, context=_TRUSTED[url]) as answer:
        families = {f.name: f for f in text_string_to_metric_families(answer.read().decode())}
    return families[family].samples if family in families else []


def _lookups_counted(url: str) -> float:
    return sum(s.value for s in _samples(url, "gdx_lookups") if s.name == "gdx_lookups_total")


def _sealed(url: str) -> dict[str, float]:
    """Each audit chain's last checkpoint time, as the scrape reports it."""
    return {s.labels["chain"]: s.value for s in _samples(url, "gdx_audit_last_checkpoint_timestamp_seconds")}


def _audit_partition(log: Path, pid: int) -> int:
    """The audit partition of a lookup process, from the parent's structured log of its start."""
    for line in log.read_text().splitlines():
        entry = json.loads(line) if line.startswith("{") else {}
        if entry.get("msg") == "lookup process started" and entry.get("pid") == pid:
            return int(entry["audit_partition"])
    raise AssertionError(f"no start of lookup process {pid} in {log}")


def _lookup_processes(parent: int) -> list[int]:
    """The parent's children that serve (not multiprocessing's resource tracker)."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return [int(pid) for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]


def test_two_processes_share_the_port_each_with_its_own_audit_chain(settings: Settings, tmp_path: Path) -> None:
    settings = lookup_deployment(settings)
    with _serving(settings, 2, tmp_path) as (url, server):
        began = time.monotonic()
        chains = {f"{settings.topic(AUDIT_TOPIC)}/{n}" for n in (0, 1)}
        # Whichever process answers the scrape, it reports both chains: both processes have sealed theirs.
        wait_until(lambda: set(_sealed(url)) == chains, what="both processes started")
        assert [_lookup(url) for _ in range(30)] == [200] * 30
        assert _lookups_counted(url) == 30

        victim = _lookup_processes(server.pid)[0]
        victims_chain = f"{settings.topic(AUDIT_TOPIC)}/{_audit_partition(tmp_path / 'serve.err', victim)}"
        time.sleep(max(0.0, EARLY_EXIT_S - (time.monotonic() - began)))
        killed_at = time.time()
        os.kill(victim, signal.SIGKILL)
        wait_until(
            lambda: _sealed(url)[victims_chain] > killed_at,
            what="the killed process started again, continuing its chain",
        )
        assert victim not in _lookup_processes(server.pid) and len(_lookup_processes(server.pid)) == 2
        assert [_lookup(url) for _ in range(10)] == [200] * 10
        assert _lookups_counted(url) == 40, "the killed process's counts stay in the sum"
        targets = list(targets_dir(settings.state_dir).glob("lookup-api-*.json"))
        assert [json.loads(t.read_text())[0]["targets"] for t in targets] == [[url.removeprefix("https://")]]
    assert server.returncode == 0
    assert not list(targets_dir(settings.state_dir).glob("lookup-api-*.json")), "the scrape target is withdrawn"

    rules = audit_rules(settings)
    trail = audit_records(settings, settings.topic(AUDIT_TOPIC))
    reports = {partition: verify_partition(partition, messages, rules) for partition, messages in trail.items()}
    assert all(report.ok for report in reports.values()), [r.problems for r in reports.values()]
    assert reports[2].records == {2: 0}, "two processes write partitions 0 and 1 only"
    # A checkpoint at each of three starts, the killed process's successor continuing its chain.
    assert reports[0].checkpoints[0] >= 1 and reports[1].checkpoints[1] >= 1
    assert reports[0].checkpoints[0] + reports[1].checkpoints[1] >= 3
    served = sum(
        1
        for messages in trail.values()
        for _offset, value in messages
        if json.loads(value or b"{}").get("kind") == "access"
    )
    assert served == 40


def test_more_processes_than_audit_partitions_is_one_line(settings: Settings) -> None:
    settings = lookup_deployment(settings)
    result = run_gdx("serve", "--workers", "4", env=_env(settings, 1), timeout=60)
    assert result.code == 1 and "Traceback" not in result.err
    (line,) = result.err.strip().splitlines()
    assert line == (
        f"gdx: 4 lookup processes from audit partition 0 need 4 partitions of "
        f"{settings.topic(AUDIT_TOPIC)}; it has 3 — use fewer --workers, or add partitions to the topic "
        f"(kafka-topics.sh --alter --partitions)"
    )


def test_on_a_fresh_index_they_start_and_they_stop_when_their_parent_is_killed(
    settings: Settings, tmp_path: Path
) -> None:
    """No index and no audit key yet: the parent makes both once before the processes start (two
    migrations at once can fail, two key files can differ), and one key seals both chains."""
    settings = lookup_settings(settings)
    create_lookup_topics(settings)
    with _serving(settings, 2, tmp_path) as (url, server):
        wait_until(lambda: len(_sealed(url)) == 2, what="both processes started")
        children = _lookup_processes(server.pid)
        server.kill()
        server.wait()
        try:
            wait_until(lambda: not any(_running(pid) for pid in children), what="the orphaned lookup processes stopped")
        finally:
            for pid in filter(_running, children):
                os.kill(pid, signal.SIGKILL)
    rules = audit_rules(settings)
    assert len(rules.trust.keys) == 1, "the parent made the one audit key"
    trail = audit_records(settings, settings.topic(AUDIT_TOPIC))
    reports = [verify_partition(partition, messages, rules) for partition, messages in trail.items()]
    assert all(r.ok for r in reports) and sum(sum(r.checkpoints.values()) for r in reports) == 2, "one key seals both"


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting for whoever adopted it to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
