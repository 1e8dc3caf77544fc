"""A healthy local DB that is OLDER than its replica (litestream 0.5.17), with real parts
(moto S3, the real litestream binary, real SQLite files).

Scenario: a DB with N rows is replicated (replica TXID 1); the volume is copied aside (the "old
snapshot"); M more rows are written and replicated (replica TXID 2 = the newest state). The old
copy is then put back as the local DB: healthy, but behind the replica. Two variants:
`volume` brings back litestream's own `.app.db-litestream/` folder too (a volume snapshot, local
position TXID 1); `db-only` brings back only app.db/-wal/-shm (local position unknown).

Why it matters (observed with litestream 0.5.17):
litestream, started on such a DB, logs "detected database behind replica" but does NOT refuse:
since benbjohnson/litestream PR #783 a DB behind its replica is taken for a fresh restore, and its
state is written as the replica's new head (the next TXID), the app's next row on top of it. The
latest restore point then has N+1 rows: the M newer rows are silently gone from it, and can be
brought back only with `litestream restore -txid`, while their LTX files survive L0 retention
and compaction (in a separate run with `l0-retention: 2s` they were gone for good within
seconds). Litestream cannot tell a restore from a stale volume; statekeeper, before it starts,
can when it knows the local position:

  - `volume`: `agent restore` compares the highest local TXID (`.app.db-litestream/ltx/0/`)
    with the replica's (`litestream ltx`): it refuses (exit 3), nothing moved, the replica
    untouched; with STATEKEEPER_ON_STALE=restore it quarantines the local copy (db files and
    `.app.db-litestream/`) and restores the replica: all N+M rows, and replication continues
    from them.
  - `db-only`: without litestream's local files the position is unknown, so the DB is compared
    by content (`sqlite.content_digest`) with a scratch restore of the replica's newest state:
    it differs, so `agent restore` refuses (or, with on_stale=restore, quarantines and
    restores), and `agent run` refuses before starting litestream. A DB-only copy that holds
    exactly the newest state is kept.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from statekeeper.agent.config import AgentConfig
from statekeeper.agent.litestream import restore_command, write_config
from statekeeper.agent.restore import local_txid, read_status
from tests.agent.helpers import (
    add_rows,
    agent_config,
    agent_env,
    litestream_replicate,
    make_db,
    replica_max_txid,
    replica_objects,
    row_values,
    run_agent,
    unique_name,
    wait_for,
)
from tests.conftest import S3Server

pytestmark = pytest.mark.timeout(120)

OLD_ROWS = 5  # N: rows in the old snapshot
NEW_ROWS = 7  # M: rows written after the snapshot, replicated, then lost from the latest state


def restore_rows(
    config: AgentConfig, db: Path, work: Path, env: dict[str, str], name: str, *txid: str
) -> list[int]:
    """Ids in `db`'s replica restored with the real `litestream restore` (optionally -txid)."""
    config_file = write_config(config, work / f"restore-{name}.yml")
    output = work / f"restored-{name}.db"
    command = restore_command(config_file, db, output)
    if txid:
        command[2:2] = ["-txid", txid[0]]  # after `restore`, before `-config`
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return row_values(output)


def body_of(db: Path, row_id: int) -> str:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return str(con.execute("SELECT body FROM items WHERE id = ?", (row_id,)).fetchone()[0])
    finally:
        con.close()


def put_back(snapshot: Path, data: Path, *, with_litestream_state: bool) -> None:
    """Replace the volume `data` with the old `snapshot` (all of it, or only the DB files)."""
    shutil.rmtree(data)
    if with_litestream_state:
        shutil.copytree(snapshot, data)
        return
    data.mkdir()
    for file in snapshot.glob("app.db*"):
        shutil.copy2(file, data / file.name)


@dataclass
class Stale:
    """The world after an old copy of `db` came back: N rows local, N+M in the replica."""

    config: AgentConfig
    db: Path
    work: Path
    bucket: str
    old_txid: int
    newest_txid: int
    newest_keys: set[str]
    keys: Callable[[], set[str]]
    replicate: Callable[[], Any]


