"""The project's own Prometheus: a background process on loopback with a generated configuration.

Everything it owns lives under one directory (`<state_dir>/prometheus/`): `prometheus.yml`
(generated on every start; edits are overwritten), `prometheus.pid`, `prometheus.log`, `data/`
(the TSDB) and `targets/` (one file per process, see `monitoring.scrape_targets`). The rules are
read in place from `monitoring/rules/*.yml`, so a rule edit needs only a restart or a reload.

Debian's `prometheus` package provides the binary; its own service is never used (it would bind
:9090 with another configuration). Without the binary, `PrometheusNotInstalled` says how to
install it, and the stack runs on without monitoring.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from foundation.errors import GdxError
from foundation.http_get import http_get
from monitoring import RULES_DIR, scrape_targets
from streams.local import local_server
from streams.local.local_server import Listener, ProcessState, ServerFiles

INSTALL_HINT = "install it with `apt-get install prometheus` (Debian's package brings prometheus and promtool)"
EXIT_NOT_RUNNING = 3
SCRAPE_JOB = "gdx"


class PrometheusNotInstalled(GdxError):
    """No `prometheus` binary on PATH: callers that can run without monitoring catch this one."""

    def __init__(self) -> None:
        super().__init__("Prometheus is not installed (no `prometheus` on PATH)", INSTALL_HINT, exit_code=4)


@dataclass(frozen=True)
class PrometheusSetup:
    """Where the local Prometheus lives and how it runs; built from the settings by the command layer."""

    root: Path
    port: int
    scrape_interval_s: float
    start_timeout_s: float
    port_setting: str = "GDX_PROMETHEUS_PORT"
    host: str = "127.0.0.1"
    alertmanager: str | None = None
    """host:port of the Alertmanager that Prometheus sends its alerts to; None sends them nowhere."""
    rules_dir: Path = RULES_DIR
    ca_file: Path | None = None
    """The CA (PEM) an HTTPS target is verified with (the lookup API's: a target labelled
    `__scheme__: https`); None: the system's trust store."""

    @property
    def files(self) -> ServerFiles:
        return ServerFiles("prometheus", self.root)

    @property
    def listener(self) -> Listener:
        return Listener(self.host, self.port, self.port_setting, "GDX_PROMETHEUS_START_TIMEOUT_S")

    @property
    def config_file(self) -> Path:
        return self.files.config_file

    @property
    def pid_file(self) -> Path:
        return self.files.pid_file

    @property
    def log_file(self) -> Path:
        return self.files.log_file

    @property
    def data_dir(self) -> Path:
        return self.files.data_dir

    @property
    def targets_dir(self) -> Path:
        return self.root / "targets"

    @property
    def url(self) -> str:
        return self.listener.url


def prometheus_root(state_dir: Path) -> Path:
    """The directory of the local Prometheus under a state directory (the targets live inside it)."""
    return scrape_targets.targets_dir(state_dir).parent


def binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        raise PrometheusNotInstalled()
    return found


def _duration(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


def render_config(setup: PrometheusSetup) -> str:
    """The scrape configuration: every announced process, Prometheus itself, the project's rules, and
    the Alertmanager the alerts go to.

    Written as JSON, which is YAML too, so no YAML library is needed to generate it exactly.
    """
    interval = _duration(setup.scrape_interval_s)
    config = {
        "global": {
            "scrape_interval": interval,
            "scrape_timeout": _duration(min(setup.scrape_interval_s, 10.0)),
            "evaluation_interval": interval,
            "external_labels": {"exchange": "gdx-local"},
        },
        "rule_files": [str(setup.rules_dir.resolve() / "*.yml")],
        "scrape_configs": [
            {
                "job_name": SCRAPE_JOB,
                "file_sd_configs": [
                    {"files": [str(setup.targets_dir.resolve() / "*.json")], "refresh_interval": "30s"}
                ],
                # Used by the targets whose file says `__scheme__: https` only; the others stay plain.
                **({} if setup.ca_file is None else {"tls_config": {"ca_file": str(setup.ca_file.resolve())}}),
            },
            {"job_name": "prometheus", "static_configs": [{"targets": [f"{setup.host}:{setup.port}"]}]},
        ],
    }
    if setup.alertmanager is not None:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [setup.alertmanager]}]}]}
    header = "# written by `gdx prometheus up`; edits are overwritten — change the settings instead\n"
    return header + json.dumps(config, indent=2) + "\n"


def state(setup: PrometheusSetup) -> ProcessState:
    return local_server.state(setup.files)


@dataclass(frozen=True)
class UpResult:
    url: str
    started: bool
    seconds: float


def up(setup: PrometheusSetup) -> UpResult:
    """Start Prometheus in the background (or reload the running one) and wait until it is ready."""
    executable = binary()
    setup.root.mkdir(parents=True, exist_ok=True)
    setup.targets_dir.mkdir(parents=True, exist_ok=True)
    scrape_targets.prune_dead(setup.targets_dir)
    setup.config_file.write_text(render_config(setup))
    command = [
        executable,
        f"--config.file={setup.config_file.resolve()}",
        f"--storage.tsdb.path={setup.data_dir.resolve()}",
        "--storage.tsdb.retention.time=2d",
        f"--web.listen-address={setup.host}:{setup.port}",
        "--web.enable-lifecycle",
    ]
    started, seconds = local_server.up(setup.files, setup.listener, command, setup.start_timeout_s)
    return UpResult(setup.url, started=started, seconds=seconds)


def down(setup: PrometheusSetup, purge: bool = False) -> list[str]:
    """Stop the local Prometheus; with `purge` also delete its stored samples and log."""
    return local_server.down(setup.files, purge)


@dataclass(frozen=True)
class TargetHealth:
    process: str
    address: str
    health: str
    last_error: str


def target_health(setup: PrometheusSetup) -> list[TargetHealth]:
    """What Prometheus itself says about each scraped process (from its HTTP API)."""
    status, body = http_get(f"{setup.url}/api/v1/targets?state=active", timeout=5)
    if status != 200:
        raise GdxError(f"Prometheus at {setup.url} answered {status} to /api/v1/targets", f"see {setup.log_file}")
    active = json.loads(body)["data"]["activeTargets"]
    return [
        TargetHealth(
            process=t["labels"].get("process", t["labels"].get("job", "?")),
            address=t["labels"].get("instance", t.get("scrapeUrl", "?")),
            health=t["health"],
            last_error=t.get("lastError", ""),
        )
        for t in active
    ]
