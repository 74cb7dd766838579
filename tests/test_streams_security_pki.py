"""The project's CA and the client side of connection security, without a broker: file modes,
issue / list / revoke (and `gdx pki`), the settings that choose the security, and the one client
factory carrying it to aiokafka and faust."""

from __future__ import annotations

import logging
import os
import pickle
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from agencies.errors import SimulationError
from foundation.errors import GdxError
from foundation.kafka_clients import ClientSecurity, KafkaClients
from streams.local import kafka_launcher as launcher
from streams.security.pki import Pki
from streams.security.scram import ScramStore
from streams.settings import Settings, client_environment
from tests.support.cli_run import run_gdx


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


@pytest.fixture
def open_umask() -> Iterator[None]:
    """umask 0: a file made with the default mode would be world-readable, so a 0600 key proves
    it was created 0600 (and never chmod-ed after being written)."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def test_the_ca_is_made_on_first_use_with_private_modes(tmp_path: Path, open_umask: None) -> None:
    pki = Pki.of(tmp_path / "state")
    assert not pki.root.exists()
    issued = pki.issue("agency-dopa")
    assert _mode(pki.root) == 0o700
    assert _mode(pki.ca_key) == 0o600 and _mode(issued.key) == 0o600
    assert _mode(pki.ca_cert) == 0o644 and _mode(issued.cert) == 0o644
    assert not issued.keystore.exists(), "a client principal needs no keystore"
    assert not list(pki.root.glob("*.tmp")), "no temporary file is left behind"
    ca = _cert(pki.ca_cert)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    again = Pki.of(tmp_path / "state")
    again.ensure("agency-dopa")
    assert _cert(again.ca_cert) == ca, "the CA is made once"


def test_a_client_certificate_names_its_principal_and_is_signed_by_the_ca(tmp_path: Path) -> None:
    pki = Pki.of(tmp_path)
    cert = _cert(pki.issue("consumer-revenue").cert)
    cert.verify_directly_issued_by(_cert(pki.ca_cert))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "consumer-revenue"
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)


def test_the_broker_certificate_serves_loopback_and_has_a_private_keystore(tmp_path: Path, open_umask: None) -> None:
    pki = Pki.of(tmp_path)
    issued = pki.issue("broker")
    cert = _cert(issued.cert)
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usages) == {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH}
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    keystore = issued.keystore.read_text()
    assert _mode(issued.keystore) == 0o600
    assert keystore.startswith("-----BEGIN PRIVATE KEY-----") and keystore.count("BEGIN CERTIFICATE") == 2


def test_list_and_revoke(tmp_path: Path) -> None:
    pki = Pki.of(tmp_path)
    first = _cert(pki.issue("agency-dbd").cert)
    pki.issue("gdx-worker")
    listed = {info.name: info for info in pki.list()}
    assert set(listed) == {"agency-dbd", "gdx-worker"}
    assert listed["agency-dbd"].serial == f"{first.serial_number:x}"
    assert listed["agency-dbd"].not_after == first.not_valid_after_utc and not listed["agency-dbd"].revoked
    revoked = pki.revoke("agency-dbd")
    assert revoked.revoked and set(pki.revoked()) == {"agency-dbd"}
    assert pki.revoked()["agency-dbd"]["serial"] == revoked.serial
    assert {info.name: info.revoked for info in pki.list()} == {"agency-dbd": True, "gdx-worker": False}
    with pytest.raises(GdxError, match="agency-dbd is revoked"):
        pki.issue("agency-dbd")
    with pytest.raises(GdxError, match="no certificate for agency-dol"):
        pki.revoke("agency-dol")
    for bad in ("ca", "Agency", "../x", ""):
        with pytest.raises(GdxError, match="not a principal name"):
            pki.issue(bad)


def test_a_key_folder_open_to_others_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pki").mkdir(mode=0o755)
    os.chmod(tmp_path / "pki", 0o755)
    with pytest.raises(GdxError, match="open to others"):
        Pki.of(tmp_path).issue("gdx-worker")


def test_the_gdx_pki_command(tmp_path: Path) -> None:
    env = {"GDX_STATE_DIR": str(tmp_path)}
    issued = run_gdx("pki", "issue", "agency-dol", env=env)
    assert issued.code == 0 and issued.out.startswith("issued agency-dol: certificate "), issued.err
    listed = run_gdx("pki", "list", env=env)
    assert listed.code == 0 and listed.out.splitlines()[1].split()[0] == "agency-dol", listed.out
    assert listed.out.splitlines()[1].endswith("no")
    revoked = run_gdx("pki", "revoke", "agency-dol", env=env)
    assert revoked.code == 0 and revoked.out.startswith("revoked agency-dol (serial "), revoked.err
    assert run_gdx("pki", "list", env=env).out.splitlines()[1].endswith("REVOKED")
    refused = run_gdx("pki", "issue", "agency-dol", env=env)
    assert refused.code != 0 and refused.err.count("\n") == 1 and "revoked" in refused.err, refused.err


def test_scram_passwords_are_made_once_and_private(tmp_path: Path, open_umask: None) -> None:
    store = ScramStore.of(tmp_path)
    path = store.password_file("gdx-operator")
    assert _mode(store.root) == 0o700 and _mode(path) == 0o600
    assert store.password("gdx-operator") == store.password("gdx-operator") != store.password("gdx-worker")


def test_local_security_picks_each_principals_credentials(tmp_path: Path, no_kafka_environment: None) -> None:
    assert Settings(state_dir=tmp_path).kafka_security == "mtls", "secured by default"
    plain = Settings(state_dir=tmp_path, kafka_port=29092, kafka_security="plaintext")
    assert plain.kafka == plain.kafka_as("gdx-worker") == KafkaClients("127.0.0.1:29092")
    assert not (tmp_path / "pki").exists(), "plaintext makes no key material"
    mtls = plain.model_copy(update={"kafka_security": "mtls"})
    worker = mtls.kafka_as("gdx-worker").security
    assert worker.security_protocol == "SSL" and worker.certfile == (tmp_path / "pki" / "gdx-worker.pem").resolve()
    assert worker.keyfile == (tmp_path / "pki" / "gdx-worker.key").resolve()
    assert mtls.kafka.security.certfile is not None and mtls.kafka.security.certfile.name == "gdx-operator.pem"
    scram = plain.model_copy(update={"kafka_security": "scram"})
    login = scram.kafka.security
    assert (login.security_protocol, login.sasl_mechanism, login.sasl_username) == (
        "SASL_SSL",
        "SCRAM-SHA-512",
        "gdx-operator",
    )
    assert login.certfile is None and login.cafile == (tmp_path / "pki" / "ca.pem").resolve()
    external = Settings(kafka_bootstrap_servers="kafka.example:9093")
    with pytest.raises(GdxError, match="no local principals"):
        external.kafka_as("gdx-worker")


def test_each_process_connects_as_its_principal_and_a_child_of_gdx_up_is_given_no_operator(
    tmp_path: Path, no_kafka_environment: None
) -> None:
    from agencies.simulation import Plan
    from streams.commands.up import _child_env

    mtls = Settings(state_dir=tmp_path, kafka_port=29092, kafka_security="mtls")
    assert mtls.secured and not Settings(state_dir=tmp_path, kafka_port=29092, kafka_security="plaintext").secured
    for principal in ("gdx-worker", "gdx-lookup", "gdx-consent", "gdx-monitor", "agency-dlt"):
        certificate = mtls.kafka_for(principal).security.certfile
        assert certificate is not None and certificate.name == f"{principal}.pem"
    external = Settings(kafka_bootstrap_servers="kafka.example:9093")
    assert external.kafka_for("gdx-worker") == external.kafka, "an external cluster: the configured identity"
    env = _child_env(mtls)
    assert (
        env["GDX_KAFKA_SECURITY"] == "mtls" and "KAFKA_SSL_CERTFILE" not in env and "KAFKA_BOOTSTRAP_SERVERS" not in env
    )
    clients = {a: mtls.kafka_for(f"agency-{a}") for a in ("dopa", "dlt")}
    plan = Plan(tmp_path, scale=1_000, seed=1, agencies=("dopa", "dlt"), kafka=clients)
    assert plan.kafka_for("dlt") == clients["dlt"] != plan.kafka_for("dopa")
    with pytest.raises(SimulationError, match="no Kafka clients for dol"):
        Plan(tmp_path, scale=1_000, seed=1, agencies=("dopa", "dol"), kafka=clients)


def test_an_external_cluster_takes_its_security_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_kafka_environment: None
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka.example:9093")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SSL_CAFILE", str(tmp_path / "ca.pem"))
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "agency-dopa")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD_FILE", str(tmp_path / "pw"))
    security = Settings().kafka.security
    assert security == ClientSecurity(
        "SASL_SSL",
        cafile=tmp_path / "ca.pem",
        sasl_mechanism="SCRAM-SHA-256",
        sasl_username="agency-dopa",
        sasl_password_file=tmp_path / "pw",
    )
    monkeypatch.delenv("KAFKA_SASL_USERNAME")
    with pytest.raises(GdxError, match="needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD_FILE"):
        _ = Settings().kafka


def test_a_plaintext_external_cluster_works_with_one_warning_line(
    caplog: pytest.LogCaptureFixture, no_kafka_environment: None
) -> None:
    settings = Settings(kafka_bootstrap_servers="kafka-1.example:9092,kafka-2.example:9092")
    with caplog.at_level(logging.WARNING, logger="gdx.settings"):
        assert settings.kafka.security == ClientSecurity()
        assert settings.kafka.security == ClientSecurity()
    (record,) = caplog.records
    assert "PLAINTEXT" in record.getMessage() and "KAFKA_SECURITY_PROTOCOL" in record.getMessage()


async def test_every_client_carries_the_security_and_the_factory_stays_picklable(tmp_path: Path) -> None:
    pki = Pki.of(tmp_path)
    issued = pki.issue("gdx-operator")
    password = tmp_path / "password"
    password.write_text("s3cret-from-a-file\n")
    mtls = KafkaClients(
        "127.0.0.1:1", security=ClientSecurity("SSL", cafile=pki.ca_cert, certfile=issued.cert, keyfile=issued.key)
    )
    scram = KafkaClients(
        "127.0.0.1:1",
        security=ClientSecurity(
            "SASL_SSL",
            cafile=pki.ca_cert,
            sasl_mechanism="SCRAM-SHA-512",
            sasl_username="u",
            sasl_password_file=password,
        ),
    )
    assert pickle.loads(pickle.dumps(scram)) == scram and "s3cret" not in repr(scram)
    producer = mtls.producer()
    assert producer.client._security_protocol == "SSL" and producer.client._ssl_context is not None
    await producer.stop()
    admin = scram.admin()
    client = admin._client
    assert client._security_protocol == "SASL_SSL" and client._sasl_mechanism == "SCRAM-SHA-512"
    assert client._sasl_plain_username == "u" and client._sasl_plain_password == "s3cret-from-a-file"
    await admin.close()
    assert KafkaClients("127.0.0.1:1").faust_credentials() is None
    assert type(mtls.faust_credentials()).__name__ == "SSLCredentials"
    sasl = scram.faust_credentials()
    assert type(sasl).__name__ == "SASLCredentials" and sasl.mechanism.value == "SCRAM-SHA-512"
    assert sasl.ssl_context is not None and sasl.username == "u"


def test_plaintext_server_properties_are_unchanged(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, kafka_port=29092, kafka_security="plaintext")
    text = launcher.render_properties(settings, launcher.nodes(settings, 1)[0], 1)
    assert "listeners=PLAINTEXT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093" in text.splitlines()
    assert "ssl." not in text and "authorizer" not in text


def test_a_child_process_given_the_client_environment_builds_the_same_clients(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_kafka_environment: None
) -> None:
    """`gdx up` hands its children the local cluster as an external one: the security must survive."""
    for mode in ("mtls", "scram"):
        parent = Settings(state_dir=tmp_path, kafka_port=29092, kafka_security=mode).kafka  # type: ignore[arg-type]
        with monkeypatch.context() as env:
            for name, value in client_environment(parent).items():
                env.setenv(name, value)
            assert Settings().kafka == parent, mode
    assert client_environment(KafkaClients("127.0.0.1:1")) == {
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
    }
