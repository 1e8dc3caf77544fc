"""`statekeeper agent restore`: the Fail-Safe Integrity init container.

For each SQLite database, in order, on its own:

  present, healthy            → kept (never overwritten; its `-wal` is never touched), unless
                                it is older than its replica (below)
  present, healthy, older     → REFUSE (exit 3), nothing moved (on_stale=restore: quarantine
    than its replica            db/-wal/-shm and `.<db name>-litestream/`, restore the replica)
  present, corrupt or empty   → replica exists: restored, the old db/-wal/-shm quarantined
                                no replica: REFUSE (exit 3), nothing moved (--allow-empty:
                                quarantine and start empty); a 0-byte DB on a volume that never
                                held data is a first start
  missing, replica exists     → restored
  missing, no replica         → first start (the app creates it), unless the volume was
                                initialised before (marker file): REFUSE (exit 3) — wrong bucket
                                or deleted backups (--allow-empty: start empty)

Every restore goes first to a scratch folder in the DB's own directory (`litestream restore
-if-replica-exists`, which doubles as the replica lookup), is integrity-checked and fsynced; only
then are the old db/-wal/-shm moved to quarantine and the copy renamed over the DB path (atomic on
one filesystem). A restored copy that fails its check is quarantined, the local files stay as they
were, and the agent refuses to start. Nothing is ever deleted: whatever is moved aside goes to
`<db dir>/.statekeeper-quarantine/<db name>-<UTC time>/`.

"Older than its replica": litestream 0.5 keeps its local position beside the DB, in
`.<db name>-litestream/ltx/0/<min txid>-<max txid>.ltx` (hex). When that folder comes back with
an old volume snapshot, the highest local TXID is below the replica's (`litestream ltx`), and
litestream, on start, would take the old DB for a fresh restore and write it as the replica's
newest state: the newer transactions vanish from the latest restore point. Without local LTX
files (only the DB files were copied back) the position is unknown: the DB is kept, with a
warning.

No decision depends on S3 before the bucket has answered a listing with these credentials (see
`BucketCheck`): an unreachable S3 or refused credentials end the run with exit 4, because
"no replica" cannot be told from "cannot see it". Each run is bounded:
`s3_timeout` for the check, `restore_timeout` per DB restore (SIGTERM, then SIGKILL after
`kill_grace`), `rclone_timeout` per config directory.

Files the agent keeps beside each database (all named `.statekeeper*`):
  .statekeeper-<db name>.initialised   marker: this volume has held this DB
  .statekeeper-restore.json            outcome of the last restore (first DB's directory, or the
                                       first config directory), read by the sidecar's metrics
  .statekeeper-quarantine/             what was moved aside
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from statekeeper.agent.config import AgentConfig
from statekeeper.agent.hwm import Mark, behind_message, read_mark, restorable_position
from statekeeper.agent.lease import LeaseStore
from statekeeper.agent.litestream import ltx_json, real_db_path, restore_command, write_config
from statekeeper.agent.log import get_logger
from statekeeper.agent.procs import run_bounded
from statekeeper.agent.s3 import check_bucket, probe_endpoint
from statekeeper.agent.sqlite import content_digest, db_files, integrity_check
from statekeeper.errors import EXIT_OK, InfraError, RefusedError

log = get_logger("restore")

STATUS_FILE = ".statekeeper-restore.json"
QUARANTINE_DIR = ".statekeeper-quarantine"


@dataclass
class DbOutcome:
    """What happened to one database. `action` is one of: kept, restored, first-start,
    started-empty, refused."""

    db: str
    action: str
    reason: str
    restored_bytes: int = 0
    txid: str | None = None
    quarantined: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    # The restored file's identity (`file_identity`): lets `agent run` tell that the DB is
    # still exactly the copy restored at `txid`, without restoring it again to compare.
    file_id: str | None = None


def file_identity(path: Path) -> str:
    """device:inode:size:mtime_ns of `path`: changes with any write to it."""
    info = path.stat()
    return f"{info.st_dev}:{info.st_ino}:{info.st_size}:{info.st_mtime_ns}"


@dataclass
class ConfigOutcome:
    """What the config restore of one directory brought."""

    path: str
    files: int
    bytes: int
    empty_remote: bool


def marker_path(db: Path) -> Path:
    """`.statekeeper-<db name>.initialised` beside `db`: written once the volume holds the DB."""
    return db.with_name(f".statekeeper-{db.name}.initialised")


def status_path(config: AgentConfig) -> Path | None:
    """Where the last restore's outcome is written (and where the sidecar reads it)."""
    if config.sqlite_paths:
        return config.sqlite_paths[0].parent / STATUS_FILE
    if config.config_paths:
        return config.config_paths[0] / STATUS_FILE
    return None


