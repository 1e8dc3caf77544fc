"""SQLite checks the agent relies on: integrity, row counts, the files that make up a database.

The user's database is opened read-only (`mode=ro`): a read-write connection would checkpoint
and delete the `-wal` file when it closes. A read-only connection still reads the committed
transactions in the `-wal`, so they are part of what the check sees.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from statekeeper.errors import InfraError

IntegrityMode = Literal["full", "quick"]

# SQLite result codes meaning "the bytes are damaged", as opposed to "cannot open / busy".
_CORRUPT_CODES = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB
SIDECAR_SUFFIXES = ("-wal", "-shm", "-journal")


@dataclass(frozen=True)
class IntegrityResult:
    """`ok` is True only when the check returned exactly one row `ok`."""

    ok: bool
    detail: str


def db_files(db: Path) -> list[Path]:
    """`db` and its existing `-wal`, `-shm`, `-journal` files, in that order."""
    candidates = [db, *(db.with_name(db.name + s) for s in SIDECAR_SUFFIXES)]
    return [p for p in candidates if p.exists()]


def _connect(db: Path, read_only: bool) -> sqlite3.Connection:
    if read_only:
        return sqlite3.connect(f"file:{quote(str(db.absolute()))}?mode=ro", uri=True, timeout=30)
    return sqlite3.connect(str(db), timeout=30)


def integrity_check(
    db: Path, mode: IntegrityMode = "full", *, read_only: bool = True
) -> IntegrityResult:
    """`PRAGMA integrity_check` (or `quick_check`) of `db`, including its `-wal`.

    Damage (SQLITE_CORRUPT / SQLITE_NOTADB, or a check reporting problems) gives `ok=False`.
    Anything else that stops the check (permissions, a lock held by another process) is not
    evidence of damage and raises InfraError instead: the DB must not be quarantined for it.
    """
    pragma = "integrity_check" if mode == "full" else "quick_check"
    try:
        con = _connect(db, read_only)
        try:
            rows = [str(r[0]) for r in con.execute(f"PRAGMA {pragma}").fetchall()]
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorcode", None) in _CORRUPT_CODES:
            return IntegrityResult(False, str(exc))
        raise InfraError(f"cannot check {db}: {exc}; check file permissions and locks") from None
    if rows == ["ok"]:
        return IntegrityResult(True, "ok")
    return IntegrityResult(False, "; ".join(rows[:3]) + (" ..." if len(rows) > 3 else ""))


def table_row_counts(db: Path) -> dict[str, int]:
    """Row count of every user table of `db` (read-only); litestream's own bookkeeping tables
    (`_litestream_seq`, `_litestream_lock`) are left out."""
    con = _connect(db, read_only=True)
    try:
        names = [
            str(r[0])
            for r in con.execute(
                "SELECT name FROM sqlite_schema WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
                "AND name NOT LIKE '\\_litestream\\_%' ESCAPE '\\' ORDER BY name"
            )
        ]
        counts: dict[str, int] = {}
        for name in names:
            quoted = '"' + name.replace('"', '""') + '"'
            counts[name] = int(con.execute(f"SELECT count(*) FROM {quoted}").fetchone()[0])
        return counts
    finally:
        con.close()


def content_digest(db: Path) -> str:
    """SHA-256 of `db`'s logical content (schema and rows, as `iterdump` writes them; read-only,
    including its `-wal`). Two files holding the same data have the same digest whatever their
    page layout, e.g. a live DB and a `litestream restore` of its replica."""
    digest = hashlib.sha256()
    con = _connect(db, read_only=True)
    try:
        for line in con.iterdump():
            if "_litestream_" in line:
                continue  # litestream's own bookkeeping, if any
            digest.update(line.encode())
            digest.update(b"\n")
    finally:
        con.close()
    return digest.hexdigest()
