"""The lookup API over TLS: `gdx serve` answers HTTPS by default with a certificate the project CA
verifies, refuses clients that do not trust it and plain HTTP on its port, serves every page
(`/docs`, the health endpoints, `/metrics`, `/status`) over it, takes an operator's certificate
instead, and serves plain HTTP only when told to, saying so."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from monitoring.scrape_targets import targets_dir
from schemas.examples import SOMCHAI
from streams.local.prometheus import PrometheusSetup, render_config
from streams.security.pki import CA_COMMON_NAME, Pki
from streams.settings import Settings
from tests.support.cli_run import run_gdx
from tests.support.lookup_support import KEYS, lookup_deployment, wait_until
from tests.support.serve_support import ca_file, lookup_api


def _env(settings: Settings, **more: str) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "GDX_TOPIC_PREFIX": settings.topic_prefix,
        "GDX_STATE_DIR": str(settings.state_dir),
        "GDX_INDEX_URL": settings.index_database_url,
        "GDX_LOOKUP_PORT": "0",
        **more,
    }


def _served_certificate(url: str) -> x509.Certificate:
    host, port = url.removeprefix("https://").rsplit(":", 1)
    pem = ssl.get_server_certificate((host, int(port)))
    return x509.load_pem_x509_certificate(pem.encode())


def _trusting(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


def _cn(name: x509.Name) -> str:
    return str(name.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


@pytest.mark.kafka
def test_https_by_default_with_a_certificate_the_project_ca_verifies(settings: Settings, tmp_path: Path) -> None:
    settings = lookup_deployment(settings)
    env = _env(settings)
    with lookup_api(env, tmp_path) as (url, _):
        assert url.startswith("https://127.0.0.1:")
        served = _served_certificate(url)
        assert (_cn(served.subject), _cn(served.issuer)) == ("gdx-lookup", CA_COMMON_NAME)
        with httpx.Client(base_url=url, verify=_trusting(ca_file(env)), timeout=10) as trusting:
            wait_until(lambda: trusting.get("/readyz").status_code == 200, what="lookup API ready")
            for path in ("/healthz", "/readyz", "/docs", "/openapi.json", "/metrics", "/status", "/catalog"):
                assert trusting.get(path).status_code == 200, path
            answer = trusting.get(
                f"/v1/citizens/{SOMCHAI}", params={"purpose": "estate-tax"}, headers={"X-API-Key": KEYS["revenue"]}
            )
            assert answer.status_code == 200 and answer.json()["status"] == "ACTIVE", answer.text
            assert trusting.get("/docs").text.count("/openapi.json") >= 1, "the docs load the document relatively"

        # A client that trusts the system's CAs only, or another CA, does not finish the handshake.
        other_ca = Pki(tmp_path / "other-pki").ensure_ca()
        for verify in (ssl.create_default_context(), _trusting(other_ca)):
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                httpx.get(f"{url}/healthz", verify=verify, timeout=10)
        # Plain HTTP to the HTTPS port gets no answer: the handshake fails and the connection closes.
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{url.replace('https://', 'http://')}/healthz", timeout=10)

        (target,) = targets_dir(settings.state_dir).glob("lookup-api-*.json")
        assert json.loads(target.read_text())[0]["labels"]["__scheme__"] == "https", "Prometheus scrapes HTTPS"


@pytest.mark.kafka
def test_an_operators_certificate_is_served_instead_of_the_project_cas(settings: Settings, tmp_path: Path) -> None:
    settings = lookup_deployment(settings)
    operators = Pki(tmp_path / "operator-pki")
    issued = operators.issue("lookup.example", server=True)
    env = _env(settings, GDX_LOOKUP_TLS_CERT=str(issued.cert), GDX_LOOKUP_TLS_KEY=str(issued.key))
    with lookup_api(env, tmp_path, trust=operators.ca_cert) as (url, _):
        assert _cn(_served_certificate(url).subject) == "lookup.example"
        assert httpx.get(f"{url}/healthz", verify=_trusting(operators.ca_cert), timeout=10).status_code == 200
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{url}/healthz", verify=_trusting(Pki.of(settings.state_dir).ensure_ca()), timeout=10)
    assert not (settings.state_dir / "pki" / "gdx-lookup.key").exists(), "no project certificate was needed"


@pytest.mark.kafka
@pytest.mark.parametrize("how", ["flag", "setting"])
def test_plain_http_only_when_told_and_said_in_one_warning_line(settings: Settings, tmp_path: Path, how: str) -> None:
    settings = lookup_deployment(settings)
    env = _env(settings, **({"GDX_LOOKUP_TLS": "off"} if how == "setting" else {}))
    args = ("--insecure-http",) if how == "flag" else ()
    with lookup_api(env, tmp_path, *args) as (url, _):
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
        (target,) = targets_dir(settings.state_dir).glob("lookup-api-*.json")
        assert json.loads(target.read_text())[0]["labels"]["__scheme__"] == "http"
    warnings = [line for line in (tmp_path / "serve.err").read_text().splitlines() if "plain HTTP" in line]
    assert len(warnings) == 1 and json.loads(warnings[0])["level"] == "warning", warnings


def test_a_certificate_without_its_key_is_one_line(tmp_path: Path) -> None:
    result = run_gdx(
        "serve", env={"GDX_STATE_DIR": str(tmp_path / "state"), "GDX_LOOKUP_TLS_CERT": str(tmp_path / "c.pem")}
    )
    assert result.code == 1 and "Traceback" not in result.err
    (line,) = result.err.strip().splitlines()
    assert line.startswith("gdx: GDX_LOOKUP_TLS_CERT and GDX_LOOKUP_TLS_KEY go together"), line


def test_prometheus_verifies_https_targets_with_the_ca(tmp_path: Path) -> None:
    setup = PrometheusSetup(
        root=tmp_path, port=9090, scrape_interval_s=1, start_timeout_s=5, ca_file=tmp_path / "ca.pem"
    )
    (job, _prometheus) = json.loads(render_config(setup).split("\n", 1)[1])["scrape_configs"]
    assert job["tls_config"] == {"ca_file": str((tmp_path / "ca.pem").resolve())}
    plain = PrometheusSetup(root=tmp_path, port=9090, scrape_interval_s=1, start_timeout_s=5)
    assert "tls_config" not in json.loads(render_config(plain).split("\n", 1)[1])["scrape_configs"][0]
