"""Session fixtures: one real Kafka broker for the whole run, and per-test isolated settings.

With KAFKA_BOOTSTRAP_SERVERS set, the tests use that cluster and start nothing; otherwise the
project's own launcher starts a broker on free loopback ports in a temporary state directory.
Tests are isolated by a unique topic prefix, never by mocking the broker.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from streams.settings import Settings
from tests.support.kafka_env import running_cluster
from tests.support.postgres_env import postgres_server


@pytest.fixture(scope="session")
def bootstrap_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if external:
        yield external
        return
    with running_cluster(tmp_path_factory.mktemp("kafka-1"), brokers=1) as settings:
        yield settings.bootstrap_servers


@pytest.fixture
def settings(bootstrap_servers: str, tmp_path: Path) -> Settings:
    """Settings for one test: the shared broker, its own topic prefix and state directory."""
    return Settings(
        kafka_bootstrap_servers=bootstrap_servers,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        state_dir=tmp_path / "state",
    )


@pytest.fixture
def engine(index_url: str) -> Iterator[Engine]:
    """The linkage index at `index_url`, migrated to the current schema."""
    from linkage.database import index_engine
    from linkage.migrate import upgrade

    built = index_engine(index_url)
    upgrade(built)
    yield built
    built.dispose()


@pytest.fixture
def lookup(settings: Settings) -> Iterator[tuple[Settings, TestClient]]:
    """A lookup API of the test's own over the example index, started and ready."""
    from tests.support.lookup_support import lookup_client, lookup_deployment

    deployed = lookup_deployment(settings)
    with lookup_client(deployed) as client:
        yield deployed, client


@pytest.fixture(scope="session")
def three_broker_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A 3-broker KRaft cluster of the project's own launcher, started once when a test asks for it."""
    with running_cluster(tmp_path_factory.mktemp("kafka-3"), brokers=3) as settings:
        yield settings


@pytest.fixture(scope="session")
def three_broker_bootstrap(three_broker_cluster: Settings) -> str:
    return three_broker_cluster.bootstrap_servers


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server for the whole run (private, or GDX_TEST_POSTGRES_URL)."""
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite"])
def index_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty linkage-index database: SQLite in a temporary file, or a fresh PostgreSQL database.

    SQLite by default; a test runs on both with
    `@pytest.mark.parametrize("index_url", ["sqlite", "postgresql"], indirect=True)`.
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'index.db'}"
        return
    from linkage.database import index_engine
    from linkage.migrate import drop_all

    url: str = request.getfixturevalue("postgres_url")
    engine = index_engine(url)
    drop_all(engine)
    engine.dispose()
    yield url
