"""`statekeeper agent restore`: the Fail-Safe Integrity init container.

For each SQLite database, in order, on its own (`decide` is this table, row by row):

  present, healthy            → kept (never overwritten; its `-wal` is never touched), unless
                                it is older than its replica (below)
  present, healthy, older     → REFUSE (exit 3), nothing moved (on_stale=restore: see below)
    than its replica
  (the rows below look the replica up first: a restore into scratch, and its high-water mark)
  replica behind its mark     → REFUSE (exit 3), nothing moved: it lost acknowledged
                                transactions (agent/hwm.py)
  older, on_stale=restore     → replica exists: quarantine db/-wal/-shm and
                                `.<db name>-litestream/`, restore the replica; it vanished since
                                it was listed: REFUSE (exit 3), nothing moved
  present, corrupt or empty   → replica exists: restored, the old db/-wal/-shm quarantined
  missing, replica exists     → restored (a stray -wal/-shm quarantined)
  no replica, but its mark    → REFUSE (exit 3): the replica was deleted (--allow-empty:
                                quarantine, start empty, remove the mark)
  empty or missing,           → first start (the app creates the DB) on a volume that never held
    no replica                  data: no marker file, no -wal/-shm beside a missing DB, nothing
                                in the -wal of a 0-byte one (some apps create the file first)
  otherwise, no replica       → REFUSE (exit 3): corrupt, or missing/emptied on a volume
                                initialised before (marker file) — wrong bucket or deleted
                                backups (--allow-empty: quarantine and start empty)

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
files (only the DB files were copied back) the position is unknown: the DB is compared by
content with a restore of the replica's newest state (`stale_by_content`): the same (or no
replica) → kept as healthy; different → treated as older, since it cannot be shown to be newer.

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
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from enum import Enum, StrEnum
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


class LocalState(Enum):
    """The local copy of a database, as the decision table's left column names it."""

    HEALTHY = "healthy"  # passes its check; its litestream position is not behind the replica's
    # passes its check; no litestream position, same content as its replica's newest state
    # (or there is no replica)
    HEALTHY_AS_REPLICA = "healthy, same as its replica"
    OLDER = "older than its replica"  # passes its check; its position is behind the replica's
    # passes its check; no litestream position, and its content differs from the replica's
    # newest state: it cannot be shown to be newer
    DIFFERENT = "different from its replica"
    CORRUPT = "corrupt"
    EMPTY = "empty"  # 0 bytes
    MISSING = "missing"


KEPT_STATES = frozenset({LocalState.HEALTHY, LocalState.HEALTHY_AS_REPLICA})
STALE_STATES = frozenset({LocalState.OLDER, LocalState.DIFFERENT})
FIRST_START_STATES = frozenset({LocalState.EMPTY, LocalState.MISSING})


class Replica(Enum):
    """The replica of a database, with its high-water mark (agent/hwm.py) once looked up."""

    UNKNOWN = "not looked up yet"
    PRESENT = "exists"
    BEHIND_MARK = "exists, but restores to less than its high-water mark"
    ABSENT = "none"
    DELETED = "none, but its high-water mark remains"


class Action(Enum):
    """What `decide` says to do next for one database."""

    KEEP = "keep"
    REFUSE_STALE = "refuse: older than its replica"
    LOOK_UP_REPLICA = "look the replica up, then decide again"
    REFUSE_BEHIND_MARK = "refuse: the replica lost acknowledged transactions"
    RESTORE = "restore"
    REFUSE_REPLICA_GONE = "refuse: the replica vanished since it was listed"
    REFUSE_REPLICA_DELETED = "refuse: the replica was deleted"
    FIRST_START = "first start"
    START_EMPTY = "start empty"
    REFUSE_NO_REPLICA = "refuse: no replica"


@dataclass(frozen=True)
class Facts:
    """Everything `decide` looks at for one database (all observed before it is called)."""

    local: LocalState
    replica: Replica = Replica.UNKNOWN
    initialised: bool = False  # the marker file: this volume has held the DB before
    # Files that may hold data beside a missing DB (its -wal/-shm/-journal) or beside a 0-byte
    # DB (a non-empty -wal).
    leftovers: bool = False
    on_stale_restore: bool = False  # STATEKEEPER_ON_STALE=restore
    allow_empty: bool = False  # STATEKEEPER_ALLOW_EMPTY / --allow-empty


