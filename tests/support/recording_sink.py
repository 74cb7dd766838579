"""A sink that records what the worker would send, at the seam the Kafka producer fills in production."""

from __future__ import annotations

Headers = list[tuple[str, bytes | None]]


class RecordingSink:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes, Headers]] = []

    async def send(self, topic: str, key: bytes | None, value: bytes, headers: Headers) -> None:
        self.sent.append((topic, key, value, headers))