def read_status(config: AgentConfig) -> dict[str, Any] | None:
    """The JSON written by the last `agent restore` (None when absent or unreadable)."""
    path = status_path(config)
    if path is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _utc_stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def quarantine(db: Path, files: list[Path]) -> list[str]:
    """Move `files` (the DB and/or its -wal/-shm) into a fresh timestamped quarantine folder."""
    if not files:
        return []
    folder = db.parent / QUARANTINE_DIR / f"{db.name}-{_utc_stamp()}"
    folder.mkdir(parents=True, exist_ok=False)
    moved = []
    for path in files:
        target = folder / path.name
        path.replace(target)  # same filesystem: a rename, never a copy-and-delete
        moved.append(str(target))
    _fsync_dir(db.parent)
    log.warning("quarantined", extra={"db": str(db), "folder": str(folder), "files": len(moved)})
    return moved


def roll_back_hot_journal(db: Path) -> list[str]:
    """A hot rollback journal (`<db>-journal`, non-empty: the app died mid-transaction) makes
    every read-only open fail. Copy the DB and its journal to quarantine, then let SQLite roll
    the transaction back (a read-write open does it), so the DB can be checked. Returns the
    copies' paths ([] when there is no hot journal)."""
    journal = db.with_name(db.name + "-journal")
    try:
        if journal.stat().st_size == 0:
            return []
    except FileNotFoundError:
        return []
    folder = db.parent / QUARANTINE_DIR / f"{db.name}-{_utc_stamp()}"
    folder.mkdir(parents=True, exist_ok=False)
    copies = []
    for path in (db, journal):
        shutil.copy2(path, folder / path.name)
        copies.append(str(folder / path.name))
    con = sqlite3.connect(db, timeout=30)
    try:
        con.execute("PRAGMA schema_version").fetchone()  # any read rolls a hot journal back
    except sqlite3.DatabaseError as exc:
        log.warning("rollback of the hot journal failed", extra={"db": str(db), "error": str(exc)})
    finally:
        con.close()
    log.warning(
        "hot rollback journal: the unfinished transaction was rolled back (copies kept)",
        extra={"db": str(db), "folder": str(folder)},
    )
    return copies


def litestream_dir(db: Path) -> Path:
    """`.<db name>-litestream/` beside `db`: litestream 0.5's local state (its position)."""
    return db.with_name(f".{db.name}-litestream")


def local_txid(db: Path) -> int | None:
    """Highest TXID among litestream's local L0 files of `db` (`<min>-<max>.ltx`, hex); None
    when there are none (never replicated here, or only the DB files were copied back)."""
    try:
        names = [p.name for p in (litestream_dir(db) / "ltx" / "0").iterdir()]
    except OSError:
        return None
    txids = []
    for name in names:
        stem, dot, ext = name.rpartition(".")
        _, dash, max_hex = stem.partition("-")
        if dot and dash and ext == "ltx":
            try:
                txids.append(int(max_hex, 16))
            except ValueError:
                continue  # not litestream's: ignore rather than guess
    return max(txids, default=None)