def decide(facts: Facts) -> Action:
    """The module docstring's table, row by row, in its order. Pure: no files, no S3, no logs.

    Rows past the second need the replica: without it (`Replica.UNKNOWN`) the answer is
    LOOK_UP_REPLICA, and the caller decides again once `facts.replica` is known."""
    local, replica = facts.local, facts.replica
    # present, healthy
    if local in KEPT_STATES:
        return Action.KEEP
    # present, healthy, older than its replica
    if local in STALE_STATES and not facts.on_stale_restore:
        return Action.REFUSE_STALE
    # (the rows below look the replica up first)
    if replica is Replica.UNKNOWN:
        return Action.LOOK_UP_REPLICA
    # replica behind its mark
    if replica is Replica.BEHIND_MARK:
        return Action.REFUSE_BEHIND_MARK
    # older, on_stale=restore
    if local in STALE_STATES:
        return Action.RESTORE if replica is Replica.PRESENT else Action.REFUSE_REPLICA_GONE
    # present, corrupt or empty
    if local in (LocalState.CORRUPT, LocalState.EMPTY) and replica is Replica.PRESENT:
        return Action.RESTORE
    # missing, replica exists
    if local is LocalState.MISSING and replica is Replica.PRESENT:
        return Action.RESTORE
    # no replica, but its mark
    if replica is Replica.DELETED:
        return Action.START_EMPTY if facts.allow_empty else Action.REFUSE_REPLICA_DELETED
    # empty or missing, no replica
    if local in FIRST_START_STATES and not facts.initialised and not facts.leftovers:
        return Action.FIRST_START
    # otherwise, no replica
    return Action.START_EMPTY if facts.allow_empty else Action.REFUSE_NO_REPLICA


class Outcome(StrEnum):
    """What happened to one database, as the status file and the log name it."""

    KEPT = "kept"
    RESTORED = "restored"
    FIRST_START = "first-start"
    STARTED_EMPTY = "started-empty"
    REFUSED = "refused"


@dataclass
class DbOutcome:
    """What happened to one database."""

    db: str
    action: Outcome
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


class Scratch:
    """The scratch folder of one DB's restore, beside it (see `scratch_prefix`): made on first
    use, removed by `remove` (only our own folder, whatever it still holds)."""

    def __init__(self, db: Path) -> None:
        self._db = db
        self._path: Path | None = None

    def path(self) -> Path:
        if self._path is None:
            self._path = Path(
                tempfile.mkdtemp(prefix=scratch_prefix(self._db), dir=self._db.parent)
            )
        return self._path

    def remove(self) -> None:
        if self._path is not None:
            shutil.rmtree(self._path, ignore_errors=True)


@dataclass
class Seen:
    """One database as the effects see it: the paths, the `Facts` for `decide`, and what the
    messages and logs name."""

    link: Path  # the configured path
    db: Path  # its real path (symlinks resolved)
    facts: Facts
    problem: str = ""  # the local state in words, for logs and messages
    size: int = 0
    wal: bool = False  # a -wal beside the DB
    fetched: Fetched | None = None  # the replica, once restored into scratch
    mark: Mark | None = None


def handle_db(config: AgentConfig, db: Path, config_file: Path, bucket: BucketCheck) -> DbOutcome:
    """Decide (`decide`) and act for one database; raises RefusedError / InfraError to stop the
    start.

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
    scratch = Scratch(db)
    try:
        seen = observe(config, link, db, config_file, bucket, scratch)
        action = decide(seen.facts)
        if action is Action.LOOK_UP_REPLICA:
            log.warning(f"database {seen.problem}", extra={"db": str(db)})
            look_up_replica(config, seen, config_file, bucket, scratch)
            action = decide(seen.facts)
        outcome = act(action, config, seen, config_file, bucket)
    finally:
        scratch.remove()
    if action is not Action.FIRST_START:  # nothing was done: no duration (as ever)
        outcome.duration_s = _since(started)
    return outcome


def observe(
    config: AgentConfig,
    link: Path,
    db: Path,
    config_file: Path,
    bucket: BucketCheck,
    scratch: Scratch,
) -> Seen:
    """The local copy of `db` as `decide` needs it (the replica is looked up later, if at all)."""
    extras = [p for p in db_files(db) if p != db]
    facts = Facts(
        LocalState.MISSING,
        initialised=marker_path(db).exists(),
        on_stale_restore=config.on_stale == "restore",
        allow_empty=config.allow_empty,
    )
    seen = Seen(link, db, facts, wal=any(p.name.endswith("-wal") for p in extras))
    if not db.exists():
        seen.problem = "missing"
        seen.facts = replace(facts, leftovers=bool(extras))
        return seen
    seen.size = db.stat().st_size
    if seen.size == 0:
        seen.problem = "empty (0 bytes)"
        holds_data = any(p.stat().st_size > 0 for p in extras if p.name.endswith("-wal"))
        seen.facts = replace(facts, local=LocalState.EMPTY, leftovers=holds_data)
        return seen
    local, seen.problem = _check_local(config, seen, config_file, bucket, scratch)
    seen.facts = replace(facts, local=local)
    return seen


def _check_local(
    config: AgentConfig, seen: Seen, config_file: Path, bucket: BucketCheck, scratch: Scratch
) -> tuple[LocalState, str]:
    """A DB with data: its integrity check (after rolling a hot journal back), then, when it is
    healthy, its position against the replica's, or, without one, its content against the
    replica's newest state (restored into `scratch`, kept in `seen.fetched` for a restore)."""
    db = seen.db
    roll_back_hot_journal(db)
    check = integrity_check(db, config.integrity)
    if not check.ok:
        return LocalState.CORRUPT, f"corrupt ({check.detail})"
    positions = stale_positions(config, db, config_file, bucket)
    if positions is not None:
        local, remote = positions
        return LocalState.OLDER, (
            f"older than its replica (local txid {local:016x}, replica txid {remote:016x})"
        )
    if local_txid(db) is not None:
        return LocalState.HEALTHY, "healthy"
    # Only the DB files came back (no litestream position): compare by content.
    seen.fetched = stale_by_content(config, db, config_file, bucket, scratch.path())
    if seen.fetched is None:
        return LocalState.HEALTHY_AS_REPLICA, "healthy, same content as its replica"
    return LocalState.DIFFERENT, (
        "different from its replica's newest state while its replication position "
        f"is unknown (no litestream LTX files in {litestream_dir(db)})"
    )


