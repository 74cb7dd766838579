"""The project's own schema registry: Apicurio Registry on loopback, over HTTPS only, in the background.

Everything it owns lives under `<state_dir>/registry/` (mode 0700): `registry.pid`, `registry.log`,
`data/` (the H2 database: subjects, schemas and their ids survive a restart), and two files
rewritten 0600 at every start: `config/application.properties`, which Quarkus reads from the
working directory (so the truststore's password is in no command line, environment or
world-readable file), and `truststore.p12`, the project CA.

Secured as the broker is: the only listener is HTTPS on 127.0.0.1 (`insecure-requests=disabled`,
no plain port), its certificate issued by the project CA (principal `schema-registry`), and a
client certificate from that same CA is required. Who may write is decided by that certificate's
CN (deploy/registry's filter): every holder reads, `gdx-operator` changes anything, and under the
development profile the simulated agencies may register schemas (as Confluent's serializers do with
`auto.register.schemas`), which the registry accepts only when the subject's compatibility rule
allows; a principal revoked by `gdx pki revoke` is refused everything. The rule is written at
start: a registry keeps its profile's rule and its list of the revoked until restarted.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

from foundation.errors import GdxError
from foundation.ports import port_in_use
from foundation.schema_registry import SchemaRegistry
from foundation.secret_files import write_private
from streams.local.kafka_jars import java_binary
from streams.local.local_server import ProcessState, stop_pid
from streams.local.registry_build import ensure_build, registry_version
from streams.security import principals
from streams.security.pki import Pki
from streams.settings import Settings

HEAP = "256m"
START_TIMEOUT_S = 120.0
"""About 4 s on a laptop-class machine; a loaded CI runner starting the broker beside it is slower."""
EXIT_NOT_RUNNING = 3
_HOME_MARK = "-Dgdx.registry.home="
_KEPT_ENVIRONMENT = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "JAVA_HOME")
"""All the JVM inherits: Quarkus and Apicurio read settings from many environment variables
(QUARKUS_*, REGISTRY_*, AUTH_ENABLED, …), which would override the generated configuration."""


@dataclass(frozen=True)
class RegistryFiles:
    """Where the local registry keeps its pid, log, database and generated configuration."""

    root: Path

    @property
    def pid_file(self) -> Path:
        return self.root / "registry.pid"

    @property
    def log_file(self) -> Path:
        return self.root / "registry.log"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def config_file(self) -> Path:
        return self.root / "config" / "application.properties"

    @property
    def truststore(self) -> Path:
        return self.root / "truststore.p12"


@dataclass(frozen=True)
class UpResult:
    url: str
    seconds: float
    started: bool
    pid: int


def files_of(settings: Settings) -> RegistryFiles:
    return RegistryFiles(settings.state_dir.resolve() / "registry")


def _is_ours(pid: int, files: RegistryFiles) -> bool:
    """True only while `pid` runs the registry of this state directory (a recycled pid is not ours)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return f"{_HOME_MARK}{files.root}\0" in cmdline


def state(files: RegistryFiles) -> ProcessState:
    if not files.pid_file.is_file():
        return ProcessState(None, running=False, stale=False)
    try:
        pid = int(files.pid_file.read_text().strip())
    except ValueError:
        return ProcessState(None, running=False, stale=True)
    running = _is_ours(pid, files)
    return ProcessState(pid, running=running, stale=not running)


def probe(settings: Settings) -> SchemaRegistry:
    """The registry of `settings` (local or external) as the operator reaches it, quick to give up."""
    return SchemaRegistry(settings.registry_for(principals.OPERATOR), timeout_s=2.0)


