"""One settings object for every process, read from the environment and an optional TOML file.

Precedence (highest first): explicit arguments, environment variables (`GDX_*`, plus the
conventional `KAFKA_BOOTSTRAP_SERVERS`), the settings file (`GDX_SETTINGS_FILE`, else `gdx.toml`
in the working directory), then the defaults below.
"""

from __future__ import annotations

import logging
import os
import urllib.parse
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from foundation.errors import GdxError, located
from foundation.kafka_clients import ClientSecurity, KafkaClients, SecurityProtocol
from foundation.schema_registry import RegistryAccess
from linkage.index_store import MAX_VERSION_JUMP

DEFAULT_SETTINGS_FILE = "gdx.toml"
LocalSecurity = Literal["plaintext", "mtls", "scram"]
log = logging.getLogger("gdx.settings")
_warned_plaintext: set[str] = set()


def _external(name: str) -> AliasChoices:
    """The conventional unprefixed variable, the GDX_ one, and the settings file's name."""
    return AliasChoices(name.upper(), f"GDX_{name.upper()}", name)


LOCAL_PROTOCOLS: dict[str, SecurityProtocol] = {"plaintext": "PLAINTEXT", "mtls": "SSL", "scram": "SASL_SSL"}
"""What clients of the local broker speak under each GDX_KAFKA_SECURITY."""


def settings_file() -> Path | None:
    """The TOML file to read, or None; a file named explicitly must exist."""
    named = os.environ.get("GDX_SETTINGS_FILE")
    if named:
        path = Path(named)
        if not path.is_file():
            raise GdxError(
                f"settings file {path} (from GDX_SETTINGS_FILE) does not exist",
                "create it or unset GDX_SETTINGS_FILE",
            )
        return path
    default = Path(DEFAULT_SETTINGS_FILE)
    return default if default.is_file() else None