def look_up_replica(
    config: AgentConfig, seen: Seen, config_file: Path, bucket: BucketCheck, scratch: Scratch
) -> None:
    """Restore the replica into `scratch` (unless `observe` already did), read its high-water
    mark, and set `seen.facts.replica`."""
    if seen.fetched is None:
        seen.fetched = fetch_replica(config, seen.db, config_file, bucket, scratch.path())
    log.info("replica lookup", extra={"db": str(seen.db), "replica": seen.fetched is not None})
    seen.mark = bucket.mark(seen.link)
    if seen.fetched is None:
        replica = Replica.ABSENT if seen.mark is None else Replica.DELETED
    elif seen.mark is not None and _behind_mark(config, seen, config_file):
        replica = Replica.BEHIND_MARK
    else:
        replica = Replica.PRESENT
    seen.facts = replace(seen.facts, replica=replica)


def act(
    action: Action, config: AgentConfig, seen: Seen, config_file: Path, bucket: BucketCheck
) -> DbOutcome:
    """Carry out `action` (decided by `decide`) for one database."""
    if action is Action.KEEP:
        return _keep(seen)
    if action is Action.RESTORE:
        return _restore(config, seen)
    if action is Action.FIRST_START:
        return _first_start(config, seen)
    if action is Action.START_EMPTY:
        return _start_empty(config, seen, bucket)
    raise RefusedError(_refusal(action, config, seen, config_file))


def _keep(seen: Seen) -> DbOutcome:
    if seen.facts.local is LocalState.HEALTHY:
        log.info("healthy, kept", extra={"db": str(seen.db), "bytes": seen.size, "wal": seen.wal})
        reason = "integrity check ok"
    else:
        reason = "integrity check ok; same content as its replica (or no replica)"
    _write_marker(seen.db)
    return DbOutcome(str(seen.link), Outcome.KEPT, reason)


def _restore(config: AgentConfig, seen: Seen) -> DbOutcome:
    db, fetched = seen.db, seen.fetched
    assert fetched is not None  # decide restores only a replica that exists
    restored = check_fetched(config, db, fetched)
    old = db_files(db)  # stale -wal/-shm must never meet a restored DB
    if seen.facts.local in STALE_STATES and litestream_dir(db).exists():
        old.append(litestream_dir(db))  # its old position must not meet the new DB
    moved = quarantine(db, old)
    fetched.path.replace(db)  # same directory: an atomic rename
    _fsync_dir(db.parent)
    _write_marker(db)
    log.info(
        "restored from replica",
        extra={"db": str(db), "bytes": restored, "txid": fetched.txid or "", "was": seen.problem},
    )
    return DbOutcome(
        str(seen.link),
        Outcome.RESTORED,
        f"{seen.problem}; restored from replica",
        restored_bytes=restored,
        txid=fetched.txid,
        quarantined=moved,
        file_id=file_identity(db),
    )


