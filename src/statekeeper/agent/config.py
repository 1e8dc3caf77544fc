"""The agent's one validated configuration, read from flags and `STATEKEEPER_*` variables.

Flags win over the environment. Credentials come only from `AWS_ACCESS_KEY_ID` /
`AWS_SECRET_ACCESS_KEY` (or `AWS_ACCESS_KEY_ID_FILE` / `AWS_SECRET_ACCESS_KEY_FILE`) and are held
as `SecretStr`, so they never appear in a repr, a log line or a report.

Bucket layout (stable, documented in README.md):
  <prefix>/sqlite/<db file name>      Litestream replica of each SQLite database
  <prefix>/files/<directory name>/    rclone copy of each config directory
  <prefix>/files-history/<directory name>/<UTC date-time>/   what a sync replaced or deleted
  <prefix>/lease                      the replication lease
  <prefix>/hwm/<db file name>.json    high-water mark: newest TXID seen restorable (agent/hwm.py)
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from statekeeper import defaults, units
from statekeeper.errors import ConfigError


def parse_duration(value: str | float | int) -> float:
    """`"10m"` → 600.0, `"1h30m"` → 5400.0; a bare number is seconds. ValueError otherwise."""
    seconds = units.parse_duration(value)
    if seconds is None:
        raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 10m, 1h)")
    return seconds


def _split_list(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class AgentConfig(BaseModel):
    """Everything `statekeeper agent` needs. Build it with `load_config`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bucket: str = Field(min_length=1, description="S3 bucket holding the replicas")
    endpoint: str | None = Field(None, description="S3 endpoint URL (MinIO or any S3); None = AWS")
    region: str = Field(defaults.S3_REGION, description="S3 region")
    prefix: str = Field(min_length=1, description="Key prefix, one per app")
    sqlite_paths: list[Path] = Field(default_factory=list)
    config_paths: list[Path] = Field(default_factory=list)
    rclone_interval: float = Field(600.0, description="Seconds between config syncs")
    rclone_jitter: float = Field(0.1, ge=0, le=0.5, description="± share of the interval")
    rclone_timeout: float = Field(300.0, gt=0, description="Wall-clock deadline of one rclone run")
    restore_timeout: float = Field(3600.0, gt=0, description="Deadline of one DB restore")
    s3_timeout: float = Field(10.0, gt=0, description="Deadline of one S3 reachability check")
    kill_grace: float = Field(10.0, gt=0, description="SIGTERM→SIGKILL grace for child processes")
    shutdown_timeout: float = Field(20.0, gt=0, description="Budget for the final flush on SIGTERM")
    port: int = Field(9090, ge=0, le=65535)
    integrity: Literal["full", "quick"] = "full"
    allow_empty: bool = False
    # A healthy local DB older than its replica (an old volume snapshot): refuse, or quarantine
    # it and restore the replica. Litestream would otherwise make the old state the newest.
    on_stale: Literal["refuse", "restore"] = "refuse"
    max_delete: float = Field(
        50.0, ge=0, le=100, description="Max % of remote files one sync deletes"
    )
    history_days: int = Field(7, ge=0, description="Days to keep replaced/deleted config files")
    lease_ttl: float = Field(30.0, gt=0)
    lease_heartbeat: float = Field(10.0, gt=0)
    status_interval: float = Field(
        30.0, gt=0, description="Seconds between replica status probes (litestream ltx)"
    )
    sync_stale_after: float = Field(
        30.0, gt=0, description="litestream counts as replicating while its last sync is newer"
    )
    restore_check_interval: float = Field(
        86400.0, ge=0, description="Seconds between scratch restores of each replica (0 = never)"
    )
    holder: str = Field(default_factory=lambda: os.environ.get("POD_NAME") or socket.gethostname())
    log_format: Literal["text", "json"] = "text"
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None

    _split = field_validator("sqlite_paths", "config_paths", mode="before")(_split_list)

    @field_validator(
        "rclone_interval",
        "rclone_timeout",
        "restore_timeout",
        "s3_timeout",
        "kill_grace",
        "shutdown_timeout",
        "lease_ttl",
        "lease_heartbeat",
        "status_interval",
        "sync_stale_after",
        "restore_check_interval",
        mode="before",
    )
    @classmethod
    def _duration(cls, value: Any) -> float:
        return parse_duration(value)

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        stripped = value.strip("/")
        if not stripped:  # "/" would put every app's replicas at the bucket's root
            raise ValueError(f"prefix must name the app, got {value!r}")
        return stripped

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        assert value is not None
        if urlparse(value).scheme not in ("http", "https"):
            raise ValueError(f"S3 endpoint must start with http:// or https://, got {value!r}")
        return value.rstrip("/")

    # --- derived values -------------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        """The S3 API to call: the endpoint, else AWS's for the region (what boto3 would use)."""
        return self.endpoint or f"https://s3.{self.region}.amazonaws.com"

    def replica_key(self, db: Path) -> str:
        """Key prefix of the Litestream replica of `db`: `<prefix>/sqlite/<file name>`."""
        return f"{self.prefix}/sqlite/{db.name}"

    def files_key(self, directory: Path) -> str:
        """Key prefix of the rclone copy of `directory`: `<prefix>/files/<directory name>`."""
        return f"{self.prefix}/files/{directory.name or 'root'}"

    def history_key(self, directory: Path) -> str:
        return f"{self.prefix}/files-history/{directory.name or 'root'}"

    @property
    def lease_key(self) -> str:
        return f"{self.prefix}/lease"

    def child_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """Environment for litestream/rclone child processes.

        AWS_CA_BUNDLE makes the AWS Go SDK in litestream fail against plain-http endpoints
        ("unable to add custom RootCAs HTTPClient"): it is dropped for http://. For https:// the
        bundle is handed to Go's TLS stack as SSL_CERT_FILE, which both binaries honour.
        """
        env = dict(os.environ if base is None else base)
        bundle = env.pop("AWS_CA_BUNDLE", None)
        if bundle and self.endpoint and self.endpoint.startswith("https://"):
            env.setdefault("SSL_CERT_FILE", bundle)
        if self.access_key_id is not None:
            env["AWS_ACCESS_KEY_ID"] = self.access_key_id.get_secret_value()
        if self.secret_access_key is not None:
            env["AWS_SECRET_ACCESS_KEY"] = self.secret_access_key.get_secret_value()
        for name in ("AWS_ACCESS_KEY_ID_FILE", "AWS_SECRET_ACCESS_KEY_FILE"):
            env.pop(name, None)
        return env