def replica_txid(config: AgentConfig, db: Path, config_file: Path, bucket: BucketCheck) -> int:
    """Highest TXID in `db`'s replica across all levels (0: no replica). InfraError on S3."""
    bucket.wait()  # an unreachable S3 fails within `s3_timeout`, not litestream's own timeout
    try:
        entries = ltx_json(config, db, config_file)
    except InfraError:
        bucket.confirm()  # names the cause when it is S3 (credentials, bucket)
        raise
    bucket.listed = True  # litestream exited 0: it listed the prefix with these credentials
    txids = []
    for entry in entries:
        try:
            txids.append(int(str(entry["max_txid"]), 16))
        except (KeyError, ValueError):
            raise InfraError(
                f"litestream ltx printed an entry without a max_txid for {db}"
            ) from None
    return max(txids, default=0)


def stale_positions(
    config: AgentConfig, db: Path, config_file: Path, bucket: BucketCheck
) -> tuple[int, int] | None:
    """(local, replica) TXIDs when the healthy `db` is older than its replica, else None."""
    local = local_txid(db)
    if local is None:
        return None  # unknown: decided by content (`stale_by_content`)
    remote = replica_txid(config, db, config_file, bucket)
    if local >= remote:  # includes "no replica" (0) and a local DB ahead of its replica
        return None
    return local, remote


def scratch_prefix(db: Path) -> str:
    """Name prefix of the scratch folders a restore of `db` creates beside it."""
    return f".statekeeper-{db.name}.restoring-"


def remove_leftover_scratch(db: Path) -> int:
    """Delete the scratch folders that interrupted restores of `db` left beside it (an agent
    killed mid-download). They only ever hold a copy being downloaded, never the live DB: the
    copy is renamed out of its folder before it becomes the DB. Returns the bytes freed."""
    freed = 0
    try:
        leftovers = [p for p in db.parent.iterdir() if p.name.startswith(scratch_prefix(db))]
    except OSError:
        return 0
    for folder in leftovers:
        if folder.is_symlink() or not folder.is_dir():
            continue  # not ours: we only ever create real directories
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        shutil.rmtree(folder)
        freed += size
        log.warning(
            "removed the scratch folder of an interrupted restore",
            extra={"db": str(db), "folder": str(folder), "bytes": size},
        )
    return freed


def stale_by_content(
    config: AgentConfig, db: Path, config_file: Path, bucket: BucketCheck, workdir: Path
) -> Fetched | None:
    """For a healthy `db` whose replication position is unknown: its replica's newest state,
    restored into `workdir`, when that differs from `db` by content (`content_digest`); None
    when there is no replica or both hold the same data. Without a position a differing DB
    cannot be shown to be newer, and litestream would make it the replica's head."""
    fetched = fetch_replica(config, db, config_file, bucket, workdir)
    if fetched is None:
        log.info("local replication position unknown; no replica: kept", extra={"db": str(db)})
        return None
    if content_digest(db) == content_digest(fetched.path):
        log.info(
            "local replication position unknown, but the DB holds its replica's newest state: kept",
            extra={"db": str(db), "txid": fetched.txid or ""},
        )
        return None
    log.warning(
        "local replication position unknown and the DB differs from its replica's newest state",
        extra={"db": str(db), "replica_txid": fetched.txid or ""},
    )
    return fetched


def _write_marker(db: Path) -> None:
    path = marker_path(db)
    if not path.exists():
        path.write_text(
            json.dumps({"db": str(db), "initialised_at": datetime.now(UTC).isoformat()}) + "\n",
            encoding="utf-8",
        )


