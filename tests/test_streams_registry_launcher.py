"""The project's own schema registry, for real: started, reused, stopped and restarted with its
schemas kept; refused to anyone without a certificate of the project's CA and to the revoked;
writable only by the principals allowed to write; and every way it cannot start is one line.

Attacks run against the session's registry; only the tests about starting and stopping start one
of their own."""

from __future__ import annotations

import http.client
import socket
import stat
import uuid
from pathlib import Path

import pytest

from foundation.ports import free_port_block
from foundation.schema_registry import RegistryAccess, RegistryRefused, RegistryUnavailable, SchemaRegistry
from streams.local import registry_launcher as launcher
from streams.security.pki import Pki
from streams.security.principals import AGENCIES, OPERATOR, WORKER
from streams.settings import Settings
from tests.support.cli_run import run_gdx
from tests.support.registry_env import local_registry_settings

SCHEMA = '{"type":"record","name":"Probe","namespace":"gdx.test","fields":[{"name":"n","type":"int"}]}'
WIDER = (
    '{"type":"record","name":"Probe","namespace":"gdx.test","fields":[{"name":"n","type":"int"},'
    '{"name":"note","type":["null","string"],"default":null}]}'
)


@pytest.fixture
def ours(session_registry: Settings | None) -> Settings:
    if session_registry is None:
        pytest.skip("the session uses the registry named in GDX_SCHEMA_REGISTRY_URL, not the project's own")
    return session_registry


def _as(settings: Settings, principal: str) -> SchemaRegistry:
    return SchemaRegistry(settings.registry_for(principal))


def _subject() -> str:
    return f"t{uuid.uuid4().hex[:10]}.gdx.test.probe.v1-value"


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines and lines[0].startswith("gdx: "), stderr
    assert "Traceback" not in stderr, stderr
    return lines[0]


@pytest.mark.usefixtures("no_registry_environment")
def test_up_reuse_down_and_restart_keep_the_schemas(tmp_path: Path) -> None:
    settings = local_registry_settings(tmp_path / "state")
    env = {"GDX_STATE_DIR": str(settings.state_dir), "GDX_SCHEMA_REGISTRY_PORT": str(settings.schema_registry_port)}
    try:
        first = launcher.up(settings, report=False)
        assert first.started and first.url == settings.local_registry_url
        subject = _subject()
        schema_id = _as(settings, OPERATOR).register(subject, SCHEMA)

        files = launcher.files_of(settings)
        for secret in (files.config_file, files.truststore):
            assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret
        assert "trust-store-password" in files.config_file.read_text()
        cmdline = Path(f"/proc/{first.pid}/cmdline").read_bytes().decode()
        assert "password" not in cmdline.lower()

        again = launcher.up(settings, report=False)
        assert (again.started, again.pid) == (False, first.pid)
        status = run_gdx("registry", "status", env=env)
        assert status.code == 0 and "answering" in status.out, status

        pki = Pki.of(settings.state_dir)
        gone = pki.ensure("consumer-gone")
        assert _as(settings, "consumer-gone").subjects() == [subject]
        pki.revoke("consumer-gone")

        assert any("stopped" in line for line in launcher.down(settings))
        status = run_gdx("registry", "status", env=env)
        assert status.code == launcher.EXIT_NOT_RUNNING and "stopped" in status.out, status

        restarted = launcher.up(settings, report=False)
        assert restarted.started and restarted.pid != first.pid
        assert _as(settings, WORKER).schema_by_id(schema_id) == SCHEMA
        assert _as(settings, OPERATOR).register(subject, SCHEMA) == schema_id
        revoked = RegistryAccess(restarted.url, cafile=gone.ca, certfile=gone.cert, keyfile=gone.key)
        with pytest.raises(RegistryRefused, match="consumer-gone is revoked"):
            SchemaRegistry(revoked).subjects()
    finally:
        launcher.down(settings)
    assert not launcher.state(launcher.files_of(settings)).running


def test_plain_http_is_refused(ours: Settings) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", ours.schema_registry_port, timeout=5)
    with pytest.raises((OSError, http.client.HTTPException)):
        connection.request("GET", "/apis/ccompat/v7/subjects")
        connection.getresponse()
    connection.close()


def test_https_without_a_client_certificate_is_refused(ours: Settings) -> None:
    operator = ours.registry_for(OPERATOR)
    with pytest.raises(RegistryUnavailable):
        SchemaRegistry(RegistryAccess(operator.url, cafile=operator.cafile)).subjects()


