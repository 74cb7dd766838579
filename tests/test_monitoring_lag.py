"""Consumer lag in messages and seconds, measured against the real broker, and the lag monitor process."""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import NewTopic, RecordsToDelete

from monitoring import metrics
from monitoring.consumer_lag import LagGauges, LagProbe
from monitoring.scrape_targets import targets_dir
from streams.settings import Settings
from tests.support.cli_run import run_gdx

pytestmark = pytest.mark.kafka

AGE_OF_FIFTH_S = 96.0


async def _lagging_group(settings: Settings, group: str) -> str:
    """A 2-partition topic: partition 0 holds 10 records 100 s..91 s old, the group committed 4 of
    them (so the oldest unconsumed is 96 s old); partition 1 holds 3, all committed."""
    topic = settings.topic("gdx.itest.lag.v1")
    admin = settings.kafka.admin()
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 2, 1)])
    finally:
        await admin.close()
    producer = settings.kafka.producer(acks="all")
    await producer.start()
    now_ms = int(time.time() * 1000)
    try:
        for i in range(10):
            await producer.send_and_wait(topic, b"v", key=b"k", partition=0, timestamp_ms=now_ms - (100 - i) * 1000)
        for _ in range(3):
            await producer.send_and_wait(topic, b"v", key=b"k", partition=1)
    finally:
        await producer.stop()
    consumer = settings.kafka.consumer(group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
        await consumer.commit({TopicPartition(topic, 0): 4, TopicPartition(topic, 1): 3})
    finally:
        await consumer.stop()
    return topic


async def test_lag_in_messages_and_seconds_per_partition(settings: Settings) -> None:
    topic = await _lagging_group(settings, "itest-lag")
    async with LagProbe(settings.kafka, settings.topic("gdx."), 10.0) as probe:
        lags = [lag for lag in await probe.measure() if lag.group == "itest-lag"]
        again = [lag for lag in await probe.measure() if lag.group == "itest-lag"]
    assert [(lag.topic, lag.partition, lag.committed, lag.end, lag.lag) for lag in lags] == [
        (topic, 0, 4, 10, 6),
        (topic, 1, 3, 3, 0),
    ]
    assert AGE_OF_FIFTH_S <= lags[0].lag_seconds < AGE_OF_FIFTH_S + 30
    assert lags[1].lag_seconds == 0.0
    assert [lag.lag for lag in again] == [6, 0], "measuring twice with one probe gives the same answer"

    gauges = LagGauges()
    gauges.publish(lags)
    assert metrics.CONSUMER_LAG_OFFSETS.labels("itest-lag", topic, "0")._value.get() == 6
    gauges.publish([])
    assert ("itest-lag", topic, "0") not in {tuple(k) for k in metrics.CONSUMER_LAG_OFFSETS._metrics}


async def test_lag_in_seconds_is_unknown_not_zero_when_no_timestamp_can_be_read(settings: Settings) -> None:
    topic = await _lagging_group(settings, "itest-lag-unknown")
    admin = settings.kafka.admin()
    await admin.start()
    try:  # retention took the records the group never consumed: 6 behind, and no timestamp to read
        await admin.delete_records({TopicPartition(topic, 0): RecordsToDelete(10)})
    finally:
        await admin.close()
    async with LagProbe(settings.kafka, settings.topic("gdx."), 1.0) as probe:
        lags = [lag for lag in await probe.measure() if lag.group == "itest-lag-unknown"]
    assert [(lag.partition, lag.lag, lag.lag_seconds) for lag in lags] == [(0, 6, None), (1, 0, 0.0)]
    LagGauges().publish(lags)
    assert math.isnan(metrics.CONSUMER_LAG_SECONDS.labels("itest-lag-unknown", topic, "0")._value.get())


async def test_gdx_lag_prints_the_table(settings: Settings) -> None:
    topic = await _lagging_group(settings, "itest-table")
    env = {"KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers, "GDX_TOPIC_PREFIX": settings.topic_prefix}
    done = run_gdx("lag", env=env)
    assert done.code == 0, done.err
    row = next(line.split() for line in done.out.splitlines() if line.startswith("itest-table") and " 0 " in line)
    assert row[:6] == ["itest-table", topic, "0", "4", "10", "6"]


def test_gdx_lag_against_a_dead_cluster_is_one_line() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    done = run_gdx("lag", env={"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}", "GDX_KAFKA_REQUEST_TIMEOUT_S": "2"})
    assert done.code == 1
    assert done.err.count("\n") == 1 and "does not answer" in done.err, done.err


def test_the_lag_monitor_serves_metrics_and_stops_cleanly(settings: Settings, tmp_path: Path) -> None:
    topic = asyncio.run(_lagging_group(settings, "itest-serve"))
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "GDX_TOPIC_PREFIX": settings.topic_prefix,
        "GDX_STATE_DIR": str(tmp_path),
        "GDX_LAG_INTERVAL_S": "0.5",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "lag", "--serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("lag monitor: http://127.0.0.1:"), first
        url = first.split()[2].removesuffix("/metrics,")
        announced = json.loads(next(targets_dir(tmp_path).glob("lag-monitor-*.json")).read_text())
        assert announced[0]["targets"] == [url.removeprefix("http://")]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                ready = urllib.request.urlopen(f"{url}/readyz", timeout=5).status == 200
            except OSError:
                ready = False
            if ready:
                break
            time.sleep(0.2)
        assert ready, "the lag monitor never became ready"
        body = urllib.request.urlopen(f"{url}/metrics", timeout=5).read().decode()
        assert f'gdx_consumer_lag_offsets{{group="itest-serve",partition="0",topic="{topic}"}} 6.0' in body
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "lag monitor: stopped" in out
    assert not list(targets_dir(tmp_path).glob("*.json")), "the target is withdrawn on a clean stop"


def test_the_lag_monitor_on_a_busy_port_says_so_and_exits_non_zero() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = run_gdx("lag", "--serve", "--port", str(port), env={"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    assert done.code == 1
    assert done.err.count("\n") == 1 and "Traceback" not in done.err
    assert f"lag-monitor: port {port} on 127.0.0.1 is already in use" in done.err and "GDX_LAG_MONITOR_PORT" in done.err