class BucketCheck:
    """Is S3 there? Two levels, so that a restore pays no more than a bare `litestream restore`.

    - A reachability probe (`probe_endpoint`: plain HTTP, no boto3) runs in a background thread
      from the start; when it fails, a running litestream is stopped at once (`failed()`), so an
      unreachable S3 ends the run within about `s3_timeout`, whatever `restore_timeout` is.
    - The bucket and the credentials are proven by a listing: any litestream run that exits 0
      has listed the replica prefix (litestream exits 1 on NoSuchBucket, AccessDenied, ...).
      When no litestream run succeeded (every DB healthy, or a run failed), `confirm()` asks
      boto3 (`check_bucket`), whose error names the cause: unreachable, credentials, bucket.
    """

    def __init__(self, config: AgentConfig) -> None:
        self._config = config
        self._error: BaseException | None = None
        self._store: LeaseStore | None = None
        self.listed = False
        self._thread = threading.Thread(target=self._run, name="s3-probe", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            probe_endpoint(self._config)
        except BaseException as exc:  # handed to the main thread by failed()/wait()
            self._error = exc

    def failed(self) -> BaseException | None:
        """The probe's error once it has failed, else None (still running, or fine)."""
        return None if self._thread.is_alive() else self._error

    def wait(self) -> None:
        """Block until the probe is done; re-raise its error (InfraError: exit 4)."""
        self._thread.join()
        if self._error is not None:
            raise self._error

    def mark(self, db: Path) -> Mark | None:
        """The high-water mark of `db` (agent/hwm.py), once the bucket answered."""
        self.confirm()
        if self._store is None:
            self._store = LeaseStore(self._config)
        return read_mark(self._config, db, self._store)

    def drop_mark(self, db: Path) -> None:
        """Delete the high-water mark of `db` (InfraError when S3 cannot answer)."""
        from statekeeper.agent.hwm import mark_key
        from statekeeper.agent.lease import S3Error

        if self._store is None:
            self._store = LeaseStore(self._config)
        try:
            self._store.delete(mark_key(self._config, db))
        except S3Error as err:
            if err.code != "NoSuchKey":
                raise InfraError(self._store.describe(err)) from None

    def confirm(self) -> None:
        """Unless a listing already proved it: the bucket answers with these credentials."""
        if self.listed:
            return
        self.wait()
        check_bucket(self._config)
        self.listed = True


@dataclass
class Fetched:
    """A replica restored into a scratch folder beside the DB, not yet checked or in place."""

    path: Path
    txid: str | None


def fetch_replica(
    config: AgentConfig, db: Path, config_file: Path, bucket: BucketCheck, workdir: Path
) -> Fetched | None:
    """`litestream restore -if-replica-exists` of `db` into `workdir`; None when the bucket
    answers and holds no replica. It doubles as the replica lookup, so a restore costs one
    litestream run. InfraError when S3 fails or `restore_timeout` passes."""
    temp = workdir / db.name
    result = run_bounded(
        restore_command(config_file, db, temp, if_replica_exists=True),
        env=config.child_env(),
        timeout=config.restore_timeout,
        grace=config.kill_grace,
        abort=bucket.failed,
    )
    if result.returncode != 0:
        if "no space left on device" in result.stderr.lower():
            raise InfraError(no_space_message(config, db, config_file, workdir))
        bucket.confirm()  # names the cause when it is S3 (unreachable, credentials, bucket)
        raise InfraError(
            f"litestream restore of {db} failed (exit {result.returncode}); "
            "check S3 reachability and the replica, or run `statekeeper agent verify`"
        )
    # Exit 0: litestream listed the replica prefix, so the bucket answered these credentials,
    # and "no output file" really means "no replica".
    bucket.listed = True
    if not temp.exists():
        return None
    return Fetched(temp, _restore_txid(result.stdout))


def no_space_message(config: AgentConfig, db: Path, config_file: Path, workdir: Path) -> str:
    """One line for a restore that ran out of disk: ENOSPC, free space, and the space needed
    (at least the newest snapshot's size; the restored DB is usually larger)."""
    free = shutil.disk_usage(workdir).free
    try:
        entries = ltx_json(config, db, config_file)
        snapshots = [e for e in entries if int(e.get("level", 0)) == 9]
        newest = max(snapshots, key=lambda e: int(str(e["max_txid"]), 16)) if snapshots else None
        needed = f"at least {int(newest['size'])} bytes" if newest else "an unknown amount"
    except (InfraError, KeyError, ValueError):
        needed = "an unknown amount"
    return (
        f"no space left on device (ENOSPC) restoring {db} into {db.parent}: {free} bytes free, "
        f"the replica needs {needed} (its newest snapshot; more with later transactions); "
        "free space on the volume or enlarge it"
    )


def check_fetched(config: AgentConfig, db: Path, fetched: Fetched) -> int:
    """Integrity-check and fsync the restored copy; returns its size in bytes.

    RefusedError when it fails its check: the copy is quarantined and the local files are left
    exactly as they were.
    """
    check = integrity_check(fetched.path, config.integrity, read_only=False)
    if not check.ok:
        moved = quarantine(db, [fetched.path])
        raise RefusedError(
            f"the restored copy of {db} fails its integrity check ({check.detail}); "
            f"kept at {moved[0]}; inspect the replica with `statekeeper agent verify` "
            "or restore an older point in time by hand"
        )
    with fetched.path.open("rb") as handle:
        os.fsync(handle.fileno())
    return fetched.path.stat().st_size


def _restore_txid(stdout: str) -> str | None:
    try:
        data = json.loads(stdout)
    except ValueError:
        return None
    return str(data.get("txid")) if isinstance(data, dict) and data.get("txid") else None


def handle_db(config: AgentConfig, db: Path, config_file: Path, bucket: BucketCheck) -> DbOutcome:
    """Decide and act for one database; raises RefusedError / InfraError to stop the start.

    A symlinked DB path is resolved first: the checks, the quarantine and the restored copy all
    happen at the link's target (the restore goes through the link, which stays a link)."""
    started = time.monotonic()
    link, db = db, real_db_path(db)
    if db != link.absolute():
        log.info(
            "database path is a symlink: using its target",
            extra={"db": str(link), "target": str(db)},
        )
    db.parent.mkdir(parents=True, exist_ok=True)
    remove_leftover_scratch(db)
    present = db.exists()
    size = db.stat().st_size if present else 0
    extras = [p for p in db_files(db) if p != db]

    stale = False
    workdir: Path | None = None
    prefetched: Fetched | None = None
    if present and size > 0:
        roll_back_hot_journal(db)
        check = integrity_check(db, config.integrity)
        positions = stale_positions(config, db, config_file, bucket) if check.ok else None
        if positions is not None:
            local, remote = positions
            stale = True
            problem = (
                f"older than its replica (local txid {local:016x}, replica txid {remote:016x})"
            )
            if config.on_stale != "restore":
                raise RefusedError(
                    f"{db} is {problem}: it was probably restored from an old volume snapshot, "
                    "and starting would make this old state the replica's newest; "
                    "set STATEKEEPER_ON_STALE=restore (or --on-stale restore) to quarantine the "
                    "local copy and restore the replica, or investigate"
                )
        elif check.ok and local_txid(db) is None:
            # Only the DB files came back (no litestream position): compare by content.
            workdir = Path(tempfile.mkdtemp(prefix=scratch_prefix(db), dir=db.parent))
            try:
                prefetched = stale_by_content(config, db, config_file, bucket, workdir)
            except BaseException:
                shutil.rmtree(workdir, ignore_errors=True)
                raise
            if prefetched is None:
                shutil.rmtree(workdir, ignore_errors=True)
                _write_marker(db)
                return DbOutcome(
                    str(link),
                    "kept",
                    "integrity check ok; same content as its replica (or no replica)",
                    duration_s=_since(started),
                )
            stale = True
            problem = (
                "different from its replica's newest state while its replication position "
                f"is unknown (no litestream LTX files in {litestream_dir(db)})"
            )
            if config.on_stale != "restore":
                shutil.rmtree(workdir, ignore_errors=True)
                raise RefusedError(
                    f"{db} is {problem}: probably only the DB files came back from an old "
                    "snapshot, and starting would make this state the replica's newest; "
                    "set STATEKEEPER_ON_STALE=restore (or --on-stale restore) to quarantine the "
                    "local copy and restore the replica, or investigate"
                )
        elif check.ok:
            log.info(
                "healthy, kept",
                extra={
                    "db": str(db),
                    "bytes": size,
                    "wal": any(p.name.endswith("-wal") for p in extras),
                },
            )
            _write_marker(db)
            return DbOutcome(str(link), "kept", "integrity check ok", duration_s=_since(started))
        else:
            problem = f"corrupt ({check.detail})"
    elif present:
        problem = "empty (0 bytes)"
    else:
        problem = "missing"
    log.warning(f"database {problem}", extra={"db": str(db)})

    if workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix=scratch_prefix(db), dir=db.parent))
    try:
        fetched = prefetched or fetch_replica(config, db, config_file, bucket, workdir)
        log.info("replica lookup", extra={"db": str(db), "replica": fetched is not None})
        mark = bucket.mark(link)
        if fetched is not None and mark is not None:
            _refuse_behind_mark(config, link, db, config_file, fetched, mark)
        if fetched is None and mark is not None:
            deleted = (
                f"there is no replica at s3://{config.bucket}/{config.replica_key(link)}, but "
                f"its high-water mark says txid {mark.txid:016x} was acknowledged at "
                f"{mark.time}: the replica was deleted"
            )
        else:
            deleted = ""
        if fetched is not None:
            restored = check_fetched(config, db, fetched)
            old = db_files(db)  # stale -wal/-shm must never meet a restored DB
            if stale and litestream_dir(db).exists():
                old.append(litestream_dir(db))  # its old position must not meet the new DB
            moved = quarantine(db, old)
            fetched.path.replace(db)  # same directory: an atomic rename
            _fsync_dir(db.parent)
            _write_marker(db)
            log.info(
                "restored from replica",
                extra={
                    "db": str(db),
                    "bytes": restored,
                    "txid": fetched.txid or "",
                    "was": problem,
                },
            )
            return DbOutcome(
                str(link),
                "restored",
                f"{problem}; restored from replica",
                restored_bytes=restored,
                txid=fetched.txid,
                quarantined=moved,
                duration_s=_since(started),
                file_id=file_identity(db),
            )
        if stale:  # the replica vanished since `litestream ltx` saw it: keep everything
            raise RefusedError(
                f"{db} is {problem}, but the replica could not be restored (it disappeared); "
                "nothing was moved; investigate the bucket"
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)  # only our own scratch folder

    where = f"s3://{config.bucket}/{config.replica_key(link)}"
    holds_data = any(p.stat().st_size > 0 for p in extras if p.name.endswith("-wal"))
    if deleted and not config.allow_empty:
        raise RefusedError(
            f"{link} is {problem} and {deleted}; refusing to start. Restore it from another "
            "copy, or pass --allow-empty (STATEKEEPER_ALLOW_EMPTY=true) to start empty"
        )
    if (
        not deleted
        and not marker_path(db).exists()
        and (
            (problem == "missing" and not extras)
            or (problem.startswith("empty") and not holds_data)
        )
    ):
        # Nothing to lose: no DB (or a 0-byte one, as some apps create before their schema)
        # on a volume that never held it, and the bucket, which answered, holds no replica.
        log.info(
            "first start: the bucket answers and holds no replica; the app will create the DB",
            extra={"db": str(db), "replica": where},
        )
        return DbOutcome(str(link), "first-start", f"no local data and no replica at {where}")

    if problem == "missing" and not marker_path(db).exists():
        reason = (
            f"{db} is missing but its -wal/-shm are present, and there is no replica at {where}"
        )
    elif problem == "missing":
        reason = (
            f"{db} is missing from a volume statekeeper initialised before, and there is no "
            f"replica at {where} (wrong bucket or prefix, or deleted backups?)"
        )
    else:
        reason = f"{db} is {problem} and there is no replica at {where}"
    if not config.allow_empty:
        raise RefusedError(
            f"{reason}; refusing to start. Fix the bucket settings or restore the data by hand; "
            "--allow-empty (STATEKEEPER_ALLOW_EMPTY=true) starts with an empty database"
        )
    moved = quarantine(db, db_files(db))
    if deleted:
        # Starting empty accepts the loss: a new DB's TXIDs start low again, and the old mark
        # would make the new replica look behind for ever.
        bucket.drop_mark(link)
        log.warning("allow-empty: high-water mark removed", extra={"db": str(link)})
    log.warning(
        "allow-empty: starting with an empty database",
        extra={"db": str(db), "reason": reason, "quarantined": len(moved)},
    )
    return DbOutcome(
        str(link), "started-empty", reason, quarantined=moved, duration_s=_since(started)
    )