def make_stale(
    s3: S3Server, tmp_path: Path, child_env: dict[str, str], litestream_bin: str, *, volume: bool
) -> Stale:
    bucket = s3.make_bucket(unique_name())
    data, work = tmp_path / "data", tmp_path / "work"
    work.mkdir()
    db = make_db(data / "app.db", rows=OLD_ROWS)
    config = agent_config(s3.endpoint, bucket, sqlite_paths=[db])
    client = s3.client()  # type: ignore[no-untyped-call]

    def keys() -> set[str]:
        return set(replica_objects(client, bucket, config.replica_key(db)))

    def replicate() -> Any:
        return litestream_replicate(config, work, child_env, litestream_bin=litestream_bin)

    # N rows replicated; the volume copied aside (litestream stopped: a consistent copy).
    with replicate():
        wait_for(lambda: replica_max_txid(config, db, work) >= 1)
    old_txid = replica_max_txid(config, db, work)
    snapshot = tmp_path / "snapshot"
    shutil.copytree(data, snapshot)
    assert (snapshot / ".app.db-litestream").is_dir()  # litestream's local position

    # M more rows replicated: the newest state.
    with replicate():
        add_rows(db, NEW_ROWS, prefix="newer")
        wait_for(lambda: replica_max_txid(config, db, work) > old_txid)
    newest_txid = replica_max_txid(config, db, work)
    assert row_values(db) == list(range(1, OLD_ROWS + NEW_ROWS + 1))

    # The old copy comes back: healthy, older than the replica.
    put_back(snapshot, data, with_litestream_state=volume)
    assert row_values(db) == list(range(1, OLD_ROWS + 1))
    return Stale(config, db, work, bucket, old_txid, newest_txid, keys(), keys, replicate)


def tree(directory: Path) -> dict[str, bytes]:
    """Every file under `directory` (relative path → content)."""
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


