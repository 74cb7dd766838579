"""`GDX_PROFILE=production` refuses an unsafe set-up before any process starts, one line per
problem: plaintext Kafka, the shipped demo API keys, secrets others may read, a database password
in the index URL. A safe set-up passes, and the development profile never refuses."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from foundation.errors import GdxError
from streams.production import refuse_unsafe, unsafe_setup
from streams.settings import Settings, load_settings
from tests.support.cli_run import run_gdx


def unsafe(tmp_path: Path) -> dict[str, str]:
    """Everything the profile refuses: the shipped registry, a world-readable audit key, a local
    broker started plaintext, an index URL with its password."""
    key = tmp_path / "audit-keys" / "audit-2026-12-07-0a1b2c3d.key"
    key.parent.mkdir(exist_ok=True)
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    key.chmod(0o644)
    return {
        "GDX_STATE_DIR": str(tmp_path),
        "GDX_KAFKA_SECURITY": "plaintext",
        "GDX_INDEX_URL": "postgresql://gdx:s3cret@127.0.0.1:1/index",
    }


def safe(tmp_path: Path) -> dict[str, str]:
    registry = tmp_path / "consumers.toml"
    digest = hashlib.sha256(b"a-key-of-its-own-" + os.urandom(16)).hexdigest()
    registry.write_text(f'[consumers.revenue]\nname = "Revenue"\napi_key_sha256 = "{digest}"\n')
    files = {}
    for name in ("ca.pem", "client.pem", "client.key"):
        files[name] = tmp_path / name
        files[name].write_text("x")
        files[name].chmod(0o600)
    return {
        "GDX_STATE_DIR": str(tmp_path),
        "GDX_CONSUMERS_FILE": str(registry),
        "GDX_INDEX_URL": "postgresql://gdx@db.example:5432/index",
        "KAFKA_BOOTSTRAP_SERVERS": "kafka.example:9093",
        "KAFKA_SECURITY_PROTOCOL": "SSL",
        "KAFKA_SSL_CAFILE": str(files["ca.pem"]),
        "KAFKA_SSL_CERTFILE": str(files["client.pem"]),
        "KAFKA_SSL_KEYFILE": str(files["client.key"]),
    }


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in [n for n in os.environ if n.startswith(("GDX_", "KAFKA_"))]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def test_every_unsafe_setting_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    problems = [what for what, _fix in unsafe_setup(settings_from(unsafe(tmp_path), monkeypatch))]
    assert any("local Kafka broker" in p and "PLAINTEXT" in p for p in problems), problems
    assert sorted(p for p in problems if "demo API key" in p) == [
        f"consumer {c} still has the shipped demo API key" for c in ("bank", "citizen-portal", "dlt", "revenue")
    ]
    assert any("audit-2026-12-07-0a1b2c3d.key" in p and "0644" in p for p in problems), problems
    assert any("password in clear" in p for p in problems), problems
    assert len(problems) == 7
    with_http = settings_from({**unsafe(tmp_path), "GDX_LOOKUP_TLS": "off"}, monkeypatch)
    assert [w for w, _ in unsafe_setup(with_http) if "plain HTTP" in w] == [
        "the lookup API would serve plain HTTP (GDX_LOOKUP_TLS=off or --insecure-http)"
    ]
    assert not any("s3cret" in p for p in problems)


def test_a_safe_setup_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert unsafe_setup(settings_from(safe(tmp_path), monkeypatch)) == []


def test_a_process_refuses_to_start_one_line_per_problem(tmp_path: Path) -> None:
    done = run_gdx("serve", "--insecure-http", env={**unsafe(tmp_path), "GDX_PROFILE": "production"}, timeout=60)
    assert done.code == 1, done.err
    lines = done.err.splitlines()
    assert len(lines) == 9 and all(line.startswith("gdx: production: ") for line in lines[:8]), done.err
    assert "plain HTTP" in done.err
    assert lines[-1] == "gdx: refusing to start: 8 unsafe setting(s) under GDX_PROFILE=production"
    assert "Traceback" not in done.err and "s3cret" not in done.err


def test_the_development_profile_and_offline_commands_never_refuse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = unsafe(tmp_path)
    refuse_unsafe(settings_from(env, monkeypatch))  # development: `make run`'s stack, demo keys and all
    listed = run_gdx("acl", "list", "--offline", env={**env, "GDX_PROFILE": "production"}, timeout=60)
    assert listed.code == 0 and "refusing" not in listed.err, listed.err


def test_an_agency_signing_key_others_may_read_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from streams.security.signing_keys import SigningKeys

    keys = SigningKeys.of(tmp_path)
    key_file = keys.root / f"{keys.signer('dopa').key_id}.key"
    settings = settings_from(safe(tmp_path), monkeypatch)
    assert unsafe_setup(settings) == [], "made private: nothing to say"
    key_file.chmod(0o644)
    assert [what for what, _ in unsafe_setup(settings)] == [f"{key_file} may be read by others (mode 0644)"]


def test_a_registry_without_tls_or_with_a_key_others_may_read_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "registry.key"
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    key.chmod(0o644)
    env = {
        **safe(tmp_path),
        "GDX_SCHEMA_REGISTRY_URL": "http://registry.example:8081",
        "GDX_SCHEMA_REGISTRY_KEYFILE": str(key),
    }
    assert [what for what, _ in unsafe_setup(settings_from(env, monkeypatch))] == [
        "the schema registry at http://registry.example:8081 is reached without TLS",
        f"{key} may be read by others (mode 0644)",
    ]
    key.chmod(0o600)
    env["GDX_SCHEMA_REGISTRY_URL"] = "https://registry.example:8081"
    assert unsafe_setup(settings_from(env, monkeypatch)) == []


def test_a_registry_url_carrying_a_password_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GDX_SCHEMA_REGISTRY_URL", "https://user:s3cret@registry.example:8081")
    with pytest.raises(GdxError) as refused:
        load_settings()
    assert "GDX_SCHEMA_REGISTRY_PASSWORD_FILE" in str(refused.value) and "s3cret" not in str(refused.value)