def _first_start(config: AgentConfig, seen: Seen) -> DbOutcome:
    # Nothing to lose: no DB (or a 0-byte one, as some apps create before their schema) on a
    # volume that never held it, and the bucket, which answered, holds no replica.
    where = _replica_url(config, seen.link)
    log.info(
        "first start: the bucket answers and holds no replica; the app will create the DB",
        extra={"db": str(seen.db), "replica": where},
    )
    return DbOutcome(
        str(seen.link), Outcome.FIRST_START, f"no local data and no replica at {where}"
    )


def _start_empty(config: AgentConfig, seen: Seen, bucket: BucketCheck) -> DbOutcome:
    reason = _no_replica_reason(config, seen)
    moved = quarantine(seen.db, db_files(seen.db))
    if seen.facts.replica is Replica.DELETED:
        # Starting empty accepts the loss: a new DB's TXIDs start low again, and the old mark
        # would make the new replica look behind for ever.
        bucket.drop_mark(seen.link)
        log.warning("allow-empty: high-water mark removed", extra={"db": str(seen.link)})
    log.warning(
        "allow-empty: starting with an empty database",
        extra={"db": str(seen.db), "reason": reason, "quarantined": len(moved)},
    )
    return DbOutcome(str(seen.link), Outcome.STARTED_EMPTY, reason, quarantined=moved)


_STALE_CAUSE = {
    LocalState.OLDER: "it was probably restored from an old volume snapshot, and starting would "
    "make this old state the replica's newest",
    LocalState.DIFFERENT: "probably only the DB files came back from an old snapshot, and "
    "starting would make this state the replica's newest",
}


def _refusal(action: Action, config: AgentConfig, seen: Seen, config_file: Path) -> str:
    """The one-line reason of a refusing `action`."""
    db, link, problem = seen.db, seen.link, seen.problem
    if action is Action.REFUSE_STALE:
        return (
            f"{db} is {problem}: {_STALE_CAUSE[seen.facts.local]}; "
            "set STATEKEEPER_ON_STALE=restore (or --on-stale restore) to quarantine the "
            "local copy and restore the replica, or investigate"
        )
    if action is Action.REFUSE_BEHIND_MARK:
        assert seen.mark is not None
        position = restorable_position(ltx_json(config, db, config_file))
        return f"{link}: " + behind_message(config, link, position, seen.mark)
    if action is Action.REFUSE_REPLICA_GONE:  # it vanished since `litestream ltx` saw it
        return (
            f"{db} is {problem}, but the replica could not be restored (it disappeared); "
            "nothing was moved; investigate the bucket"
        )
    if action is Action.REFUSE_REPLICA_DELETED:
        assert seen.mark is not None
        return (
            f"{link} is {problem} and there is no replica at "
            f"s3://{config.bucket}/{config.replica_key(link)}, but its high-water mark says txid "
            f"{seen.mark.txid:016x} was acknowledged at {seen.mark.time}: the replica was "
            "deleted; refusing to start. Restore it from another copy, or pass --allow-empty "
            "(STATEKEEPER_ALLOW_EMPTY=true) to start empty"
        )
    return (
        f"{_no_replica_reason(config, seen)}; refusing to start. Fix the bucket settings or "
        "restore the data by hand; --allow-empty (STATEKEEPER_ALLOW_EMPTY=true) starts with an "
        "empty database"
    )


def _no_replica_reason(config: AgentConfig, seen: Seen) -> str:
    db, where = seen.db, _replica_url(config, seen.link)
    if seen.facts.local is LocalState.MISSING and not seen.facts.initialised:
        return f"{db} is missing but its -wal/-shm are present, and there is no replica at {where}"
    if seen.facts.local is LocalState.MISSING:
        return (
            f"{db} is missing from a volume statekeeper initialised before, and there is no "
            f"replica at {where} (wrong bucket or prefix, or deleted backups?)"
        )
    return f"{db} is {seen.problem} and there is no replica at {where}"


def _replica_url(config: AgentConfig, link: Path) -> str:
    return f"s3://{config.bucket}/{config.replica_key(link)}"


def _behind_mark(config: AgentConfig, seen: Seen, config_file: Path) -> bool:
    """Is the restored copy older than the replica's high-water mark? Then the replica lost
    acknowledged transactions (e.g. its newest LTX files were deleted)."""
    assert seen.fetched is not None and seen.mark is not None
    try:
        txid = int(seen.fetched.txid or "", 16)
    except ValueError:
        txid = restorable_position(ltx_json(config, seen.db, config_file)).restorable
    return txid < seen.mark.txid


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
                    outcomes.append(DbOutcome(str(db), Outcome.REFUSED, str(exc)))
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
            "kept": sum(o.action is Outcome.KEPT for o in outcomes),
            "restored": sum(o.action is Outcome.RESTORED for o in outcomes),
            "first_start": sum(o.action is Outcome.FIRST_START for o in outcomes),
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