def who_writes(settings: Settings) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(principals that change anything, principals that may only register a schema)."""
    registrars = principals.AGENCIES if settings.profile == "development" else ()
    return (principals.OPERATOR,), registrars


def render_config(settings: Settings, files: RegistryFiles, truststore_password: str) -> str:
    pki = Pki.of(settings.state_dir.resolve())
    server = pki.paths(principals.REGISTRY)
    writers, registrars = who_writes(settings)
    lines = {
        "quarkus.http.host": "127.0.0.1",
        "quarkus.http.ssl-port": settings.schema_registry_port,
        "quarkus.http.insecure-requests": "disabled",
        "quarkus.http.ssl.certificate.files": server.cert,
        "quarkus.http.ssl.certificate.key-files": server.key,
        "quarkus.http.ssl.certificate.trust-store-file": files.truststore,
        "quarkus.http.ssl.certificate.trust-store-file-type": "PKCS12",
        "quarkus.http.ssl.certificate.trust-store-password": truststore_password,
        "gdx.registry.writers": ",".join(writers),
        "gdx.registry.registrars": ",".join(registrars),
        "gdx.registry.revoked": ",".join(sorted(pki.revoked())),
        # An H2 database in a file needs few connections; Apicurio's production default holds 20 open.
        "%prod.quarkus.datasource.jdbc.initial-size": 2,
        "%prod.quarkus.datasource.jdbc.min-size": 2,
    }
    body = "\n".join(f"{key}={value}" for key, value in lines.items() if value != "")
    return f"# written by `gdx registry up` at every start; edits are overwritten\n{body}\n"


def _prepare(settings: Settings, files: RegistryFiles) -> None:
    """The server certificate, the truststore and the configuration, before every start."""
    pki = Pki.of(settings.state_dir.resolve())
    pki.ensure(principals.REGISTRY, server=True)
    password = secrets.token_urlsafe(24)
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    truststore = pkcs12.serialize_java_truststore(
        [pkcs12.PKCS12Certificate(ca, b"gdx-ca")], BestAvailableEncryption(password.encode())
    )
    files.config_file.parent.mkdir(mode=0o700, exist_ok=True)
    files.data_dir.mkdir(mode=0o700, exist_ok=True)
    write_private(files.truststore, truststore)
    write_private(files.config_file, render_config(settings, files, password).encode())


def command(java: str, jar: Path, files: RegistryFiles) -> list[str]:
    return [
        java,
        "-Xms32m",
        f"-Xmx{HEAP}",
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",  # C1 only: a second off the start and less memory; the clients cache ids
        "-XX:-UsePerfData",
        "-Djava.awt.headless=true",
        f"{_HOME_MARK}{files.root}",
        # Narayana's default process id binds a listening socket on a random port; a UUID binds none.
        "-DCoreEnvironmentBean.processImplementationClassName=com.arjuna.ats.internal.arjuna.utils.UuidProcessId",
        "-jar",
        str(jar),
    ]


def _environment(files: RegistryFiles) -> dict[str, str]:
    kept = {name: os.environ[name] for name in _KEPT_ENVIRONMENT if name in os.environ}
    return {**kept, "REGISTRY_DATASOURCE_URL": f"jdbc:h2:file:{files.data_dir / 'registry'}"}


def log_tail(files: RegistryFiles, lines: int = 8) -> str:
    """The log's last error lines (Quarkus's reason precedes a long stack trace), else its last lines."""
    if not files.log_file.is_file():
        return "(no log)"
    text = files.log_file.read_text(errors="replace").splitlines()
    errors = [line for line in text if " ERROR " in line]
    return "\n".join((errors or text)[-lines:]) or "(empty log)"


def up(settings: Settings, report: bool = True) -> UpResult:
    """Start the local registry unless ours already runs, and wait until it answers the operator."""
    if settings.external_registry:
        raise GdxError(
            f"GDX_SCHEMA_REGISTRY_URL names an external registry ({settings.schema_registry_url}); "
            "nothing local is started",
            "use `gdx registry status` to check it, or unset GDX_SCHEMA_REGISTRY_URL to run the local one",
        )
    files = files_of(settings)
    url = settings.local_registry_url
    began = time.monotonic()
    current = state(files)
    if current.running and current.pid is not None:
        _await_ready(settings, files, None, began)
        if report:
            print(f"schema registry: already running (pid {current.pid}) at {url}", flush=True)
        return UpResult(url, time.monotonic() - began, started=False, pid=current.pid)
    if current.stale:
        files.pid_file.unlink()
    if port_in_use(settings.schema_registry_port):
        raise GdxError(
            f"port {settings.schema_registry_port} on 127.0.0.1 is already in use by another process "
            "(needed by the schema registry)",
            "stop that process, or choose another port with GDX_SCHEMA_REGISTRY_PORT",
        )
    java = java_binary(f"the schema registry (Apicurio {registry_version()})")
    jar = ensure_build(settings, quiet=not report)
    files.root.mkdir(mode=0o700, parents=True, exist_ok=True)
    _prepare(settings, files)
    with files.log_file.open("ab") as log:
        process = subprocess.Popen(
            command(java, jar, files),
            cwd=files.root,
            env=_environment(files),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    files.pid_file.write_text(f"{process.pid}\n")
    if report:
        print(f"schema registry: started pid {process.pid}, log {files.log_file}", flush=True)
    _await_ready(settings, files, process, began)
    seconds = time.monotonic() - began
    if report:
        print(f"schema registry (Apicurio {registry_version()}) ready in {seconds:.1f} s at {url}", flush=True)
    return UpResult(url, seconds, started=True, pid=process.pid)


def _await_ready(
    settings: Settings, files: RegistryFiles, process: subprocess.Popen[bytes] | None, began: float
) -> None:
    """Poll the registry as the operator until it answers; a started process that exits or stays
    unready is stopped and raised as one GdxError with its log's tail."""
    registry = probe(settings)
    while time.monotonic() < began + START_TIMEOUT_S:
        if process is not None and process.poll() is not None:
            files.pid_file.unlink(missing_ok=True)
            raise GdxError(
                f"the schema registry exited with code {process.returncode} while starting:\n{log_tail(files)}",
                f"read {files.log_file}",
            )
        if registry.ready():
            return
        time.sleep(0.2)
    if process is not None:
        stop_pid(process.pid)
        files.pid_file.unlink(missing_ok=True)
    raise GdxError(
        f"the schema registry did not answer at {settings.local_registry_url} within {START_TIMEOUT_S:g} s:\n"
        f"{log_tail(files)}",
        f"read {files.log_file}; `gdx registry down` and `gdx registry up` restart it",
    )


def down(settings: Settings, purge: bool = False) -> list[str]:
    """Stop the local registry (SIGTERM, then SIGKILL after a grace period); with `purge` also
    delete its database, log and generated files."""
    files = files_of(settings)
    current = state(files)
    if current.running and current.pid is not None:
        graceful = stop_pid(current.pid)
        lines = [f"schema registry: {'stopped' if graceful else 'killed after the grace period'} (pid {current.pid})"]
    elif current.stale:
        lines = [f"schema registry: was not running (stale pid file {files.pid_file} removed)"]
    else:
        lines = ["schema registry: not running"]
    files.pid_file.unlink(missing_ok=True)
    if purge and files.root.exists():
        shutil.rmtree(files.root)
        lines.append(f"schema registry: removed {files.root}")
    return lines
