"""The status page as a person sees it: `gdx serve` over a seeded index, rendered by headless
Chromium over HTTPS — once with a real Prometheus scraping a process that feeds every agency's
metrics, once with no Prometheus at all.

Chromium trusts the API's certificate without `--ignore-certificate-errors`: it is given the
SHA-256 of that one certificate's public key (`--ignore-certificate-errors-spki-list`, honoured
with a `--user-data-dir` only), so exactly the certificate the project CA issued to `gdx-lookup`
passes and any other certificate still fails; an NSS database holding the CA would need certutil,
which the set-up does not install. A run without the pin shows the certificate error page."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from foundation.ports import free_port_block
from linkage.database import index_engine
from linkage.migrate import upgrade
from streams.local.prometheus import prometheus_root
from streams.lookup_server import SERVER_NAME
from streams.security.pki import Pki
from streams.settings import Settings
from tests.support.cli_run import clean_env, run_gdx
from tests.support.lookup_support import create_lookup_topics
from tests.support.serve_support import lookup_api, stop
from tests.support.status_feeder import FRESHNESS_S
from tests.support.status_support import EXPECTED_INDEX, per_second, read_charts, read_page, seconds, seed_index

pytestmark = pytest.mark.kafka
TESTS = Path(__file__).resolve().parent
AGENCIES = ("dopa", "dbd", "dol", "dlt")


def spki_pin(cert_file: Path) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)) of the first certificate in `cert_file` (Chromium's pin form)."""
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def _pin(settings: Settings) -> str:
    return spki_pin(Pki.of(settings.state_dir.resolve()).paths(SERVER_NAME).cert)


def _chromium(url: str, profile: Path, pin: str | None) -> subprocess.CompletedProcess[str]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail(
            "chromium is not installed — apt-get install chromium (deploy/ensure-tools.sh does it in CI)", pytrace=False
        )
    return subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--no-first-run",
            f"--user-data-dir={profile}",
            *([f"--ignore-certificate-errors-spki-list={pin}"] if pin else []),
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def _dom(url: str, profile: Path, pin: str) -> str:
    """The page's DOM after Chromium loaded it over HTTPS (`--dump-dom`), in a throwaway profile,
    trusting the one certificate whose key `pin` names."""
    assert url.startswith("https://"), url
    done = _chromium(url, profile, pin)
    assert done.returncode == 0 and "agencies" in done.stdout, done.stderr[-3000:]
    return done.stdout


def _env(settings: Settings, prometheus_port: int) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "GDX_TOPIC_PREFIX": settings.topic_prefix,
        "GDX_STATE_DIR": str(settings.state_dir),
        "GDX_LOOKUP_PORT": "0",
        "GDX_PROMETHEUS_PORT": str(prometheus_port),
        "GDX_PROMETHEUS_SCRAPE_INTERVAL_S": "1",
        "GDX_ALERTMANAGER_PORT": str(free_port_block(1)),
        "GDX_ALERT_RECEIVER_PORT": str(free_port_block(1)),
    }


@pytest.fixture
def seeded(settings: Settings) -> Settings:
    """The test's own topics and an index holding `EXPECTED_INDEX`'s records, applied 30 s ago."""
    create_lookup_topics(settings)
    engine = index_engine(settings.index_database_url)
    upgrade(engine)
    seed_index(engine, int(time.time() * 1000))
    engine.dispose()
    return settings


def _assert_index_columns(rows: dict[str, dict[str, str]]) -> None:
    for agency in AGENCIES:
        assert rows[agency]["records"] == EXPECTED_INDEX[agency]["records"], agency
        age = re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \((\d+) s ago\)", rows[agency]["last-applied"])
        assert age and 30 <= int(age.group(1)) < 300, rows[agency]["last-applied"]


def test_without_prometheus_the_page_shows_the_index_and_says_so(seeded: Settings, tmp_path: Path) -> None:
    closed = free_port_block(1)
    with lookup_api(_env(seeded, closed), tmp_path) as (url, _):
        unpinned = _chromium(f"{url}/status", tmp_path / "chromium-unpinned", pin=None)
        dom = _dom(f"{url}/status", tmp_path / "chromium", _pin(seeded))
    assert "agencies" not in unpinned.stdout and "ERR_CERT_AUTHORITY_INVALID" in unpinned.stderr, unpinned.stderr
    rows, paragraphs = read_page(dom)
    assert "cannot be charted" in paragraphs["charts-unavailable"] and read_charts(dom) == {}
    assert "delivered alerts are unavailable" in paragraphs["alerts-unavailable"]
    assert paragraphs["source"].startswith(
        f"Prometheus at http://127.0.0.1:{closed} is not reachable (Connection refused)"
    )
    assert "rates, dead letters and exchange success are unavailable" in paragraphs["source"]
    assert list(rows) == list(AGENCIES)
    _assert_index_columns(rows)
    for agency in AGENCIES:
        assert rows[agency]["freshness-p50"] == EXPECTED_INDEX[agency]["freshness-p50"], agency
        assert rows[agency]["freshness-p99"] == EXPECTED_INDEX[agency]["freshness-p99"], agency
        assert {rows[agency][c] for c in ("published", "applied", "dead-letters", "success")} == {"unavailable"}


