"""The simulated agencies as a monitored process: published counts on ack, backlog, health endpoints."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from agencies.simulation import Plan, Simulation
from monitoring import metrics
from streams.publisher_metrics import PublisherMetrics
from streams.security.principals import OPERATOR
from streams.settings import Settings
from streams.topic_admin import apply_topics
from streams.topic_catalog import load_catalog
from tests.support.agencies_support import SCHEMAS, routes, stores
from tests.support.cli_run import clean_env, run_gdx

pytestmark = pytest.mark.kafka


def _published(agency: str) -> float:
    return sum(
        sample.value
        for family in metrics.EVENTS_PUBLISHED.collect()
        for sample in family.samples
        if sample.name.endswith("_total") and sample.labels["agency"] == agency
    )


async def test_published_counter_counts_every_acknowledged_record_per_dataset(
    settings: Settings, tmp_path: Path
) -> None:
    await asyncio.to_thread(apply_topics, settings, load_catalog())
    agencies = ("dol", "dlt")
    before = {agency: _published(agency) for agency in agencies}
    plan = Plan(
        tmp_path,
        scale=1_000,
        seed=5,
        agencies=agencies,
        rate=1e6,
        count=40,
        kafka=settings.kafka,
        registry=settings.registry_for(OPERATOR),
        topic_prefix=settings.topic_prefix,
    )
    with open(os.devnull, "w") as quiet:
        await Simulation(plan, routes(), SCHEMAS, out=quiet, observer=PublisherMetrics(routes(), agencies)).run()
    for agency, store in stores(tmp_path):
        rows = store.outbox_rows()
        if agency in agencies:
            assert _published(agency) - before[agency] == sum(copies for *_, copies in rows)
            assert REGISTRY.get_sample_value("gdx_outbox_backlog", {"agency": agency}) == 0
    assert (REGISTRY.get_sample_value("gdx_events_published_total", {"agency": "dlt", "dataset": "vehicle"}) or 0) > 0


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _target(targets: Path, pid: int) -> str | None:
    for path in targets.glob(f"agencies-{pid}.json"):
        return str(json.loads(path.read_text())[0]["targets"][0])
    return None


def test_simulate_serves_metrics_health_and_readiness_and_announces_itself(settings: Settings, tmp_path: Path) -> None:
    apply_topics(settings, load_catalog())  # the operator's step: on a secured cluster agencies create no topic
    env = {
        **clean_env(),
        "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "GDX_TOPIC_PREFIX": settings.topic_prefix,
        "GDX_STATE_DIR": str(settings.state_dir),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "simulate", "--scale", "1000", "--rate", "20", "--agency", "dopa"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    targets = settings.state_dir / "prometheus" / "targets"
    try:
        deadline = time.monotonic() + 90
        address = None
        while address is None and time.monotonic() < deadline and process.poll() is None:
            address = _target(targets, process.pid)
            time.sleep(0.1)
        assert address is not None, f"no scrape target announced (exit {process.poll()})"
        assert _get(f"http://{address}/healthz")[0] == 200
        ready = 503
        while ready != 200 and time.monotonic() < deadline:
            ready, body = _get(f"http://{address}/readyz")
            if ready == 503:
                assert json.loads(body)["failing"]["agencies"]
            time.sleep(0.2)
        assert ready == 200
        published = 0.0
        while published == 0.0 and time.monotonic() < deadline:
            text = _get(f"http://{address}/metrics")[1].decode()
            published = sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith('gdx_events_published_total{agency="dopa"')
            )
            time.sleep(0.2)
        assert published > 0
        assert 'gdx_outbox_backlog{agency="dopa"}' in text
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert _target(targets, process.pid) is None


def test_simulate_on_a_busy_metrics_port_says_so_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = run_gdx(
            "simulate",
            "--no-publish",
            "--count",
            "0",
            "--scale",
            "1000",
            env={"GDX_STATE_DIR": str(tmp_path), "GDX_AGENCIES_METRICS_PORT": str(port)},
        )
    assert done.code == 1
    assert done.err.strip().startswith(f"gdx: agencies: port {port} on 127.0.0.1 is already in use")
    assert "GDX_AGENCIES_METRICS_PORT" in done.err and "\n" not in done.err.strip()