def test_a_certificate_of_another_ca_is_refused_whatever_its_name(ours: Settings, tmp_path: Path) -> None:
    stranger = Pki.of(tmp_path).ensure(OPERATOR)
    operator = ours.registry_for(OPERATOR)
    forged = RegistryAccess(operator.url, cafile=operator.cafile, certfile=stranger.cert, keyfile=stranger.key)
    with pytest.raises(RegistryUnavailable):
        SchemaRegistry(forged).subjects()


def test_only_the_operator_changes_the_registry_and_every_member_reads(ours: Settings) -> None:
    subject = _subject()
    schema_id = _as(ours, OPERATOR).register(subject, SCHEMA)
    worker = _as(ours, WORKER)
    assert subject in worker.subjects()
    assert worker.schema_by_id(schema_id) == SCHEMA
    assert worker.lookup(subject, SCHEMA) == schema_id  # a POST that only reads
    assert worker.is_compatible(subject, WIDER)  # likewise
    for write in (
        lambda: worker.register(subject, WIDER),
        lambda: worker.set_compatibility(subject, "NONE"),
    ):
        with pytest.raises(RegistryRefused) as refused:
            write()
        assert refused.value.status == 403 and "gdx-worker may read this registry but not change it" in str(
            refused.value
        )
    _as(ours, OPERATOR).set_compatibility(subject, "FULL_TRANSITIVE")
    assert worker.compatibility(subject) == "FULL_TRANSITIVE"


def test_agencies_register_under_the_development_profile_only(ours: Settings) -> None:
    assert launcher.who_writes(Settings(profile="production")) == ((OPERATOR,), ())
    if ours.profile != "development":
        pytest.skip("the session's registry was started under the production profile")
    subject = _subject()
    agency = _as(ours, AGENCIES[0])
    assert agency.register(subject, SCHEMA) > 0
    with pytest.raises(RegistryRefused) as refused:
        agency.set_compatibility(subject, "NONE")
    assert refused.value.status == 403


@pytest.mark.usefixtures("no_registry_environment")
def test_a_busy_port_is_one_line_and_starts_nothing(tmp_path: Path) -> None:
    port = free_port_block(1)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        result = run_gdx("registry", "up", env={"GDX_STATE_DIR": str(tmp_path), "GDX_SCHEMA_REGISTRY_PORT": str(port)})
    assert result.code != 0
    assert f"port {port} on 127.0.0.1 is already in use" in _one_line(result.err)
    assert "GDX_SCHEMA_REGISTRY_PORT" in result.err
    assert not (tmp_path / "registry" / "registry.pid").exists()


@pytest.mark.usefixtures("no_registry_environment")
def test_missing_java_is_one_line(tmp_path: Path) -> None:
    result = run_gdx(
        "registry",
        "up",
        env={
            "GDX_STATE_DIR": str(tmp_path),
            "GDX_SCHEMA_REGISTRY_PORT": str(free_port_block(1)),
            "JAVA_HOME": str(tmp_path / "no-java"),
        },
    )
    assert result.code != 0
    assert "Java not found" in _one_line(result.err) and "schema registry" in result.err


@pytest.mark.usefixtures("no_registry_environment")
def test_a_registry_that_crashes_while_starting_is_one_line_with_its_reason(tmp_path: Path) -> None:
    settings = local_registry_settings(tmp_path)
    Pki.of(tmp_path).ensure("schema-registry").key.write_text(
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    )
    env = {"GDX_STATE_DIR": str(tmp_path), "GDX_SCHEMA_REGISTRY_PORT": str(settings.schema_registry_port)}
    result = run_gdx("registry", "up", env=env)
    assert result.code != 0
    assert "the schema registry exited with code" in _one_line(result.err)
    assert "PKCS8" in result.err  # the log's own reason, not a stack trace
    assert not launcher.state(launcher.files_of(settings)).running


def test_an_external_registry_starts_nothing(ours: Settings, tmp_path: Path) -> None:
    operator = ours.registry_for(OPERATOR)
    external = {
        "GDX_STATE_DIR": str(tmp_path),
        "GDX_SCHEMA_REGISTRY_URL": operator.url,
        "GDX_SCHEMA_REGISTRY_CA": str(operator.cafile),
        "GDX_SCHEMA_REGISTRY_CERTFILE": str(operator.certfile),
        "GDX_SCHEMA_REGISTRY_KEYFILE": str(operator.keyfile),
    }
    for verb in ("up", "status"):
        result = run_gdx("registry", verb, env=external)
        assert result.code == 0 and f"external schema registry {operator.url}: answering" in result.out, result
    assert not (tmp_path / "registry").exists()

    away = {**external, "GDX_SCHEMA_REGISTRY_URL": f"https://127.0.0.1:{free_port_block(1)}/apis/ccompat/v7"}
    result = run_gdx("registry", "status", env=away)
    assert result.code == launcher.EXIT_NOT_RUNNING and "NOT answering" in result.out, result
