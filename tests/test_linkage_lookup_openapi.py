"""Property-based: schemathesis drives the lookup API from its own OpenAPI document, against a real
uvicorn server over a real index and broker, and finds no 5xx and no answer that breaks the schema."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from streams.lookup_app import create_lookup_app
from streams.lookup_server import LookupServer
from streams.security.pki import Pki
from streams.settings import Settings
from tests.support.lookup_support import KEYS, lookup_deployment, wait_until

pytestmark = pytest.mark.kafka
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def running_api(bootstrap_servers: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict, str]]:
    """The API over HTTPS (its default), the project CA of its state directory to verify it with."""
    settings = lookup_deployment(
        Settings(
            kafka_bootstrap_servers=bootstrap_servers,
            topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
            state_dir=tmp_path_factory.mktemp("lookup-openapi") / "state",
        )
    )
    app = create_lookup_app(settings)
    server = LookupServer(settings, app=app, port=0)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(server.run(),), daemon=True)
    thread.start()
    wait_until(server.started.is_set, what="lookup API listening")
    wait_until(lambda: not app.state.lookup.readiness.failing(), what="lookup API ready")
    assert server.url.startswith("https://")
    yield server.url, app.openapi(), str(Pki.of(settings.state_dir.resolve()).ca_cert)
    server.server.should_exit = True
    thread.join(timeout=30)
    loop.close()


@pytest.mark.parametrize("mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE])
@pytest.mark.parametrize(
    "path",
    [
        "/v1/citizens/{citizen_id}",
        "/v1/juristic-persons/{juristic_id}",
        "/v1/verify",
        "/v1/citizens/{citizen_id}/access-log",
        "/catalog",
    ],
)
def test_no_server_errors_and_every_answer_matches_the_schema(
    running_api: tuple[str, dict, str], path: str, mode: schemathesis.GenerationMode
) -> None:
    url, document, ca = running_api
    operations = [result.ok() for result in schemathesis.openapi.from_dict(document).get_all_operations()]
    (operation,) = [op for op in operations if op.path == path]

    @given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis_settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def drive(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=url, headers={"X-API-Key": KEYS["revenue"]}, checks=CHECKS, verify=ca)

    drive()
