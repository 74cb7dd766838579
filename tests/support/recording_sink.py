"""A sink and an audit log that record what the worker would send and enter, at the seams the Kafka
producer and the worker's AuditWriter fill in production."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from linkage.audit import AuditUnavailable
from linkage.consent import ConsentStore
from linkage.consumers import load_consumers
from linkage.notices import NoticePolicy
from streams.worker_core import Notifier

Headers = list[tuple[str, bytes | None]]
NOTIFY_TOPICS = {"revenue": "gdx.notify.revenue", "social-security": "gdx.notify.social-security"}


class RecordingSink:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes, Headers]] = []

    async def send(self, topic: str, key: bytes | None, value: bytes, headers: Headers) -> None:
        self.sent.append((topic, key, value, headers))


class RecordingAudit:
    """Entries in order, at offsets from 0; `failing` makes appends refused as a failing trail's are."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.failing: str | None = None

    async def append(self, entry: dict[str, Any]) -> tuple[int, int]:
        if self.failing:
            raise AuditUnavailable(self.failing)
        self.entries.append(entry)
        return 1, len(self.entries) - 1


def recording_notifier(engine: Engine, audit: RecordingAudit | None = None) -> Notifier:
    """The shipped registry's policy over `engine`'s consents, entering notices in `audit`."""
    return Notifier(NOTIFY_TOPICS, NoticePolicy(load_consumers(), ConsentStore(engine)), audit or RecordingAudit())
