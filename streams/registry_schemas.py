"""The consumers' side of the schema registry: ids resolved once, the registry's absence survived.

The codec asks for a schema id it has not met (`schema_by_id`); the answer is cached by the codec,
so the registry is asked once per id for the life of a process. While the registry is away, ids
already met keep decoding; an id not met yet cannot be decoded, and its batch waits, retried with
backoff, rather than be dead-lettered for a fault that is not the event's. The process reports the
registry not ready meanwhile (its `/readyz`), from these failures and from a periodic probe.
"""

from __future__ import annotations

import logging
import threading

from foundation.errors import GdxError
from foundation.schema_registry import RegistryAccess, RegistryRefused, RegistryUnavailable, SchemaRegistry
from monitoring.health_server import Readiness

log = logging.getLogger("gdx.registry")
CONDITION = "schema-registry"
BACKOFF_MAX_S = 5.0


def require_registry(access: RegistryAccess) -> SchemaRegistry:
    """The registry, checked to answer before a command starts work it could not finish."""
    registry = SchemaRegistry(access)
    if not registry.ready():
        raise GdxError(
            f"schema registry {access.url} does not answer",
            "start it (gdx registry up) or set GDX_SCHEMA_REGISTRY_URL to one that runs",
        )
    return registry


class StoppedWaiting(RegistryUnavailable):
    """The process was asked to stop while a batch waited for the registry: the batch is not
    handled (nor committed), so it is delivered again after the restart."""


class RegistrySchemas:
    def __init__(self, registry: SchemaRegistry, readiness: Readiness) -> None:
        self.registry = registry
        self.readiness = readiness
        self.stopping = threading.Event()
        """Set when the process stops (the worker hands its app's stop signal here), so a wait
        for the registry ends with it."""

    def __call__(self, schema_id: int) -> str | None:
        delay = 0.2
        while True:
            try:
                text = self.registry.schema_by_id(schema_id)
            except (RegistryUnavailable, RegistryRefused) as exc:
                self._failed(exc)
                if self.stopping.wait(delay):
                    raise StoppedWaiting(str(exc)) from None
                delay = min(delay * 2, BACKOFF_MAX_S)
                continue
            self.readiness.set_ready(CONDITION)
            return text

    def probe(self) -> bool:
        """Ask the registry whether it answers, and say so in the readiness; True when it does."""
        try:
            answers = self.registry.ready()
        except GdxError as exc:  # refused, or credentials that cannot be read
            self.readiness.set_not_ready(CONDITION, str(exc))
            return False
        if answers:
            self.readiness.set_ready(CONDITION)
            return True
        self.readiness.set_not_ready(CONDITION, f"schema registry {self.registry.access.url} does not answer")
        return False

    def _failed(self, exc: GdxError) -> None:
        self.readiness.set_not_ready(CONDITION, str(exc))
        log.warning("schema registry unavailable; the batch waits for it", extra={"error": str(exc)})
