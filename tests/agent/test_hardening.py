"""Agent hardening (issue 13): faults beyond the first twenty, numbered from case 21, against
real parts: the real litestream and rclone binaries, a moto S3 server on 127.0.0.1 (behind a
loopback TCP proxy where a test needs a slow, hanging or partitioned S3) and real SQLite files.

Waits are for events (a file appearing, a process ending, a metric changing), never fixed sleeps.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.agent.helpers import (
    TcpProxy,
    agent_config,
    agent_env,
    make_db,
    pid_alive,
    process_children,
    row_values,
    run_agent,
    seed_replica,
    unique_name,
    wait_for,
)
from tests.conftest import S3Server

pytestmark = pytest.mark.timeout(180)


def add_random_rows(path: Path, count: int, size: int) -> None:
    """Rows of incompressible bytes, so that a replica's size is the DB's size."""
    con = sqlite3.connect(path)
    try:
        con.executemany(
            "INSERT INTO items (body) VALUES (?)", [(os.urandom(size).hex(),) for _ in range(count)]
        )
        con.commit()
    finally:
        con.close()


def records(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


# --- 21 ------------------------------------------------------------------------------------


def test_case_21_killed_restore_leaves_no_child_and_its_scratch_is_removed_next_start(
    s3: S3Server, tmp_path: Path, child_env: dict[str, str], litestream_bin: str
) -> None:
    bucket = s3.make_bucket(unique_name())
    source = make_db(tmp_path / "src" / "app.db", rows=0)
    add_random_rows(source, 400, 4000)  # ~3.3 MB of incompressible rows
    work = tmp_path / "work"
    work.mkdir()
    seed_replica(
        agent_config(s3.endpoint, bucket, sqlite_paths=[source]),
        work,
        child_env,
        litestream_bin=litestream_bin,
    )
    target = tmp_path / "data" / "app.db"
    # Downloads crawl through a proxy at 64 KB/s: the restore is still running when killed.
    proxy = TcpProxy(s3.port, rate=64 * 1024)
    try:
        env = agent_env(child_env, proxy.endpoint, bucket, sqlite_paths=[target])
        left: list[Path] = []
        for _ in range(2):  # killed twice, as in the report
            agent = subprocess.Popen(
                [sys.executable, "-m", "statekeeper", "agent", "restore"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                restorer = wait_for(lambda a=agent: _restore_children(a.pid), timeout=60)[0]
                wait_for(lambda: _scratch_bytes(target) > 0, timeout=60)
            finally:
                agent.kill()  # SIGKILL: no handler runs, no cleanup in the agent
                agent.wait()
            # The litestream child dies with the agent instead of finishing into the scratch.
            wait_for(lambda r=restorer: not pid_alive(r), timeout=30)
            # Each attempt removes the scratch folder of the one before: one is left, not two.
            (leftover,) = _scratch_folders(target)
            assert leftover not in left
            left.append(leftover)
    finally:
        proxy.close()

    env = agent_env(child_env, s3.endpoint, bucket, sqlite_paths=[target])
    result = run_agent(["restore"], env)
    assert result.returncode == 0, result.stderr
    assert _scratch_folders(target) == []  # the leftover was removed at start
    removed = [r for r in records(result.stderr) if "interrupted restore" in r.get("msg", "")]
    assert [r["folder"] for r in removed] == [str(left[1])]
    assert removed[0]["bytes"] > 0
    assert row_values(target) == row_values(source)


def _restore_children(pid: int) -> list[int]:
    return [p for p in process_children(pid) if _is_restore(p)]


def _is_restore(pid: int) -> bool:
    try:
        args = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return len(args) > 1 and args[0].endswith(b"litestream") and args[1] == b"restore"


def _scratch_folders(db: Path) -> list[Path]:
    return sorted(p for p in db.parent.iterdir() if ".restoring-" in p.name)


def _scratch_bytes(db: Path) -> int:
    return sum(f.stat().st_size for d in _scratch_folders(db) for f in d.rglob("*") if f.is_file())