# Environment variable → field. Flags use the field names.
ENV_VARS: dict[str, str] = {
    "STATEKEEPER_BUCKET": "bucket",
    "STATEKEEPER_S3_ENDPOINT": "endpoint",
    "STATEKEEPER_REGION": "region",
    "STATEKEEPER_PREFIX": "prefix",
    "STATEKEEPER_SQLITE_PATHS": "sqlite_paths",
    "STATEKEEPER_CONFIG_PATHS": "config_paths",
    "STATEKEEPER_RCLONE_INTERVAL": "rclone_interval",
    "STATEKEEPER_RCLONE_JITTER": "rclone_jitter",
    "STATEKEEPER_RCLONE_TIMEOUT": "rclone_timeout",
    "STATEKEEPER_RESTORE_TIMEOUT": "restore_timeout",
    "STATEKEEPER_S3_TIMEOUT": "s3_timeout",
    "STATEKEEPER_KILL_GRACE": "kill_grace",
    "STATEKEEPER_SHUTDOWN_TIMEOUT": "shutdown_timeout",
    "STATEKEEPER_PORT": "port",
    "STATEKEEPER_INTEGRITY": "integrity",
    "STATEKEEPER_ALLOW_EMPTY": "allow_empty",
    "STATEKEEPER_ON_STALE": "on_stale",
    "STATEKEEPER_MAX_DELETE": "max_delete",
    "STATEKEEPER_HISTORY_DAYS": "history_days",
    "STATEKEEPER_LEASE_TTL": "lease_ttl",
    "STATEKEEPER_LEASE_HEARTBEAT": "lease_heartbeat",
    "STATEKEEPER_STATUS_INTERVAL": "status_interval",
    "STATEKEEPER_SYNC_STALE_AFTER": "sync_stale_after",
    "STATEKEEPER_RESTORE_CHECK_INTERVAL": "restore_check_interval",
    "STATEKEEPER_HOLDER": "holder",
    "STATEKEEPER_LOG_FORMAT": "log_format",
}


def _read_secret(env: Mapping[str, str], name: str) -> str | None:
    path = env.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read {name}_FILE={path}: {exc.strerror}") from None
    return env.get(name) or None


def load_config(
    overrides: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
) -> AgentConfig:
    """Build the config from `env` (default: os.environ) and flag `overrides` (None = unset).

    Raises ConfigError with one line naming the offending setting; never echoes a secret.
    """
    source = os.environ if env is None else env
    values: dict[str, Any] = {}
    for var, name in ENV_VARS.items():
        if source.get(var) not in (None, ""):
            values[name] = source[var]
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = value
    key_id = _read_secret(source, "AWS_ACCESS_KEY_ID")
    secret = _read_secret(source, "AWS_SECRET_ACCESS_KEY")
    if key_id:
        values["access_key_id"] = key_id
    if secret:
        values["secret_access_key"] = secret
    try:
        config = AgentConfig(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        field_name = ".".join(str(p) for p in first["loc"]) or "config"
        env_var = next((v for v, f in ENV_VARS.items() if f == field_name), None)
        flag = "--" + field_name.replace("_", "-")
        where = f"{field_name} ({env_var} or {flag})" if env_var else field_name
        raise ConfigError(f"invalid agent setting {where}: {first['msg']}") from None
    names = [p.name for p in config.sqlite_paths]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(
            f"two SQLite paths share the file name {dupes[0]!r}: their replicas would collide "
            f"at {config.prefix}/sqlite/{dupes[0]}; rename one database"
        )
    # Two config directories with one name share `<prefix>/files/<name>/`: each sync would
    # delete the other's files from the backup, and a restore would mix them.
    keys = [config.files_key(p) for p in config.config_paths]
    clash = next((k for k in keys if keys.count(k) > 1), None)
    if clash is not None:
        raise ConfigError(
            f"two config paths share the directory name {clash.rsplit('/', 1)[-1]!r}: their "
            f"copies would collide at {clash}/ (STATEKEEPER_CONFIG_PATHS); list each directory "
            "once, or mount them under different names"
        )
    return config