class Settings(BaseSettings):
    """Everything a GDX process needs to know about its environment."""

    model_config = SettingsConfigDict(env_prefix="GDX_", populate_by_name=True, extra="forbid")

    kafka_bootstrap_servers: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "KAFKA_BOOTSTRAP_SERVERS", "GDX_KAFKA_BOOTSTRAP_SERVERS", "kafka_bootstrap_servers"
        ),
        description="An external cluster (host:port,...). Unset: the project's own local broker.",
    )
    state_dir: Path = Field(default=Path(".gdx"), description="pid, logs and data of local services")
    cache_dir: Path = Field(
        default=Path.home() / ".cache" / "gdx", description="downloaded artefacts (Kafka jars), outside git"
    )
    kafka_port: int = Field(default=9092, ge=1024, le=65000, description="client port of broker 1")
    kafka_brokers: int = Field(default=1, ge=1, le=5, description="local brokers to start")
    kafka_heap: str = Field(default="512m", pattern=r"^\d+[mg]$", description="JVM heap per broker")
    kafka_start_timeout_s: float = Field(default=90.0, gt=0, description="wait for a broker to answer")
    kafka_request_timeout_s: float = Field(default=15.0, gt=0, description="admin and metadata calls")
    kafka_security: LocalSecurity = Field(
        default="mtls",
        description="the local broker's listeners: mtls (the default: TLS with client certificates from the "
        "project CA on every listener), scram (clients: SASL_SSL SCRAM-SHA-512; brokers: mTLS), or plaintext "
        "(no TLS, no authorizer: a baseline for comparisons only)",
    )
    kafka_internal_port: int | None = Field(
        default=None,
        ge=1024,
        le=65000,
        description="inter-broker port of local broker 1 under scram (broker n: +n-1); unset: GDX_KAFKA_PORT + 10",
    )
    kafka_security_protocol: SecurityProtocol | None = Field(
        default=None,
        validation_alias=_external("kafka_security_protocol"),
        description="an external cluster's protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
    )
    kafka_ssl_cafile: Path | None = Field(
        default=None,
        validation_alias=_external("kafka_ssl_cafile"),
        description="CA bundle (PEM) of an external cluster",
    )
    kafka_ssl_certfile: Path | None = Field(
        default=None, validation_alias=_external("kafka_ssl_certfile"), description="client certificate (PEM)"
    )
    kafka_ssl_keyfile: Path | None = Field(
        default=None, validation_alias=_external("kafka_ssl_keyfile"), description="client private key (PEM)"
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        default=None, validation_alias=_external("kafka_sasl_mechanism"), description="SASL mechanism"
    )
    kafka_sasl_username: str | None = Field(
        default=None, validation_alias=_external("kafka_sasl_username"), description="SASL user name"
    )
    kafka_sasl_password_file: Path | None = Field(
        default=None,
        validation_alias=_external("kafka_sasl_password_file"),
        description="file holding the SASL password (never the password itself in a variable)",
    )
    index_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the linkage index; unset: SQLite at <state_dir>/index.db",
    )
    schema_registry_url: str | None = Field(
        default=None,
        description="a Confluent-compatible schema registry (its API root, e.g. https://host:8081); "
        "unset: the project's own registry on loopback (GDX_SCHEMA_REGISTRY_PORT)",
    )
    schema_registry_port: int = Field(default=8081, ge=1024, le=65000, description="port of the local registry")
    schema_registry_ca: Path | None = Field(default=None, description="CA bundle (PEM) of an external registry")
    schema_registry_certfile: Path | None = Field(
        default=None, description="client certificate (PEM) for an external registry that asks for one"
    )
    schema_registry_keyfile: Path | None = Field(default=None, description="its private key (PEM)")
    schema_registry_username: str | None = Field(default=None, description="basic-auth user of an external registry")
    schema_registry_password_file: Path | None = Field(
        default=None, description="file holding that user's password (never the password itself in a variable)"
    )
    prometheus_port: int = Field(
        default=9090, ge=1024, le=65535, description="the project's own Prometheus (127.0.0.1)"
    )
    prometheus_scrape_interval_s: float = Field(
        default=5.0, ge=1.0, le=60.0, description="scrape and rule-evaluation interval of the local Prometheus"
    )
    prometheus_start_timeout_s: float = Field(default=30.0, gt=0, description="wait for Prometheus to be ready")
    prometheus_url: str | None = Field(
        default=None,
        pattern=r"^https?://\S+$",
        description="the Prometheus the lookup API's status page reads; unset: the project's own on prometheus_port",
    )
    alertmanager_port: int = Field(
        default=9099, ge=1024, le=65535, description="the project's own Alertmanager (127.0.0.1)"
    )
    alert_receiver_port: int = Field(
        default=9098, ge=1024, le=65535, description="the alert receiver (`gdx alerts --serve`), Alertmanager's webhook"
    )
    alert_receiver_url: str | None = Field(
        default=None,
        description="the alert receiver the status page and `gdx alerts` read; "
        "unset: the local one on alert_receiver_port",
    )
    lag_monitor_port: int = Field(
        default=0, ge=0, le=65535, description="/metrics port of the lag monitor (0: a free one, announced)"
    )
    lag_interval_s: float = Field(default=5.0, ge=0.2, le=300.0, description="how often the lag monitor measures")
    worker_metrics_port: int = Field(
        default=0, ge=0, le=65535, description="/metrics port of a stream worker (0: a free one, announced)"
    )
    worker_stop_timeout_s: float = Field(
        default=30.0,
        gt=0,
        le=600.0,
        description="how long a stream worker's graceful stop may take before it exits anyway "
        "(uncommitted batches are delivered again)",
    )
    worker_session_timeout_s: float = Field(
        default=15.0,
        ge=6.0,
        le=300.0,
        description="how long the group waits for a silent worker before its partitions go to the others: "
        "a killed worker's partitions stand still this long (from 6, the broker's least)",
    )
    agencies_metrics_port: int = Field(
        default=0, ge=0, le=65535, description="/metrics port of `gdx simulate` (0: a free one, announced)"
    )
    profile: Literal["development", "production"] = Field(
        default="development",
        description="production: every process refuses to start on an unsafe set-up (plaintext, demo keys, "
        "keys others can read, a database password in the URL); development: `make run`'s stack",
    )
    lookup_host: str = Field(default="127.0.0.1", description="address the lookup API listens on")
    lookup_port: int = Field(default=8080, ge=0, le=65535, description="port of the lookup API (0: a free one)")
    lookup_workers: int = Field(
        default=1,
        ge=1,
        le=16,
        description="lookup API processes sharing its port; "
        "each writes its own gdx.audit partition from audit_partition on",
    )
    lookup_tls: Literal["on", "off"] = Field(
        default="on",
        description="HTTPS for the lookup API (certificate from the project CA, or lookup_tls_cert/key); "
        "off: plain HTTP, for development only (one warning line)",
    )
    lookup_tls_cert: Path | None = Field(
        default=None, description="an operator's certificate chain for the lookup API (PEM); unset: the project CA's"
    )
    lookup_tls_key: Path | None = Field(default=None, description="the private key of lookup_tls_cert (PEM)")
    lookup_tls_ca: Path | None = Field(
        default=None,
        description="the CA bundle the stack verifies the lookup API with (its probes, Prometheus); "
        "unset: the project CA, or the system's trust store for an operator's certificate",
    )
    consumers_file: Path | None = Field(
        default=None, description="registry of consumer agencies (TOML); unset: linkage/consumers.toml"
    )
    audit_keys_dir: Path | None = Field(
        default=None,
        description="the lookup API's audit signing keys (Ed25519) and their trust list; "
        "unset: <state_dir>/audit-keys (the first key made once)",
    )
    audit_trust_list_file: Path | None = Field(
        default=None,
        description="the audit keys' public halves, all `gdx audit verify` needs; unset: trust-list.json "
        "in audit_keys_dir",
    )
    subject_token_keys_dir: Path | None = Field(
        default=None,
        description="the keys consumers sign data subjects' access-log tokens with, and their trust list "
        "(owner = consumer id); unset: <state_dir>/subject-token-keys",
    )
    subject_token_trust_list_file: Path | None = Field(
        default=None,
        description="the consumers' public subject-token keys the lookup API checks; unset: trust-list.json in "
        "subject_token_keys_dir",
    )
    consent_keys_dir: Path | None = Field(
        default=None,
        description="the consent service's signing keys and their trust list; unset: <state_dir>/consent-keys",
    )
    consent_trust_list_file: Path | None = Field(
        default=None,
        description="the consent service's public keys the lookup API checks every consent record against; "
        "unset: trust-list.json in consent_keys_dir",
    )
    audit_partition: int = Field(
        default=0, ge=0, description="the gdx.audit partition (hash chain) this lookup process writes; one writer each"
    )
    worker_audit_partition: int | None = Field(
        default=None,
        ge=0,
        description="the gdx.audit partition a stream worker chains its notices in; one writer each "
        "(unset: the first after the lookup API's, audit_partition + lookup_workers)",
    )
    audit_checkpoint_interval_s: float = Field(
        default=60.0,
        gt=0,
        le=3600.0,
        description="how often each audit chain's writer (a lookup process, a stream worker) seals its chain "
        "with a signed checkpoint",
    )
    audit_max_unsealed_s: float = Field(
        default=600.0,
        gt=0,
        description="the lookup API stops answering when its audit chain has not been sealed "
        "(checkpoint written and anchored) for this long",
    )
    topic_prefix: str = Field(
        default="", pattern=r"^[a-z0-9._-]*$", description="prepended to every topic name (isolation)"
    )
    trust_list_file: Path | None = Field(
        default=None,
        description="the agencies' event-signing public keys (JSON); unset: <state_dir>/signing/trust-list.json",
    )
    signature_policy: dict[str, Literal["require", "accept-unsigned"]] = Field(
        default_factory=dict,
        description='per agency, whether the worker requires signed events (JSON, e.g. {"dlt": "accept-unsigned"}); '
        "an agency not named: require",
    )
    max_version_jump: int = Field(
        default=MAX_VERSION_JUMP,
        ge=1,
        description="how far past the held version an event may leap before it is dead-lettered (version-jump)",
    )

    @field_validator("kafka_bootstrap_servers", "schema_registry_url")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("schema_registry_url")
    @classmethod
    def _no_password_in_the_url(cls, value: str | None) -> str | None:
        """A URL is logged and printed; a password in it would be too (it belongs in a file)."""
        if value is not None and urllib.parse.urlsplit(value).password is not None:
            raise ValueError("carries a password: put it in GDX_SCHEMA_REGISTRY_PASSWORD_FILE instead")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = settings_file()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @property
    def external_kafka(self) -> bool:
        """True when an external cluster is named, so nothing local may be started."""
        return self.kafka_bootstrap_servers is not None

    @property
    def bootstrap_servers(self) -> str:
        """Where clients connect: the external cluster, or the local brokers' client ports.

        Not cached: `model_copy` copies a cached value, so a copy with more brokers would keep the old list."""
        if self.kafka_bootstrap_servers:
            return self.kafka_bootstrap_servers
        return ",".join(f"127.0.0.1:{self.client_port(n)}" for n in range(1, self.kafka_brokers + 1))

    @property
    def kafka(self) -> KafkaClients:
        """The factory every Kafka client of this configuration is built by: an external cluster
        with its configured security, or the local broker as the operator (`kafka_as`)."""
        if self.external_kafka:
            return KafkaClients(self.bootstrap_servers, security=self.external_security())
        from streams.security.principals import OPERATOR

        return self.kafka_as(OPERATOR)

    def kafka_for(self, principal: str) -> KafkaClients:
        """The clients a process of the stack connects with: as `principal` on the local broker
        (least privilege: its own certificate or SCRAM login, never the operator's), or with the
        identity configured for an external cluster (KAFKA_SSL_* / KAFKA_SASL_*, one per process)."""
        return self.kafka if self.external_kafka else self.kafka_as(principal)

    @property
    def kafka_protocol(self) -> SecurityProtocol:
        """The security protocol clients reach the cluster with, known without building a client."""
        if self.external_kafka:
            return self.kafka_security_protocol or "PLAINTEXT"
        return LOCAL_PROTOCOLS[self.kafka_security]

    @property
    def secured(self) -> bool:
        """True when connections authenticate, so each process needs its own principal's rights."""
        return self.kafka_protocol != "PLAINTEXT"

    def external_security(self) -> ClientSecurity:
        """The connection security of the external cluster, from the KAFKA_SSL_* / KAFKA_SASL_* settings."""
        protocol = self.kafka_security_protocol or "PLAINTEXT"
        if protocol == "PLAINTEXT":
            servers = self.bootstrap_servers
            # One line per process, wherever the cluster is: loopback is no excuse now that the
            # local broker itself is secured by default.
            if servers not in _warned_plaintext:
                _warned_plaintext.add(servers)
                log.warning(
                    "Kafka cluster %s is reached in PLAINTEXT: unauthenticated and unencrypted "
                    "(set KAFKA_SECURITY_PROTOCOL=SSL or SASL_SSL with KAFKA_SSL_* / KAFKA_SASL_*)",
                    servers,
                )
            return ClientSecurity()
        if protocol.startswith("SASL") and not (self.kafka_sasl_username and self.kafka_sasl_password_file):
            raise GdxError(
                f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD_FILE",
                "set both (the password is read from the file, never from a variable)",
            )
        return ClientSecurity(
            security_protocol=protocol,
            cafile=self.kafka_ssl_cafile,
            certfile=self.kafka_ssl_certfile,
            keyfile=self.kafka_ssl_keyfile,
            sasl_mechanism=(self.kafka_sasl_mechanism or "SCRAM-SHA-512") if protocol.startswith("SASL") else None,
            sasl_username=self.kafka_sasl_username,
            sasl_password_file=self.kafka_sasl_password_file,
        )

    def kafka_as(self, principal: str) -> KafkaClients:
        """Clients of the local broker connecting as `principal`: its certificate from the project
        CA (mtls, issued on first use), or its SCRAM credentials (scram); plaintext: anonymous."""
        if self.external_kafka:
            raise GdxError(
                f"an external cluster ({self.kafka_bootstrap_servers}) has no local principals",
                "its identity is configured with KAFKA_SECURITY_PROTOCOL, KAFKA_SSL_* and KAFKA_SASL_*",
            )
        if self.kafka_security == "plaintext":
            return KafkaClients(self.bootstrap_servers)
        from streams.security.pki import Pki
        from streams.security.scram import MECHANISM, ScramStore

        state = self.state_dir.resolve()
        pki = Pki.of(state)
        if self.kafka_security == "mtls":
            issued = pki.ensure(principal)
            security = ClientSecurity("SSL", cafile=issued.ca, certfile=issued.cert, keyfile=issued.key)
        else:
            security = ClientSecurity(
                "SASL_SSL",
                cafile=pki.ensure_ca(),
                sasl_mechanism=MECHANISM,
                sasl_username=principal,
                sasl_password_file=ScramStore.of(state).password_file(principal),
            )
        return KafkaClients(self.bootstrap_servers, security=security)

    @property
    def external_registry(self) -> bool:
        """True when a registry is named, so the local one is neither started nor stopped."""
        return self.schema_registry_url is not None

    @property
    def local_registry_url(self) -> str:
        """The API root of the project's own registry (Apicurio's Confluent-compatible API)."""
        return f"https://127.0.0.1:{self.schema_registry_port}/apis/ccompat/v7"

    def registry_for(self, principal: str) -> RegistryAccess:
        """How a process reaches the schema registry: the external one with its configured CA,
        certificate and credentials, or the local one over mutual TLS as `principal`, with the
        same project-CA certificate it shows the broker."""
        if self.external_registry:
            assert self.schema_registry_url is not None
            return RegistryAccess(
                self.schema_registry_url,
                cafile=self.schema_registry_ca,
                certfile=self.schema_registry_certfile,
                keyfile=self.schema_registry_keyfile,
                username=self.schema_registry_username,
                password_file=self.schema_registry_password_file,
            )
        from streams.security.pki import Pki

        issued = Pki.of(self.state_dir.resolve()).ensure(principal)
        return RegistryAccess(self.local_registry_url, cafile=issued.ca, certfile=issued.cert, keyfile=issued.key)

    @property
    def trust_list_path(self) -> Path:
        from streams.security.signing_keys import SigningKeys

        return self.trust_list_file or SigningKeys.of(self.state_dir.resolve()).trust_list_path

    @property
    def audit_keys_path(self) -> Path:
        """Where the lookup API's audit signing keys live: the configured directory, or the state's."""
        return (self.audit_keys_dir or self.state_dir / "audit-keys").resolve()

    @property
    def subject_token_keys_path(self) -> Path:
        return (self.subject_token_keys_dir or self.state_dir / "subject-token-keys").resolve()

    @property
    def consent_keys_path(self) -> Path:
        return (self.consent_keys_dir or self.state_dir / "consent-keys").resolve()

    @property
    def consent_trust_list_path(self) -> Path:
        from streams.security.signing_keys import TRUST_LIST

        return self.consent_trust_list_file or self.consent_keys_path / TRUST_LIST

    @property
    def subject_token_trust_list_path(self) -> Path:
        from streams.security.signing_keys import TRUST_LIST

        return self.subject_token_trust_list_file or self.subject_token_keys_path / TRUST_LIST

    @property
    def notice_audit_partition(self) -> int:
        if self.worker_audit_partition is not None:
            return self.worker_audit_partition
        return self.audit_partition + self.lookup_workers

    @property
    def audit_trust_list_path(self) -> Path:
        from streams.security.signing_keys import TRUST_LIST

        return self.audit_trust_list_file or self.audit_keys_path / TRUST_LIST

    @property
    def index_database_url(self) -> str:
        """The linkage index's database: the configured URL, or the embedded SQLite default."""
        return self.index_url or f"sqlite:///{(self.state_dir / 'index.db').resolve()}"

    @property
    def lookup_scheme(self) -> str:
        return "http" if self.lookup_tls == "off" else "https"

    @property
    def lookup_ca_file(self) -> Path | None:
        """What a client of this stack verifies the lookup API's certificate with: the configured
        bundle, else the project CA (made on first use) unless an operator's certificate is set,
        whose issuer the system's trust store (None) is asked about."""
        if self.lookup_tls_ca is not None:
            return self.lookup_tls_ca
        if self.lookup_tls_cert is not None:
            return None
        from streams.security.pki import Pki

        return Pki.of(self.state_dir.resolve()).ensure_ca()

    @property
    def alert_receiver_base_url(self) -> str:
        """Where the alert receiver answers: the configured URL, or the local one."""
        return (self.alert_receiver_url or f"http://127.0.0.1:{self.alert_receiver_port}").rstrip("/")

    @property
    def prometheus_query_url(self) -> str:
        """Where the status page asks Prometheus: the configured URL, or the project's own."""
        return self.prometheus_url or f"http://127.0.0.1:{self.prometheus_port}"

    def client_port(self, node_id: int) -> int:
        """Client port of local broker `node_id` (1-based); controllers sit one above."""
        return self.kafka_port + 2 * (node_id - 1)

    def controller_port(self, node_id: int) -> int:
        return self.client_port(node_id) + 1

    def internal_port(self, node_id: int) -> int:
        """Inter-broker port of local broker `node_id`, used only when clients log in with SCRAM."""
        return (self.kafka_internal_port or self.kafka_port + 10) + node_id - 1

    def topic(self, name: str) -> str:
        """The physical name of a catalog topic under this environment's prefix."""
        return f"{self.topic_prefix}{name}"