def test_local_txid_reads_litestream_l0_names(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    assert local_txid(db) is None  # no folder: unknown
    level0 = tmp_path / ".app.db-litestream" / "ltx" / "0"
    level0.mkdir(parents=True)
    assert local_txid(db) is None  # empty folder: unknown, not 0
    for name in ("0000000000000001-0000000000000001.ltx", "0000000000000002-000000000000001f.ltx"):
        (level0 / name).write_bytes(b"")
    (level0 / "notes.txt").write_text("not litestream's")
    (level0 / "garbage-zz.ltx").write_bytes(b"")
    assert local_txid(db) == 0x1F


def test_stale_volume_is_refused_and_nothing_moves(
    s3: S3Server, tmp_path: Path, child_env: dict[str, str], litestream_bin: str
) -> None:
    world = make_stale(s3, tmp_path, child_env, litestream_bin, volume=True)
    before = tree(world.db.parent)

    env = agent_env(child_env, s3.endpoint, world.bucket, sqlite_paths=[world.db])
    result = run_agent(["restore"], env)

    assert result.returncode == 3, result.stderr
    error = [line for line in result.stderr.splitlines() if line.startswith("statekeeper: error")]
    assert len(error) == 1, result.stderr
    assert str(world.db) in error[0]
    assert "older than its replica" in error[0]
    assert f"local txid {world.old_txid:016x}" in error[0]
    assert f"replica txid {world.newest_txid:016x}" in error[0]
    assert "STATEKEEPER_ON_STALE=restore" in error[0]
    # Nothing moved or deleted (only the agent's own marker/status files may be new) ...
    after = tree(world.db.parent)
    assert {k: after[k] for k in before} == before
    assert not (world.db.parent / ".statekeeper-quarantine").exists()
    status = read_status(world.config)
    assert status is not None
    assert [d["action"] for d in status["databases"]] == ["refused"]
    # ... and the replica untouched: its latest state still has all N+M rows.
    assert world.keys() == world.newest_keys
    latest = restore_rows(world.config, world.db, world.work, child_env, "latest")
    assert latest == list(range(1, OLD_ROWS + NEW_ROWS + 1))


def test_stale_volume_on_stale_restore_quarantines_and_restores(
    s3: S3Server, tmp_path: Path, child_env: dict[str, str], litestream_bin: str
) -> None:
    world = make_stale(s3, tmp_path, child_env, litestream_bin, volume=True)
    old_files = tree(world.db.parent)

    env = agent_env(
        child_env, s3.endpoint, world.bucket, sqlite_paths=[world.db], on_stale="restore"
    )
    result = run_agent(["restore"], env)

    assert result.returncode == 0, result.stderr
    assert row_values(world.db) == list(range(1, OLD_ROWS + NEW_ROWS + 1))
    assert not (world.db.parent / ".app.db-litestream").exists()  # the old position moved away
    folders = list((world.db.parent / ".statekeeper-quarantine").iterdir())
    assert len(folders) == 1
    moved = tree(folders[0])
    # The old local copy, byte for byte: the DB files and litestream's folder.
    assert moved == {k: v for k, v in old_files.items() if not k.startswith(".statekeeper")}
    assert "app.db" in moved
    assert any(k.startswith(".app.db-litestream/ltx/0/") for k in moved)
    status = read_status(world.config)
    assert status is not None
    [outcome] = status["databases"]
    assert outcome["action"] == "restored"
    assert "older than its replica" in outcome["reason"]
    assert world.newest_keys <= world.keys()  # nothing deleted from the bucket

    # Replication continues from the restored state: the latest restore point keeps every row.
    with world.replicate():
        add_rows(world.db, 1, prefix="after")
        polls = iter(range(10_000))  # each poll restores into a fresh file

        def latest_has_new_row() -> bool:
            name = f"poll-{next(polls)}"
            rows = restore_rows(world.config, world.db, world.work, child_env, name)
            return len(rows) == OLD_ROWS + NEW_ROWS + 1

        wait_for(latest_has_new_row, interval=0.3)
    latest = restore_rows(world.config, world.db, world.work, child_env, "latest")
    assert latest == list(range(1, OLD_ROWS + NEW_ROWS + 2))
    assert body_of(world.work / "restored-latest.db", OLD_ROWS + 1).startswith("newer-")


def test_db_only_copy_is_refused_by_content(
    s3: S3Server, tmp_path: Path, child_env: dict[str, str], litestream_bin: str
) -> None:
    """Case 27 (issue 13 item 3): only the DB files came back, so the position is unknown. The
    DB is compared by content with a scratch restore of the replica: it differs, so `agent
    restore` refuses (nothing moved), and so does `agent run` before litestream starts."""
    world = make_stale(s3, tmp_path, child_env, litestream_bin, volume=False)
    before = tree(world.db.parent)
    env = agent_env(child_env, s3.endpoint, world.bucket, sqlite_paths=[world.db])

    result = run_agent(["restore"], env)
    assert result.returncode == 3, result.stderr
    error = [line for line in result.stderr.splitlines() if line.startswith("statekeeper: error")]
    assert len(error) == 1 and "differs" not in error[0]
    assert "different from its replica's newest state" in error[0]
    assert "position is unknown" in error[0] and "STATEKEEPER_ON_STALE=restore" in error[0]
    after = tree(world.db.parent)
    assert {k: after[k] for k in before} == before  # nothing moved
    assert not [p for p in world.db.parent.iterdir() if ".restoring-" in p.name]

    run = run_agent(["run"], {**env, "STATEKEEPER_PORT": "0"}, timeout=120)
    assert run.returncode == 3, run.stderr
    assert "litestream was not started" in run.stderr
    assert world.keys() == world.newest_keys  # the replica untouched by either
    latest = restore_rows(world.config, world.db, world.work, child_env, "latest")
    assert latest == list(range(1, OLD_ROWS + NEW_ROWS + 1))


def test_db_only_copy_on_stale_restore_quarantines_and_restores(
    s3: S3Server, tmp_path: Path, child_env: dict[str, str], litestream_bin: str
) -> None:
    world = make_stale(s3, tmp_path, child_env, litestream_bin, volume=False)
    env = agent_env(
        child_env, s3.endpoint, world.bucket, sqlite_paths=[world.db], on_stale="restore"
    )
    result = run_agent(["restore"], env)
    assert result.returncode == 0, result.stderr
    assert row_values(world.db) == list(range(1, OLD_ROWS + NEW_ROWS + 1))
    [folder] = list((world.db.parent / ".statekeeper-quarantine").iterdir())
    assert (folder / "app.db").exists()
    status = read_status(world.config)
    assert status is not None
    [outcome] = status["databases"]
    assert outcome["action"] == "restored"
    assert "different from its replica" in outcome["reason"]


def test_db_only_copy_of_the_newest_state_is_kept(
    s3: S3Server, tmp_path: Path, child_env: dict[str, str], litestream_bin: str
) -> None:
    """Same content as the replica's newest state (e.g. copied after a clean stop): kept."""
    world = make_stale(s3, tmp_path, child_env, litestream_bin, volume=False)
    newest = world.work / "restored-newest.db"
    assert len(restore_rows(world.config, world.db, world.work, child_env, "newest")) == (
        OLD_ROWS + NEW_ROWS
    )
    for suffix in ("", "-wal", "-shm"):
        Path(f"{world.db}{suffix}").unlink(missing_ok=True)
    shutil.copy2(newest, world.db)
    env = agent_env(child_env, s3.endpoint, world.bucket, sqlite_paths=[world.db])
    result = run_agent(["restore"], env)
    assert result.returncode == 0, result.stderr
    status = read_status(world.config)
    assert status is not None
    assert [d["action"] for d in status["databases"]] == ["kept"]
    assert "same content as its replica" in status["databases"][0]["reason"]