def _query(port: int, promql: str) -> list[dict]:
    address = f"http://127.0.0.1:{port}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    with urllib.request.urlopen(address, timeout=5) as answer:
        return json.loads(answer.read())["data"]["result"]


def _wait_for_every_agency(port: int, promql: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while {s["metric"].get("agency") for s in _query(port, promql)} < set(AGENCIES):
        assert time.monotonic() < deadline, f"Prometheus holds no {promql} for every agency within {timeout_s:.0f} s"
        time.sleep(0.5)


@contextmanager
def _prometheus(env: dict[str, str]) -> Iterator[None]:
    if shutil.which("prometheus") is None:
        pytest.fail(
            "Prometheus is not installed — apt-get install prometheus (deploy/ensure-tools.sh does it in CI)",
            pytrace=False,
        )
    started = run_gdx("prometheus", "up", env=env, timeout=90)
    assert started.code == 0, started.err
    try:
        yield
    finally:
        stopped = run_gdx("prometheus", "down", env=env, timeout=60)
        assert stopped.code == 0, stopped.err


@contextmanager
def _feeder(state_dir: Path, logs: Path) -> Iterator[None]:
    targets = prometheus_root(state_dir) / "targets"
    with (logs / "feeder.err").open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, str(TESTS / "support" / "status_feeder.py"), str(targets)],
            env=clean_env({}),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        yield
    finally:
        stop(process)


def test_with_prometheus_the_page_shows_each_agencys_freshness_rates_and_errors(
    seeded: Settings, tmp_path: Path
) -> None:
    port = free_port_block(1)
    env = _env(seeded, port)
    with _prometheus(env), _feeder(seeded.state_dir, tmp_path), lookup_api(env, tmp_path) as (url, _):
        for recorded in (
            "agency:gdx_freshness_seconds:p99_5m",
            "agency:gdx_exchange_success:ratio_rate5m",
            "sum by (agency) (agency_dataset:gdx_events_published:rate5m > 0)",
        ):
            _wait_for_every_agency(port, recorded)
        dom = _dom(f"{url}/status", tmp_path / "chromium", _pin(seeded))
    rows, paragraphs = read_page(dom)
    charts = read_charts(dom)
    assert all(
        charts[(agency, series)] >= 1
        for agency in AGENCIES
        for series in ("freshness_p99_s", "applied_per_s", "dead_letters_per_s")
    ), charts
    assert paragraphs["source"].startswith(f"Freshness, rates and dead letters: Prometheus at http://127.0.0.1:{port}")
    assert list(rows) == list(AGENCIES)
    _assert_index_columns(rows)
    for agency, observed in FRESHNESS_S.items():
        row = rows[agency]
        # Every observation falls in one histogram bucket (lower, upper]; Prometheus interpolates.
        lower, upper = {"dopa": (0.25, 0.5), "dbd": (0.5, 1.0), "dol": (2.5, 5.0), "dlt": (30.0, 60.0)}[agency]
        assert lower < observed <= upper
        assert seconds(row["freshness-p50"]) == pytest.approx(lower + 0.50 * (upper - lower), rel=0.02), agency
        assert seconds(row["freshness-p99"]) == pytest.approx(lower + 0.99 * (upper - lower), rel=0.02), agency
        assert row["freshness-p99"].endswith("(over the 30 s objective)") == (agency == "dlt"), row
        assert per_second(row["published"]) > 0 and per_second(row["applied"]) > 0, row
    for agency in ("dopa", "dbd", "dol"):
        assert (rows[agency]["dead-letters"], rows[agency]["success"]) == ("none", "100.0%"), rows[agency]
    assert re.fullmatch(r"invalid <?[\d.]+/s", rows["dlt"]["dead-letters"]), rows["dlt"]
    assert float(rows["dlt"]["success"].rstrip("%")) == pytest.approx(80.0, abs=3.0), rows["dlt"]
