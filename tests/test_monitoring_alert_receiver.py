"""The alert receiver: Alertmanager's webhook authenticated by its token, every notification kept
with its history across a restart, bad bodies refused with a reason, and the generated Alertmanager
configuration accepted by Alertmanager's own checker."""

from __future__ import annotations

import json
import shutil
import socket
import stat
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from monitoring import metrics
from monitoring.alert_receiver import AlertBook, fetch_alerts, load_token, routes
from monitoring.health_server import HealthServer
from streams.local.alertmanager import AlertmanagerSetup, Timing, render_config
from tests.support.cli_run import run_gdx


def notification(status: str, alertname: str = "DeadLetterRateHigh", fingerprint: str = "f1") -> bytes:
    alert = {
        "status": status,
        "labels": {"alertname": alertname, "severity": "ticket", "agency": "dlt"},
        "annotations": {"summary": "dlt/vehicle: 5% of events dead-lettered"},
        "startsAt": "2026-12-02T07:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "fingerprint": fingerprint,
    }
    return json.dumps({"version": "4", "status": status, "receiver": "gdx-receiver", "alerts": [alert]}).encode()


def post(url: str, body: bytes, token: str | None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, body, headers, method="POST"), timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_token_file_is_private_from_its_first_byte(tmp_path: Path) -> None:
    path = tmp_path / "alerts" / "receiver.token"
    token = load_token(path)
    assert len(token) >= 40 and load_token(path) == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_the_webhook_keeps_firing_and_resolved_alerts_and_refuses_strangers(tmp_path: Path) -> None:
    book = AlertBook(tmp_path / "alerts.json")
    token = load_token(tmp_path / "token")
    before = metrics.ALERT_NOTIFICATIONS.labels(
        alertname="DeadLetterRateHigh", severity="ticket", status="firing"
    )._value.get()
    with HealthServer("alert-receiver-test", "alerts", routes=routes(book, token)) as server:
        url = f"{server.url}/alerts"
        assert post(url, notification("firing"), None)[0] == 401
        assert post(url, notification("firing"), "forged")[0] == 401
        assert book.alerts() == []
        status, answer = post(url, b"{not json", token)
        assert status == 400 and "not JSON" in answer["error"]
        status, answer = post(url, json.dumps({"version": "4", "alerts": [{"status": "odd"}]}).encode(), token)
        assert status == 400 and "firing or resolved" in answer["error"]
        assert post(url, notification("firing"), token) == (200, {"received": 1})
        (held,) = fetch_alerts(server.url, 5)
        assert held["status"] == "firing" and held["labels"]["agency"] == "dlt"
        assert metrics.ALERTS_FIRING.labels(alertname="DeadLetterRateHigh", severity="ticket")._value.get() == 1
        assert post(url, notification("resolved"), token)[0] == 200
        (held,) = fetch_alerts(server.url, 5)
        assert held["status"] == "resolved" and [n["status"] for n in held["notifications"]] == ["firing", "resolved"]
        assert metrics.ALERTS_FIRING.labels(alertname="DeadLetterRateHigh", severity="ticket")._value.get() == 0
    after = metrics.ALERT_NOTIFICATIONS.labels(alertname="DeadLetterRateHigh", severity="ticket", status="firing")
    assert after._value.get() == before + 1
    reopened = AlertBook(tmp_path / "alerts.json")
    assert [a.status for a in reopened.alerts()] == ["resolved"]


def test_an_oversized_body_is_refused_before_it_is_read(tmp_path: Path) -> None:
    book = AlertBook(tmp_path / "alerts.json")
    with (
        HealthServer("alert-receiver-test", "alerts", routes=routes(book, "t")) as server,
        socket.create_connection((server.host, server.port), timeout=5) as raw,
    ):
        raw.sendall(
            f"POST /alerts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\nContent-Length: {2 << 20}\r\n\r\n".encode()
        )
        raw.shutdown(socket.SHUT_WR)
        answer = b"".join(iter(lambda: raw.recv(65536), b"")).decode()
    assert answer.startswith("HTTP/1.0 413") and "at most" in answer


def test_gdx_alerts_lists_what_the_receiver_holds_and_names_a_missing_receiver(tmp_path: Path) -> None:
    book = AlertBook(tmp_path / "alerts.json")
    book.receive(notification("firing", "AgencySilent", "f2"))
    with HealthServer("alert-receiver-test", "alerts", routes=routes(book, "t")) as server:
        url = server.url
        done = run_gdx("alerts", env={"GDX_ALERT_RECEIVER_URL": url}, timeout=60)
    assert done.code == 0, done.err
    assert "FIRING" in done.out and "AgencySilent" in done.out and "dlt" in done.out
    gone = run_gdx("alerts", env={"GDX_ALERT_RECEIVER_URL": url}, timeout=60)
    assert gone.code == 1 and gone.err.startswith("gdx: the alert receiver at") and gone.err.count("\n") == 1


def test_the_generated_alertmanager_configuration_passes_amtool(tmp_path: Path) -> None:
    if shutil.which("amtool") is None:
        pytest.fail("amtool is not installed — apt-get install prometheus-alertmanager (make test installs it)")
    token = tmp_path / "token"
    load_token(token)
    setup = AlertmanagerSetup(tmp_path, 19099, "http://127.0.0.1:19098/alerts", token, 5, Timing(group_wait_s=1))
    config = tmp_path / "alertmanager.yml"
    config.write_text(render_config(setup))
    checked = subprocess.run(["amtool", "check-config", str(config)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    routed = subprocess.run(
        [
            "amtool",
            "config",
            "routes",
            "test",
            "--config.file",
            str(config),
            "--verify.receivers",
            "gdx-receiver",
            "severity=page",
            "alertname=GdxProcessDown",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert routed.returncode == 0, routed.stdout + routed.stderr