CLIENT_VARIABLES = (
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SSL_CAFILE",
    "KAFKA_SSL_CERTFILE",
    "KAFKA_SSL_KEYFILE",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD_FILE",
)


def client_environment(kafka: KafkaClients) -> dict[str, str]:
    """The variables that make a child process's `Settings.kafka` the same clients as `kafka` (an
    external cluster to the child): the servers and their security, the password by its file."""
    security = kafka.security
    values: tuple[str | Path | None, ...] = (
        kafka.bootstrap_servers,
        security.security_protocol,
        security.cafile,
        security.certfile,
        security.keyfile,
        security.sasl_mechanism,
        security.sasl_username,
        security.sasl_password_file,
    )
    return {name: str(value) for name, value in zip(CLIENT_VARIABLES, values, strict=True) if value is not None}


REGISTRY_VARIABLES = (
    "GDX_SCHEMA_REGISTRY_PORT",
    "GDX_SCHEMA_REGISTRY_URL",
    "GDX_SCHEMA_REGISTRY_CA",
    "GDX_SCHEMA_REGISTRY_CERTFILE",
    "GDX_SCHEMA_REGISTRY_KEYFILE",
    "GDX_SCHEMA_REGISTRY_USERNAME",
    "GDX_SCHEMA_REGISTRY_PASSWORD_FILE",
)


def registry_environment(settings: Settings) -> dict[str, str]:
    """The variables that give a child process the same registry: an external one with its
    configured access, or the local one by its port (the child's own principal reaches it)."""
    if not settings.external_registry:
        return {"GDX_SCHEMA_REGISTRY_PORT": str(settings.schema_registry_port)}
    values = (
        settings.schema_registry_url,
        settings.schema_registry_ca,
        settings.schema_registry_certfile,
        settings.schema_registry_keyfile,
        settings.schema_registry_username,
        settings.schema_registry_password_file,
    )
    access = zip(REGISTRY_VARIABLES[1:], values, strict=True)
    return {name: str(value) for name, value in access if value is not None}


def load_settings(**overrides: object) -> Settings:
    """Read settings, turning a malformed value or settings file into a GdxError that names it."""
    import tomllib

    from pydantic import ValidationError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except tomllib.TOMLDecodeError as exc:
        raise GdxError(f"settings file {settings_file()} is not valid TOML: {exc}", "fix the file") from None
    except ValidationError as exc:
        raise GdxError(
            f"invalid settings: {located(exc.errors())}", "fix the environment variable or settings file"
        ) from None
