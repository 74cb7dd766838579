"""The worker's side of the registry's absence: ids met before keep decoding, an id not met waits
(never a dead letter for the registry's fault), and the process says the registry is not ready.
The registry here is an address where nothing answers; the codec's cache is the production one."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from foundation.errors import GdxError
from foundation.schema_registry import RegistryAccess, SchemaRegistry
from monitoring.health_server import Readiness
from schemas.codec import Codec
from streams.registry_schemas import CONDITION, RegistrySchemas, StoppedWaiting, require_registry
from tests.support.schema_helpers import SCHEMA_NAMES, catalog, codec, example_record, schema_by_id, wire


def _nowhere() -> SchemaRegistry:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return SchemaRegistry(RegistryAccess(f"https://127.0.0.1:{port}/apis/ccompat/v7"), timeout_s=1.0)


class _Flaky(SchemaRegistry):
    """A registry that answers from the catalog while `up`, and is unreachable (for real: nothing
    listens at its address) while not."""

    def __init__(self) -> None:
        super().__init__(_nowhere().access, timeout_s=1.0)
        self.up = True

    def schema_by_id(self, schema_id: int) -> str | None:
        return schema_by_id(schema_id) if self.up else super().schema_by_id(schema_id)


def test_met_ids_decode_without_the_registry_and_a_new_one_waits_for_it() -> None:
    readiness, flaky = Readiness(), _Flaky()
    schemas = RegistrySchemas(flaky, readiness)
    decoder = Codec(catalog(), schemas)
    person, vehicle = (wire(codec().encode(n, example_record(n))) for n in (SCHEMA_NAMES[0], SCHEMA_NAMES[-1]))
    assert decoder.decode(person).schema_name == SCHEMA_NAMES[0]
    flaky.up = False
    assert decoder.decode(person).schema_name == SCHEMA_NAMES[0], "a met id needs no registry"
    waiting = threading.Thread(target=lambda: decoder.decode(vehicle))
    waiting.start()
    deadline = time.monotonic() + 10
    while CONDITION not in readiness.failing() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "did not answer" in readiness.failing()[CONDITION]
    assert waiting.is_alive(), "the batch with a new id waits for the registry"
    flaky.up = True
    waiting.join(10)
    assert not waiting.is_alive() and CONDITION not in readiness.failing()


def test_a_stop_ends_the_wait_with_the_registrys_error() -> None:
    schemas = RegistrySchemas(_nowhere(), Readiness())
    threading.Timer(0.5, schemas.stopping.set).start()
    with pytest.raises(StoppedWaiting):
        schemas(1)


def test_the_probe_reports_the_registry_and_a_command_refuses_to_start_without_it() -> None:
    readiness = Readiness()
    away = _nowhere()
    assert RegistrySchemas(away, readiness).probe() is False
    assert CONDITION in readiness.failing()
    with pytest.raises(GdxError, match="does not answer"):
        require_registry(away.access)