def _refuse_behind_mark(
    config: AgentConfig, link: Path, db: Path, config_file: Path, fetched: Fetched, mark: Mark
) -> None:
    """RefusedError when the restored copy is older than the replica's high-water mark: the
    replica lost acknowledged transactions (e.g. its newest LTX files were deleted)."""
    try:
        txid = int(fetched.txid or "", 16)
    except ValueError:
        txid = restorable_position(ltx_json(config, db, config_file)).restorable
    if txid >= mark.txid:
        return
    position = restorable_position(ltx_json(config, db, config_file))
    raise RefusedError(f"{link}: " + behind_message(config, link, position, mark))


def _since(started: float) -> float:
    return round(time.monotonic() - started, 3)


def restore_config_dirs(config: AgentConfig) -> list[ConfigOutcome]:
    """`rclone copy --update` of each config directory from the bucket (never clobbers newer
    local files; returns at once on an empty or missing prefix)."""
    from statekeeper.agent.rclone import copy_from_remote

    outcomes = []
    for directory in config.config_paths:
        stats = copy_from_remote(config, directory)
        if stats.empty_remote:
            log.info(
                "no config files in the bucket yet: first start", extra={"path": str(directory)}
            )
        outcomes.append(ConfigOutcome(str(directory), stats.files, stats.bytes, stats.empty_remote))
    return outcomes


