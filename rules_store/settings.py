"""The one settings object, read from `XSELL_*` environment variables at the entry point.

Unset Kafka or Redis addresses mean "use the embedded runtime": `xsell` then starts (or
finds) its own broker and Redis on loopback. Secrets are `SecretStr` with no default, so
they never show in a repr, a log line or `xsell doctor`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rules_store.errors import ConfigError

ENV_PREFIX = "XSELL_"

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "xsell"


class Settings(BaseSettings):
    """Every address, credential and tunable of the engine."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", frozen=True, env_ignore_empty=True
    )

    kafka_brokers: str | None = Field(
        None, description="Bootstrap servers, host:port[,host:port]; unset = embedded broker"
    )
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    kafka_ssl_key_password: SecretStr | None = None

    redis_url: str | None = Field(
        None, description="redis://host:port/db or rediss://...; unset = embedded Redis"
    )
    redis_username: str | None = None
    redis_password: SecretStr | None = None
    redis_ssl_cafile: Path | None = None
    redis_key_prefix: str = Field("xsell", min_length=1)

    topic_prefix: str = Field("xsell", pattern=r"^[A-Za-z0-9._-]+$")
    topic_partitions: int = Field(4, ge=1, le=1024)
    topic_replication: int = Field(1, ge=1, le=16)
    fetch_max_wait_ms: int | None = Field(
        None,
        ge=1,
        le=60_000,
        description="How long a worker's fetch may wait for data; unset = 20 on the embedded "
        "broker (it holds every fetch that long), Faust's 1500 on a real cluster",
    )

    cooldown_days: int = Field(
        30, ge=0, description="Days before the same product is offered again"
    )
    max_alerts_per_day: int = Field(2, ge=0, description="Cross-sell alerts per customer per day")

    attribution_days: int = Field(
        30,
        ge=1,
        le=366,
        description="An opening of an offered product within this many days (event time) "
        "counts as the offer accepted",
    )
    decline_cooldown_days: int = Field(
        90, ge=0, description="Days a declined product is not offered to that customer again"
    )
    adaptive: bool = Field(
        True, description="Order offers by the ranker's score times the learned acceptance"
    )
    thompson: bool = Field(
        True,
        description="Draw the learned acceptance from its posterior (so uncertain products "
        "get tried) instead of taking its mean",
    )
    prior_strength: float = Field(
        20.0,
        gt=0,
        le=1e6,
        description="Outcomes' worth of weight given to the prior acceptance rate",
    )
    prior_acceptance: float = Field(
        0.1,
        gt=0,
        lt=1,
        description="The acceptance rate assumed for an offer before any outcome",
    )

    churn_threshold: float = Field(
        0.5, gt=0, lt=1, description="Churn alert when the month's average falls by more than this"
    )
    churn_grace_days: int = Field(
        3, ge=0, le=31, description="How many days late an event may still correct balances"
    )
    max_future_days: int = Field(
        1,
        ge=0,
        le=366,
        description="How many days after the later of the partition's clock and today an event "
        "may be dated; later ones are dead-lettered",
    )
    stall_seconds: float = Field(
        30.0,
        gt=0,
        description="A partition with records waiting whose committed offset has not moved "
        "for this long is stalled: logged, counted, sent back to its committed offset, and "
        "/health fails",
    )
    batch_size: int = Field(500, ge=1, description="Events a worker takes at once, at most")
    producer_linger_ms: int = Field(
        5,
        ge=0,
        le=1000,
        description="How long a worker's producer gathers alerts and table writes into one "
        "request (Faust's default 0 sends each on its own)",
    )

    web_host: str = "127.0.0.1"
    web_port: int = Field(6066, ge=0, le=65535)
    api_token: SecretStr | None = Field(
        None,
        description="Bearer token the REST API and dashboard ask for; unset = no token asked",
    )
    api_max_body_bytes: int = Field(
        64 * 1024, ge=1024, le=16 * 1024 * 1024, description="Largest request body the API reads"
    )

    state_dir: Path = Field(default_factory=_default_state_dir)
    table_store: Literal["rocksdb", "memory"] = Field(
        "rocksdb",
        description="Where a worker keeps the holdings table: RocksDB on disk (a restart reads "
        "only the changelog's tail) or memory (a restart reads the whole changelog)",
    )
    table_dir: Path | None = Field(
        None,
        description="Where workers keep their RocksDB tables, each in its own worker-N "
        "directory; unset = beside the embedded broker (removed with it) or "
        "$XSELL_STATE_DIR/tables",
    )
    standby_replicas: int = Field(
        1,
        ge=0,
        le=8,
        description="Standby copies of each table partition, kept by the group's other "
        "workers: a takeover then reads only the changelog's tail, for a worker's extra "
        "reading of the others' changelogs; 0 = none, a takeover reads the whole partition",
    )
    state_cache_size: int = Field(
        50_000, ge=0, description="Decoded customer states a worker keeps in memory, at most"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "text"] = "auto"

    @field_validator("kafka_brokers")
    @classmethod
    def _check_brokers(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit():
                msg = f"broker {server.strip()!r} is not host:port"
                raise ValueError(msg)
        return value.strip()

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in {"redis", "rediss", "unix"}:
            msg = f"scheme {parts.scheme!r} is not one of redis, rediss, unix"
            raise ValueError(msg)
        if parts.password:
            # A password inside a URL ends up in logs and process listings.
            msg = "the URL carries a password; put it in XSELL_REDIS_PASSWORD instead"
            raise ValueError(msg)
        return value.strip()

    @model_validator(mode="after")
    def _check_sasl(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL_"):
            missing = [
                f"{ENV_PREFIX}{name.upper()}"
                for name in ("kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password")
                if getattr(self, name) is None
            ]
            if missing:
                msg = f"{self.kafka_security_protocol} needs {', '.join(missing)}"
                raise ValueError(msg)
        return self

    @property
    def run_file(self) -> Path:
        """Where a running embedded stack announces its addresses to other commands."""
        return self.state_dir / "embedded.json"


def load_settings() -> Settings:
    """Read the settings from the environment, turning validation errors into one clear message."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{ENV_PREFIX}{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            if err["loc"]
            else err["msg"]
            for err in exc.errors()
        )
        msg = f"invalid configuration: {problems}"
        raise ConfigError(msg) from exc


@dataclass(frozen=True)
class Endpoints:
    """Where the broker and Redis actually are, once configuration and the embedded runtime agree.

    `embedded_broker` is true for the bundled Tansu broker, whose group joins need short
    session timeouts; a real Kafka cluster keeps Kafka's usual values. Embedded services
    are plain, password-less loopback servers, so configured credentials do not apply.
    """

    kafka_bootstrap: str
    redis_url: str
    embedded_broker: bool
    embedded_redis: bool
    # The embedded stack's run directory: what lives only as long as its broker (whose
    # topics are in memory) goes there, e.g. the workers' RocksDB tables.
    stack_dir: Path | None = None
