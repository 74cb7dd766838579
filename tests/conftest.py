"""Session fixtures: one real Kafka broker and one real schema registry for the whole run, and
per-test isolated settings.

With KAFKA_BOOTSTRAP_SERVERS set, the tests use that cluster (secured by the user's
KAFKA_SECURITY_PROTOCOL / KAFKA_SSL_* / KAFKA_SASL_* variables) and start nothing; otherwise the
project's own launcher starts a broker, secured as by default (mTLS, deny by default), on free
loopback ports in a temporary state directory, and the session reaches it as a user reaches an
external secured cluster: the operator's certificate in those variables. The registry likewise:
GDX_SCHEMA_REGISTRY_URL (with its _CA, _CERTFILE, …) names one, else the project's own starts
beside the broker, sharing its CA, and the session reaches it through those variables. Tests are
isolated by a unique topic prefix, never by mocking the broker.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from streams.settings import CLIENT_VARIABLES, Settings
from tests.support.kafka_env import reached_as_operator, running_cluster
from tests.support.postgres_env import postgres_server
from tests.support.registry_env import REGISTRY_VARIABLES, registry_reached_as_operator, running_registry


@pytest.fixture(scope="session")
def session_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The state directory of the session's broker and registry: one PKI, one CA for both."""
    return tmp_path_factory.mktemp("kafka-1")


@pytest.fixture(scope="session")
def session_registry(session_state_dir: Path) -> Iterator[Settings | None]:
    """The session's own schema registry (None when the user named one in GDX_SCHEMA_REGISTRY_URL),
    reached as its operator through GDX_SCHEMA_REGISTRY_*, so every test's settings see it as an
    external registry."""
    if os.environ.get("GDX_SCHEMA_REGISTRY_URL", "").strip():
        yield None
        return
    with running_registry(session_state_dir) as settings, registry_reached_as_operator(settings):
        yield settings


@pytest.fixture(scope="session")
def session_cluster(session_state_dir: Path, session_registry: Settings | None) -> Iterator[Settings | None]:
    """The session's own broker (None when the user named a cluster), reached as its operator, with
    the session's registry beside it."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip():
        yield None
        return
    with running_cluster(session_state_dir, brokers=1) as settings, reached_as_operator(settings):
        yield settings


@pytest.fixture(scope="session")
def bootstrap_servers(session_cluster: Settings | None) -> str:
    if session_cluster is None:
        return os.environ["KAFKA_BOOTSTRAP_SERVERS"].strip()
    return session_cluster.bootstrap_servers


@pytest.fixture
def no_kafka_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No cluster nor connection security in the environment, for tests of what the settings make
    of their own values (the session's broker puts its operator's security there)."""
    for name in CLIENT_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def no_registry_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No schema registry in the environment, for tests of the local one (the session puts its
    registry there as an external one)."""
    for name in REGISTRY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


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
def three_broker_cluster(
    tmp_path_factory: pytest.TempPathFactory, session_cluster: Settings | None
) -> Iterator[Settings]:
    """A 3-broker KRaft cluster of the project's own launcher, started once when a test asks for
    it; it shares the session broker's CA, so the session's operator certificate reaches it too."""
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
