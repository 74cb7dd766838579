"""The receiver of Alertmanager's notifications: what fired, when, and whether it resolved.

Why the project keeps its own: an alert that goes nowhere is an alert nobody reads. Alertmanager
groups, waits and repeats; this book is the other end of its webhook (`POST /alerts`), keeps every
alert's latest state with its history of notifications, serves them as JSON (`GET /alerts`) to the
status page and to `gdx alerts`, and counts them in `gdx_alert_notifications_total`. It survives a
restart through a JSON file written atomically after each notification.

Only Alertmanager may post: it holds the bearer token (a 0600 file under the state directory) and
sends it as `Authorization: Bearer …`; a post without it is refused, so no local process can fake
or clear an alert. Reading is open: alerts are aggregates, never personal data.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from foundation.http_get import http_get
from foundation.secret_files import create_secret
from monitoring import metrics
from monitoring.health_server import Answer, Route

HISTORY = 20
"""Notifications kept per alert: enough to read "since when" and the flapping of one alert."""
KEPT_RESOLVED_S = 7 * 24 * 3600
"""A resolved alert is forgotten a week after it resolved."""
JSON = "application/json"


class BadNotification(ValueError):
    """A webhook body that is not Alertmanager's notification (version 4)."""


@dataclass
class AlertState:
    """One alert (one label set) as the receiver last heard of it."""

    fingerprint: str
    labels: dict[str, str]
    annotations: dict[str, str]
    status: str
    starts_at: str
    ends_at: str
    received_ms: int
    notifications: list[dict[str, Any]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "?")

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "none")


