"""Alerts reach someone: with the project's rules (their windows shortened sixty-fold, so minutes
become seconds), a real Prometheus evaluates them, a real Alertmanager groups and delivers them,
and the receiver (`gdx alerts --serve`) holds them — firing while dead letters exceed 1% of what
is consumed and while an agency publishes nothing, resolved once the cause is gone. `gdx alerts`
and the receiver's own metric, scraped by the same Prometheus, say so too."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from foundation.ports import free_port_block
from monitoring import scrape_targets
from monitoring.alert_receiver import ReceiverUnavailable, fetch_alerts
from monitoring.status import PrometheusClient
from streams.local import alertmanager, prometheus
from streams.local.alertmanager import AlertmanagerSetup, Timing
from streams.local.prometheus import RULES_DIR, PrometheusSetup
from tests.support.cli_run import clean_env, run_gdx

TESTS = Path(__file__).resolve().parent
SCALE = 60
WINDOW = re.compile(r"(\[|for: )(\d+)([smh])")
UNIT_S = {"s": 1, "m": 60, "h": 3600}


def shortened_rules(into: Path) -> Path:
    """The project's rule files with every range and `for` divided by SCALE (5m -> 5s)."""
    into.mkdir()
    for source in RULES_DIR.glob("*.yml"):
        text = WINDOW.sub(lambda m: f"{m[1]}{max(1, int(m[2]) * UNIT_S[m[3]] // SCALE)}s", source.read_text())
        (into / source.name).write_text(text)
    return into


@contextmanager
def process(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        child = subprocess.Popen(argv, env=clean_env(env), stdout=out, stderr=subprocess.STDOUT)
    try:
        yield child
    finally:
        child.terminate()
        child.wait(timeout=30)


def wait_until(what: str, check: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    pytest.fail(f"not within {timeout_s:.0f} s: {what}")


def test_alerts_fire_reach_the_receiver_and_resolve(tmp_path: Path) -> None:
    for tool in ("prometheus", alertmanager.BINARY):
        assert shutil.which(tool), f"{tool} is not installed — make test installs it (deploy/ensure-tools.sh)"
    state = tmp_path / "state"
    receiver_port = free_port_block(1)
    env = {"GDX_STATE_DIR": str(state), "GDX_ALERT_RECEIVER_PORT": str(receiver_port)}
    receiver_url = f"http://127.0.0.1:{receiver_port}"
    control = tmp_path / "feeder.control"
    control.write_text("healthy")
    targets = scrape_targets.targets_dir(state)
    delivery = AlertmanagerSetup(
        state / "alertmanager",
        free_port_block(1),
        f"{receiver_url}/alerts",
        state / "alerts" / "receiver.token",
        30,
        Timing(group_wait_s=1, group_interval_s=1, repeat_interval_s=3600, page_repeat_interval_s=3600),
    )
    watch = PrometheusSetup(
        root=prometheus.prometheus_root(state),
        port=free_port_block(1),
        scrape_interval_s=1,
        start_timeout_s=30,
        alertmanager=delivery.address,
        rules_dir=shortened_rules(tmp_path / "rules"),
    )

    def held() -> dict[str, dict[str, Any]]:
        try:
            alerts = fetch_alerts(receiver_url, 2)
        except ReceiverUnavailable:
            return {}
        return {f"{a['labels']['alertname']}/{a['labels'].get('agency', '')}": a for a in alerts}

    def status_of(key: str) -> str | None:
        return (held().get(key) or {}).get("status")

    def receiver_answers() -> bool:
        try:
            return fetch_alerts(receiver_url, 2) == []
        except ReceiverUnavailable:
            return False

    def notifications_counted() -> set[str]:
        query = 'sum by (status) (gdx_alert_notifications_total{alertname="DeadLetterRateHigh"})'
        return {sample["metric"]["status"] for sample in PrometheusClient(watch.url, 5).query(query)}

    with process([sys.executable, "-m", "streams.cli", "alerts", "--serve"], env, tmp_path / "receiver.log"):
        wait_until("the receiver answers", receiver_answers, 30)
        try:
            alertmanager.up(delivery)
            prometheus.up(watch)
            with process(
                [sys.executable, str(TESTS / "support" / "alert_feeder.py"), str(targets), str(control)],
                env,
                tmp_path / "feeder.log",
            ):
                time.sleep(8)  # a healthy baseline: the windows fill with traffic, nothing fires
                assert held() == {}, held()
                control.write_text("dead-letters silent-dopa")
                wait_until(
                    "dead letters over 1% reach the receiver",
                    lambda: status_of("DeadLetterRateHigh/dlt") == "firing",
                    90,
                )
                wait_until(
                    "the silent agency reaches the receiver", lambda: status_of("AgencySilent/dopa") == "firing", 90
                )
                listed = run_gdx("alerts", env=env, timeout=60)
                assert listed.code == 0 and "DeadLetterRateHigh" in listed.out and "AgencySilent" in listed.out
                assert set(held()) == {"DeadLetterRateHigh/dlt", "AgencySilent/dopa"}, held()
                control.write_text("healthy")
                wait_until(
                    "the dead-letter alert resolves", lambda: status_of("DeadLetterRateHigh/dlt") == "resolved", 90
                )
                wait_until("the silence alert resolves", lambda: status_of("AgencySilent/dopa") == "resolved", 90)
                wait_until(
                    "Prometheus scrapes the receiver's count of both notifications",
                    lambda: notifications_counted() == {"firing", "resolved"},
                    30,
                )
        finally:
            prometheus.down(watch)
            alertmanager.down(delivery)