def write_status(
    config: AgentConfig, dbs: list[DbOutcome], dirs: list[ConfigOutcome], started: datetime
) -> Path | None:
    """Write the outcome JSON (see module doc) atomically; returns its path."""
    path = status_path(config)
    if path is None:
        return None
    payload = {
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "restored_bytes": sum(d.restored_bytes for d in dbs) + sum(c.bytes for c in dirs),
        "databases": [asdict(d) for d in dbs],
        "config_paths": [asdict(c) for c in dirs],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    temp.replace(path)
    return path


def run_restore(config: AgentConfig) -> tuple[list[DbOutcome], list[ConfigOutcome]]:
    """The whole init-container run. Raises RefusedError (exit 3) / InfraError (exit 4)."""
    started = datetime.now(UTC)
    log.info(
        "restore starting",
        extra={
            "bucket": config.bucket,
            "endpoint": config.endpoint or "aws",
            "prefix": config.prefix,
            "databases": len(config.sqlite_paths),
            "config_paths": len(config.config_paths),
            "integrity": config.integrity,
        },
    )
    bucket = BucketCheck(config)

    outcomes: list[DbOutcome] = []
    refusals: list[str] = []
    if config.sqlite_paths:
        with tempfile.TemporaryDirectory(prefix="statekeeper-restore-") as scratch:
            config_file = write_config(config, Path(scratch) / "litestream.yml")
            for db in config.sqlite_paths:
                try:
                    outcomes.append(handle_db(config, db, config_file, bucket))
                except RefusedError as exc:
                    # Each DB is decided on its own; the start is refused once all are handled.
                    log.error("refused", extra={"db": str(db), "reason": str(exc)})
                    outcomes.append(DbOutcome(str(db), "refused", str(exc)))
                    refusals.append(str(exc))
    bucket.confirm()  # S3 unreachable or credentials refused: exit 4, even if every DB is healthy
    log.info("bucket answers", extra={"bucket": config.bucket})
    dirs = restore_config_dirs(config) if not refusals else []
    write_status(config, outcomes, dirs, started)
    if refusals:
        more = (
            f" (and {len(refusals) - 1} more refusal(s), see the log)" if len(refusals) > 1 else ""
        )
        raise RefusedError(refusals[0] + more)
    log.info(
        "restore finished",
        extra={
            "kept": sum(o.action == "kept" for o in outcomes),
            "restored": sum(o.action == "restored" for o in outcomes),
            "first_start": sum(o.action == "first-start" for o in outcomes),
            "restored_bytes": sum(o.restored_bytes for o in outcomes) + sum(d.bytes for d in dirs),
        },
    )
    return outcomes, dirs


def main(config: AgentConfig) -> int:
    """CLI entry point: 0 when the app may start; errors propagate as StatekeeperError."""
    run_restore(config)
    return EXIT_OK


def refuse_stale_start(config: AgentConfig, workdir: Path) -> None:
    """`agent run`'s check before litestream first starts: the same staleness decision as
    `agent restore` (by position, else by content), so a sidecar started without the init
    container never makes an old DB the replica's newest state. RefusedError (exit 3) when a DB
    is stale; an S3 that cannot answer skips the check with a warning (the sidecar must run
    through outages). A DB still exactly as `agent restore` left it (status file) is judged by
    its restored TXID, without a second download."""
    dbs = [db for db in config.sqlite_paths if _has_data(real_db_path(db))]
    if not dbs:
        return
    config_file = write_config(config, workdir / "preflight.yml")
    bucket = BucketCheck(config)
    restored = {d.get("db"): d for d in (read_status(config) or {}).get("databases", [])}
    for db in dbs:
        real = real_db_path(db)
        try:
            problem = _stale_problem(config, db, real, config_file, bucket, restored.get(str(db)))
        except InfraError as exc:
            log.warning("staleness check skipped: S3 cannot answer", extra={"error": str(exc)})
            return
        if problem is not None:
            raise RefusedError(
                f"{db} is {problem}; litestream was not started, because it would make this "
                "state the replica's newest; run `statekeeper agent restore` (with "
                "--on-stale restore) before the sidecar, or investigate"
            )


def _has_data(db: Path) -> bool:
    try:
        return db.stat().st_size > 0
    except OSError:
        return False


def _stale_problem(
    config: AgentConfig,
    db: Path,
    real: Path,
    config_file: Path,
    bucket: BucketCheck,
    restored: dict[str, Any] | None,
) -> str | None:
    positions = stale_positions(config, real, config_file, bucket)
    if positions is not None:
        local, remote = positions
        return f"older than its replica (local txid {local:016x}, replica txid {remote:016x})"
    if local_txid(real) is not None:
        return None
    if (
        restored
        and restored.get("file_id") == file_identity(real)
        and restored.get("txid")
        and not real.with_name(real.name + "-wal").exists()
    ):
        at = int(str(restored["txid"]), 16)
        remote = replica_txid(config, real, config_file, bucket)
        if at >= remote:
            return None
        return f"the copy restored at txid {at:016x}, older than its replica ({remote:016x})"
    # Scratch beside the DB (room for a copy of it), like a restore's; removed either way.
    with tempfile.TemporaryDirectory(prefix=scratch_prefix(real), dir=real.parent) as scratch:
        if stale_by_content(config, real, config_file, bucket, Path(scratch)) is None:
            return None
    return (
        "different from its replica's newest state while its replication position is unknown "
        f"(no litestream LTX files in {litestream_dir(real)})"
    )
