"""One settings object for every process, read from the environment and an optional TOML file.

Precedence (highest first): explicit arguments, environment variables (`GDX_*`, plus the
conventional `KAFKA_BOOTSTRAP_SERVERS`), the settings file (`GDX_SETTINGS_FILE`, else `gdx.toml`
in the working directory), then the defaults below.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from foundation.errors import GdxError
from foundation.kafka_clients import KafkaClients

DEFAULT_SETTINGS_FILE = "gdx.toml"


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
    index_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the linkage index; unset: SQLite at <state_dir>/index.db",
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
    agencies_metrics_port: int = Field(
        default=0, ge=0, le=65535, description="/metrics port of `gdx simulate` (0: a free one, announced)"
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
    consumers_file: Path | None = Field(
        default=None, description="registry of consumer agencies (TOML); unset: linkage/consumers.toml"
    )
    audit_key_file: Path | None = Field(
        default=None, description="HMAC key that signs audit checkpoints; unset: <state_dir>/audit.key (made once)"
    )
    audit_partition: int = Field(
        default=0, ge=0, description="the gdx.audit partition (hash chain) this lookup process writes; one writer each"
    )
    audit_checkpoint_interval_s: float = Field(
        default=60.0,
        gt=0,
        le=3600.0,
        description="how often the lookup API seals its audit chain with a signed checkpoint",
    )
    topic_prefix: str = Field(
        default="", pattern=r"^[a-z0-9._-]*$", description="prepended to every topic name (isolation)"
    )

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

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
        # Not cached: `model_copy` copies a cached value, so a copy with more brokers would keep the old list.
        """Where clients connect: the external cluster, or the local brokers' client ports."""
        if self.kafka_bootstrap_servers:
            return self.kafka_bootstrap_servers
        return ",".join(f"127.0.0.1:{self.client_port(n)}" for n in range(1, self.kafka_brokers + 1))

    @property
    def kafka(self) -> KafkaClients:
        """The factory every Kafka client of this configuration is built by."""
        return KafkaClients(self.bootstrap_servers)

    @property
    def audit_key_path(self) -> Path:
        """The lookup API's audit signing key: the configured file, or one in the state directory."""
        return self.audit_key_file or self.state_dir / "audit.key"

    @property
    def index_database_url(self) -> str:
        """The linkage index's database: the configured URL, or the embedded SQLite default."""
        return self.index_url or f"sqlite:///{(self.state_dir / 'index.db').resolve()}"

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

    def topic(self, name: str) -> str:
        """The physical name of a catalog topic under this environment's prefix."""
        return f"{self.topic_prefix}{name}"


def load_settings(**overrides: object) -> Settings:
    """Read settings, turning a malformed value or settings file into a GdxError that names it."""
    import tomllib

    from pydantic import ValidationError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except tomllib.TOMLDecodeError as exc:
        raise GdxError(f"settings file {settings_file()} is not valid TOML: {exc}", "fix the file") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise GdxError(f"invalid settings: {problems}", "fix the environment variable or settings file") from None