def _text_map(value: object, what: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise BadNotification(f"{what} must be an object of strings")
    return dict(value)


def parse_notification(body: bytes) -> list[dict[str, Any]]:
    """The alerts of one webhook body, checked field by field so a bad one is refused whole."""
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise BadNotification(f"the body is not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("version") != "4" or not isinstance(document.get("alerts"), list):
        raise BadNotification("not an Alertmanager webhook notification (version 4 with an alerts list)")
    alerts = []
    for alert in document["alerts"]:
        if not isinstance(alert, dict) or alert.get("status") not in ("firing", "resolved"):
            raise BadNotification("every alert needs a status of firing or resolved")
        fingerprint = alert.get("fingerprint")
        if not isinstance(fingerprint, str) or not fingerprint:
            raise BadNotification("every alert needs its fingerprint")
        alerts.append(
            {
                "fingerprint": fingerprint,
                "status": alert["status"],
                "labels": _text_map(alert.get("labels"), "labels"),
                "annotations": _text_map(alert.get("annotations", {}), "annotations"),
                "starts_at": str(alert.get("startsAt", "")),
                "ends_at": str(alert.get("endsAt", "")),
            }
        )
    return alerts


class AlertBook:
    """Every alert's latest state, kept in memory and in `path`; safe for the server's threads."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        self._lock = threading.Lock()
        self._alerts: dict[str, AlertState] = {}
        if path.is_file():
            for raw in json.loads(path.read_text(encoding="utf-8")):
                state = AlertState(**raw)
                self._alerts[state.fingerprint] = state
        self._publish_gauge()

    def receive(self, body: bytes) -> int:
        """Apply one notification; returns how many alerts it carried."""
        alerts = parse_notification(body)
        now_ms = int(self.clock() * 1000)
        with self._lock:
            for alert in alerts:
                held = self._alerts.get(alert["fingerprint"])
                if held is None:
                    held = self._alerts[alert["fingerprint"]] = AlertState(received_ms=now_ms, **alert)
                else:
                    held.labels, held.annotations = alert["labels"], alert["annotations"]
                    held.status, held.starts_at, held.ends_at = alert["status"], alert["starts_at"], alert["ends_at"]
                    held.received_ms = now_ms
                held.notifications = [*held.notifications, {"status": alert["status"], "received_ms": now_ms}][
                    -HISTORY:
                ]
                metrics.ALERT_NOTIFICATIONS.labels(
                    alertname=held.name, severity=held.severity, status=alert["status"]
                ).inc()
            self._forget_old(now_ms)
            self._save()
        self._publish_gauge()
        return len(alerts)

    def alerts(self) -> list[AlertState]:
        """Firing first, then the most recently heard of."""
        with self._lock:
            held = list(self._alerts.values())
        return sorted(held, key=lambda a: (a.status != "firing", -a.received_ms))

    def _forget_old(self, now_ms: int) -> None:
        for fingerprint, state in list(self._alerts.items()):
            if state.status == "resolved" and now_ms - state.received_ms > KEPT_RESOLVED_S * 1000:
                del self._alerts[fingerprint]

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        staging = self.path.with_suffix(".partial")
        staging.write_text(json.dumps([asdict(a) for a in self._alerts.values()]), encoding="utf-8")
        staging.replace(self.path)

    def _publish_gauge(self) -> None:
        firing: dict[tuple[str, str], int] = {}
        for state in self.alerts():
            key = (state.name, state.severity)
            firing[key] = firing.get(key, 0) + (state.status == "firing")
        for (name, severity), count in firing.items():
            metrics.ALERTS_FIRING.labels(alertname=name, severity=severity).set(count)


def load_token(path: Path) -> str:
    """The webhook's bearer token, made on first use with mode 0600 from the start."""
    if not path.is_file():
        create_secret(path, secrets.token_urlsafe(32))
    return path.read_text().strip()


def _json(status: int, body: object) -> Answer:
    return status, json.dumps(body).encode(), JSON


def routes(book: AlertBook, token: str) -> Mapping[tuple[str, str], Route]:
    """The receiver's endpoints for a `HealthServer`: the webhook and the JSON view."""
    expected = f"Bearer {token}".encode()

    def post(body: bytes, headers: Mapping[str, str]) -> Answer:
        if not hmac.compare_digest(headers.get("authorization", "").encode(), expected):
            return _json(401, {"error": "the webhook needs Alertmanager's bearer token"})
        try:
            return _json(200, {"received": book.receive(body)})
        except BadNotification as exc:
            return _json(400, {"error": str(exc)})

    def get(_body: bytes, _headers: Mapping[str, str]) -> Answer:
        return _json(200, {"alerts": [asdict(a) for a in book.alerts()]})

    return {("POST", "/alerts"): post, ("GET", "/alerts"): get}


class ReceiverUnavailable(Exception):
    """The receiver gave no usable answer; the message says why, in a line."""


def fetch_alerts(base_url: str, timeout_s: float) -> list[dict[str, Any]]:
    """What a receiver holds (`GET /alerts`), for the status page and `gdx alerts`."""
    try:
        status, body = http_get(f"{base_url}/alerts", timeout=timeout_s)
    except OSError as exc:
        reason = getattr(exc, "reason", exc)
        raise ReceiverUnavailable(getattr(reason, "strerror", None) or str(reason) or type(exc).__name__) from None
    try:
        alerts = json.loads(body)["alerts"] if status == 200 else None
    except (ValueError, KeyError, TypeError):
        alerts = None
    if not isinstance(alerts, list):
        raise ReceiverUnavailable(f"answered HTTP {status} without an alert list")
    if not all(_well_formed(alert) for alert in alerts):
        raise ReceiverUnavailable("answered alerts of an unknown shape")
    return alerts


def _well_formed(alert: object) -> bool:
    """The fields a reader uses, with their types, as `AlertState` writes them."""
    return (
        isinstance(alert, dict)
        and isinstance(alert.get("status"), str)
        and isinstance(alert.get("received_ms"), int)
        and isinstance(alert.get("starts_at"), str)
        and all(
            isinstance(alert.get(k), dict) and all(isinstance(v, str) for v in alert[k].values())
            for k in ("labels", "annotations")
        )
    )
