"""The high-water mark: what the sidecar saw acknowledged in each replica, kept beside it.

After a status probe finds a replica restorable (`restorable_position`), the sidecar writes
`<prefix>/hwm/<db name>.json` = {txid (hex), time, holder} whenever the restorable TXID grew.
It lives outside the replica's own prefix, so deleting the replica (or its newest LTX files)
leaves the mark behind as evidence: `agent restore` and `agent verify` compare the replica with
it, and a replica behind its own acknowledged mark is an error, never a silent partial restore.

litestream 0.5 TXIDs only grow: a restored DB continues from the replica's TXID, and a re-seed
after the replica was wiped writes a snapshot at the current local TXID. So a replica whose
restorable TXID is below the mark has lost acknowledged data.

Restorable position of an LTX listing (`litestream ltx -level all -json`): from the newest
snapshot (level 9), follow LTX files of any level whose range starts at or before the next TXID;
the chain's end is the newest TXID a restore reaches. A gap (a deleted L0 file not yet compacted
into a higher level) ends the chain early; no snapshot means nothing restorable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from statekeeper.agent.config import AgentConfig
from statekeeper.errors import InfraError

if TYPE_CHECKING:
    from statekeeper.agent.lease import LeaseStore

SNAPSHOT_LEVEL = 9


@dataclass(frozen=True)
class Position:
    """What a replica's LTX listing says: `snapshot` (newest snapshot TXID, 0 = none),
    `restorable` (end of the chain from it, 0 = nothing restorable) and `newest` (highest TXID
    of any file)."""

    snapshot: int
    restorable: int
    newest: int

    @property
    def gap(self) -> bool:
        return self.restorable < self.newest


def _txid(entry: dict[str, Any], key: str) -> int:
    try:
        return int(str(entry[key]), 16)
    except (KeyError, ValueError):
        raise InfraError(f"litestream ltx printed an entry without a valid {key}") from None


def restorable_position(entries: list[dict[str, Any]]) -> Position:
    """The `Position` of a replica from its LTX listing (see the module doc)."""
    ranges = [(_txid(e, "min_txid"), _txid(e, "max_txid"), int(e.get("level", 0))) for e in entries]
    newest = max((hi for _, hi, _ in ranges), default=0)
    snapshot = max((hi for _, hi, level in ranges if level == SNAPSHOT_LEVEL), default=0)
    if not snapshot:
        return Position(0, 0, newest)
    reached = snapshot
    while True:
        further = [hi for lo, hi, _ in ranges if lo <= reached + 1 and hi > reached]
        if not further:
            return Position(snapshot, reached, newest)
        reached = max(further)


@dataclass(frozen=True)
class Mark:
    txid: int
    time: str
    holder: str


def mark_key(config: AgentConfig, db: Path) -> str:
    """`<prefix>/hwm/<db file name>.json` (the configured name, like the replica's key)."""
    return f"{config.prefix}/hwm/{db.name}.json"


def read_mark(config: AgentConfig, db: Path, store: LeaseStore) -> Mark | None:
    """The stored mark of `db`, None when there is none. InfraError when S3 cannot answer or
    the object is not a mark (never guess a position from it)."""
    stored = store.get(mark_key(config, db))
    if stored is None:
        return None
    try:
        data = json.loads(stored.body)
        return Mark(int(str(data["txid"]), 16), str(data["time"]), str(data.get("holder", "")))
    except (ValueError, KeyError, TypeError):
        raise InfraError(
            f"s3://{config.bucket}/{mark_key(config, db)} is not a high-water mark; "
            "delete it or fix it"
        ) from None


def write_mark(config: AgentConfig, db: Path, txid: int, store: LeaseStore) -> Mark:
    """Store the mark `txid` of `db` (InfraError when S3 cannot answer)."""
    mark = Mark(txid, datetime.now(UTC).isoformat(timespec="seconds"), config.holder)
    body = json.dumps(
        {"db": db.name, "txid": f"{txid:016x}", "time": mark.time, "holder": mark.holder}
    )
    from statekeeper.agent.lease import S3Error

    try:
        store.put(mark_key(config, db), body.encode())
    except S3Error as err:
        raise InfraError(store.describe(err)) from None
    return mark


def behind_message(config: AgentConfig, db: Path, position: Position, mark: Mark) -> str:
    """One line: the replica of `db` is behind its mark, with what to do about it."""
    where = f"s3://{config.bucket}/{config.replica_key(db)}"
    return (
        f"the replica {where} restores only up to txid {position.restorable:016x}, behind its "
        f"high-water mark {mark.txid:016x} (acknowledged {mark.time} by {mark.holder or '?'}): "
        "acknowledged transactions are missing from the bucket; restore a point in time by hand "
        f"(`litestream restore -txid {position.restorable:016x}` or `-timestamp`) and, to accept "
        f"that loss, delete s3://{config.bucket}/{mark_key(config, db)}"
    )
