"""Settings: each has a command-line flag and an ``EDGEMETA_`` environment variable.

Flags win over the environment, the environment over the defaults. The database and the bus
are chosen by URL, never by code changes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from edgemeta.bus.security import BusSecurity
from edgemeta.bus.topics import valid_filter


def default_data_dir() -> Path:
    """$EDGEMETA_DATA_DIR, else $XDG_DATA_HOME/edgemeta, else ~/.local/share/edgemeta."""
    explicit = os.environ.get("EDGEMETA_DATA_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "edgemeta"


class Settings(BaseSettings):
    """Everything ``edgemeta serve`` can be told."""

    model_config = SettingsConfigDict(env_prefix="EDGEMETA_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(59881, ge=0, le=65535)
    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str = ""  # empty: an SQLite file in data_dir
    sqlite_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"

    bus_url: str = "memory://"
    bus_prefix: str = "edgex"
    bus_qos: int = Field(1, ge=0, le=2)
    # Broker credentials and TLS (docs/security.md); also in the URL (user:pass@, mqtts://,
    # tls://). The password file is read at start so the secret need not sit in the
    # environment.
    bus_username: str = ""
    bus_password: str = Field("", repr=False)
    bus_password_file: Path | None = None
    bus_tls: bool = False
    bus_ca_file: Path | None = None
    bus_cert_file: Path | None = None
    bus_key_file: Path | None = None
    name_escape: bool = False
    device_validation: Literal["auto", "always", "never"] = "auto"
    validation_timeout: float = Field(5.0, gt=0, le=300)
    event_retention_hours: float = Field(168.0, ge=0)

    move_ack_timeout: float = Field(5.0, gt=0, le=300)
    move_release_deadline: float = Field(0.5, ge=0, le=300)
    move_release_policy: Literal["rollback", "force"] = "rollback"
    implicit_moves: bool = False
    registration_wait: float = Field(10.0, ge=0, le=300)
    # X.509 registration (docs/provisioning.md): intermediates allowed between a device
    # certificate and the CA its enrolment names; how long a server nonce lives; the CA that
    # signs devices' CSRs (certificate and PKCS#8 key in files, the key optionally encrypted).
    x509_max_chain_depth: int = Field(4, ge=0, le=8)
    registration_challenge_ttl: int = Field(60, ge=1, le=3600)
    issuing_ca_cert_file: Path | None = None
    issuing_ca_key_file: Path | None = None
    issuing_ca_key_password_file: Path | None = None
    move_stale_after: float = Field(30.0, ge=0.1, le=86400)

    max_result_count: int = Field(1024, ge=1, le=1_000_000)
    max_request_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    max_batch: int = Field(5000, ge=1, le=1_000_000)  # requests in one batch body (413 above)
    max_devices: int = Field(0, ge=0)
    strict_profile_changes: bool = False
    strict_profile_deletes: bool = False
    uom_validation: bool = False
    uom_file: Path | None = None

    core_data: bool = True  # serve core-data (events and readings) in the same process
    data_port: int = Field(59880, ge=0, le=65535)
    data_ingest: bool = True  # store the events device services publish on the bus
    data_client_id: str = Field("edgemeta-core-data", min_length=1, max_length=128)
    data_batch: int = Field(500, ge=1, le=10_000)
    # The outbox relay and the bus ingest on a thread with their own loop and connections
    # (workers/background.py); only with a file database and a real broker.
    background_thread: bool = True
    # API processes sharing the ports (SO_REUSEPORT), under a supervisor (edgemeta/supervisor.py)
    workers: int = Field(1, ge=1, le=64)
    max_event_bytes: int = Field(25_000 * 1024, ge=1024)

    # core-keeper's key/value API (runtime-writable settings) in the same process
    core_keeper: bool = True
    keeper_port: int = Field(59890, ge=0, le=65535)
    keeper_reload_seconds: float = Field(5.0, ge=0, le=86400)  # 0: only at start

    # core-command (devices' commands, checked and routed to the owner) in the same process
    core_command: bool = True
    command_port: int = Field(59882, ge=0, le=65535)
    command_transport: Literal["bus", "rest"] = "bus"  # to the device service
    command_timeout: float = Field(5.0, gt=0, le=3600)  # for its answer (then 504)
    command_move_wait: float = Field(10.0, ge=0, le=3600)  # a move under way (then 409)
    # Commands from the north (edgemeta.north, docs/commands.md): EdgeX core-command's
    # ExternalMQTT, a request/response pair on an external broker. Off while the URL is empty.
    north_mqtt_url: str = ""
    north_mqtt_username: str = ""
    north_mqtt_password: str = Field("", repr=False)
    north_mqtt_password_file: Path | None = None
    north_mqtt_tls: bool = False
    north_mqtt_ca_file: Path | None = None
    north_mqtt_cert_file: Path | None = None
    north_mqtt_key_file: Path | None = None
    north_mqtt_client_id: str = Field("", max_length=128)  # empty: edgemeta-north-<random>
    north_mqtt_qos: int = Field(1, ge=0, le=2)
    north_query_request_topic: str = "edgex/commandquery/request/#"
    north_query_response_topic: str = "edgex/commandquery/response"
    north_command_request_topic: str = "edgex/command/request/#"
    north_command_response_topic_prefix: str = "edgex/command/response"
    north_max_in_flight: int = Field(64, ge=1, le=10_000)  # requests served at once

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Observability (docs/observability.md): log lines as text or JSON, one access-log line
    # per HTTP request, OpenTelemetry traces (off unless configured; the SDK loads only then).
    log_format: Literal["text", "json"] = "text"
    access_log: bool = False
    tracing: Literal["off", "otlp", "console"] = "off"
    otlp_endpoint: str = "http://127.0.0.1:4318/v1/traces"  # OTLP/HTTP's default
    trace_sample_ratio: float = Field(1.0, ge=0, le=1)
    tracing_service_name: str = Field("core-metadata", min_length=1, max_length=256)
    # GET /metrics (Prometheus text format, docs/metrics.md) and the HTTP instrumentation.
    metrics: bool = True
    # A port of its own for GET /metrics (0: none, it is served on the core-metadata port);
    # when set, /metrics is served there instead, on metrics_host (loopback by default).
    metrics_port: int = Field(0, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    # EdgeX service metrics on <prefix>/telemetry/core-metadata/<name> every so many
    # seconds (EdgeX's default 30); 0: off. Needs metrics on.
    telemetry_interval: float = Field(30.0, ge=0, le=86400)

    # Limits of every HTTP server edgemeta starts (edgemeta.api.http_limits, docs/settings.md).
    http_max_header_bytes: int = Field(64 * 1024, ge=1024, le=16 * 1024 * 1024)
    http_max_headers: int = Field(100, ge=8, le=10_000)
    http_header_timeout: float = Field(10.0, gt=0, le=3600)
    http_body_timeout: float = Field(30.0, gt=0, le=3600)
    http_max_connections: int = Field(1000, ge=1, le=1_000_000)
    http_keepalive_timeout: int = Field(5, ge=1, le=3600)

    # Authentication and authorization (docs/security.md). ``off`` is for loopback only: a
    # non-loopback host with auth off refuses to start unless auth_allow_insecure_off says so.
    auth: Literal["off", "on"] = "off"
    auth_allow_insecure_off: bool = False
    auth_jwks_url: str = ""
    auth_public_keys: Path | None = None
    auth_issuer: str = ""
    auth_audience: str = ""
    auth_roles_claim: str = Field("roles", min_length=1, max_length=256)
    auth_service_claim: str = Field("service", min_length=1, max_length=256)
    auth_clock_skew: float = Field(30.0, ge=0, le=600)
    auth_jwks_min_refresh: float = Field(30.0, ge=0, le=86400)
    auth_jwks_max_age: float = Field(3600.0, ge=1, le=7 * 86400)
    auth_token_cache: int = Field(10_000, ge=0, le=10_000_000)
    auth_apikey_cache_seconds: float = Field(5.0, ge=0, le=3600)
    cors_origins: str = ""  # comma-separated; empty: no cross-origin access
    # Proof of the sender on release confirmations and validation answers over the bus
    # (docs/security.md): auto = on when auth is on, else off.
    release_proof: Literal["auto", "off", "on", "strict"] = "auto"
    release_key_file: Path | None = None  # the server secret; empty: kept in the store

    # Secrets at rest (edgemeta.security.sealing): comma-separated base64 keys, or a file of
    # them; neither: <data_dir>/kek, made on first start.
    kek: str = Field("", repr=False)
    kek_file: Path | None = None
    # TLS on every HTTP port (edgemeta.security.tls): cert and key together; a client CA makes
    # it mutual TLS (a client certificate signed by that CA is required).
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_client_ca_file: Path | None = None

    # Allocation webhooks (edgemeta.peers.webhooks): whose certificates to trust (the system's
    # CAs when unset) and how large an answer may be.
    webhook_ca_file: Path | None = None
    webhook_max_bytes: int = Field(65536, ge=64, le=16 * 1024 * 1024)

    @field_validator("bus_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        v = v.strip("/")
        levels = v.split("/")
        if not v or any(not lv or any(c in lv for c in "+#*> \t.") for lv in levels):
            raise ValueError(
                "bus prefix must be topic levels without wildcards, dots, spaces or empty levels"
            )
        return v

    @model_validator(mode="after")
    def _default_database(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'edgemeta.db'}"
        return self

    @model_validator(mode="after")
    def _auth_config(self) -> Settings:
        jwt_on = self.auth == "on" and (self.auth_jwks_url or self.auth_public_keys)
        if jwt_on and (not self.auth_issuer or not self.auth_audience):
            raise ValueError(
                "JWT verification needs EDGEMETA_AUTH_ISSUER and EDGEMETA_AUTH_AUDIENCE"
            )
        if self.auth_jwks_url and urlsplit(self.auth_jwks_url).scheme not in ("http", "https"):
            raise ValueError("EDGEMETA_AUTH_JWKS_URL must be an http:// or https:// URL")
        return self

    @model_validator(mode="after")
    def _bus_security(self) -> Settings:
        if self.bus_password and self.bus_password_file:
            raise ValueError(
                "EDGEMETA_BUS_PASSWORD and EDGEMETA_BUS_PASSWORD_FILE are both set; keep one"
            )
        if (self.bus_cert_file is None) != (self.bus_key_file is None):
            raise ValueError(
                "a bus client certificate needs both EDGEMETA_BUS_CERT_FILE and "
                "EDGEMETA_BUS_KEY_FILE"
            )
        if (self.bus_password or self.bus_password_file) and not self.bus_username:
            raise ValueError("EDGEMETA_BUS_PASSWORD needs EDGEMETA_BUS_USERNAME")
        return self

    @model_validator(mode="after")
    def _north(self) -> Settings:
        for name in ("north_query_request_topic", "north_command_request_topic"):
            value = getattr(self, name)
            if not value.endswith("/#") or not valid_filter(value):
                raise ValueError(
                    f"EDGEMETA_{name.upper()} must be a topic filter ending in /# "
                    f"(the device and command are the levels it matches), not {value!r}"
                )
        for name in ("north_query_response_topic", "north_command_response_topic_prefix"):
            value = getattr(self, name)
            if not value or "+" in value or "#" in value:
                raise ValueError(f"EDGEMETA_{name.upper()} must be a topic without wildcards")
        if self.north_mqtt_password and self.north_mqtt_password_file:
            raise ValueError(
                "EDGEMETA_NORTH_MQTT_PASSWORD and EDGEMETA_NORTH_MQTT_PASSWORD_FILE are both "
                "set; keep one"
            )
        if (self.north_mqtt_password or self.north_mqtt_password_file) and not (
            self.north_mqtt_username
        ):
            raise ValueError("EDGEMETA_NORTH_MQTT_PASSWORD needs EDGEMETA_NORTH_MQTT_USERNAME")
        if (self.north_mqtt_cert_file is None) != (self.north_mqtt_key_file is None):
            raise ValueError(
                "a north client certificate needs both EDGEMETA_NORTH_MQTT_CERT_FILE and "
                "EDGEMETA_NORTH_MQTT_KEY_FILE"
            )
        if self.north_mqtt_url and urlsplit(self.north_mqtt_url).scheme.lower() not in (
            "mqtt",
            "mqtts",
        ):
            raise ValueError("EDGEMETA_NORTH_MQTT_URL must be an mqtt:// or mqtts:// URL")
        return self

    def north_security(self) -> BusSecurity:
        """The external broker's credentials and TLS options (the password file read now)."""
        return BusSecurity(
            username=self.north_mqtt_username or None,
            password=_password(
                self.north_mqtt_password, self.north_mqtt_password_file, "NORTH_MQTT"
            ),
            tls=self.north_mqtt_tls,
            ca_file=self.north_mqtt_ca_file,
            cert_file=self.north_mqtt_cert_file,
            key_file=self.north_mqtt_key_file,
        )

    def bus_security(self) -> BusSecurity:
        """The bus credentials and TLS options; reads the password file (ValueError if it
        cannot be read). One trailing newline is dropped: ``echo secret > file`` adds it."""
        return BusSecurity(
            username=self.bus_username or None,
            password=_password(self.bus_password, self.bus_password_file, "BUS"),
            tls=self.bus_tls,
            ca_file=self.bus_ca_file,
            cert_file=self.bus_cert_file,
            key_file=self.bus_key_file,
        )

    def redacted_bus_url(self) -> str:
        """The bus URL without its password (or NATS token), for logs and /config."""
        return redact(self.bus_url)

    def cors_origin_list(self) -> list[str]:
        """The allowed CORS origins (none by default)."""
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    def redacted_database_url(self) -> str:
        """The database URL without its password, for logs and /config."""
        return redact(self.database_url)


def _password(given: str, file: Path | None, what: str) -> str | None:
    """A password from the setting or, when set, from its file (ValueError naming the file if
    it cannot be read). One trailing newline is dropped: ``echo secret > file`` adds it."""
    if file is None:
        return given or None
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(
            f"cannot read EDGEMETA_{what}_PASSWORD_FILE {file}: {exc.strerror or exc}"
        ) from None
    return text.removesuffix("\n").removesuffix("\r")


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (and a NATS token, ``nats://token@``)."""
    parts = urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at:
        return url
    user, colon, _ = userinfo.partition(":")
    if colon:
        netloc = f"{user}:***@{host}"
    elif parts.scheme.lower() in ("nats", "tls"):
        netloc = f"***@{host}"  # a lone user part is a token in a NATS URL
    else:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
