"""Fault matrix of `statekeeper agent restore` (the init container), against real parts:
the real litestream and rclone binaries, a real moto S3 server on 127.0.0.1, real SQLite files.

Most cases run the CLI as a subprocess (`python -m statekeeper agent restore`), as users do.
Case numbers follow the issue's fault matrix; cases 9-11, 14, 15, 18-20 belong to `agent run`.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from statekeeper.agent.restore import QUARANTINE_DIR, STATUS_FILE, marker_path
from tests.agent.helpers import (
    add_rows,
    agent_config,
    agent_env,
    corrupt_db,
    make_db,
    replica_max_txid,
    replica_objects,
    row_values,
    run_agent,
    seed_replica,
    strict_s3_server,
    unique_name,
)
from tests.conftest import TEST_SECRET, S3Server

pytestmark = pytest.mark.timeout(120)


class World:
    """One test's bucket + paths, with helpers to seed and to run the agent."""

    def __init__(self, s3: S3Server, tmp_path: Path, child_env: dict[str, str], bin_: str) -> None:
        self.s3 = s3
        self.tmp = tmp_path
        self.base_env = child_env
        self.litestream = bin_
        self.bucket = s3.make_bucket(unique_name())
        self.work = tmp_path / "work"
        self.work.mkdir()

    def config(self, dbs: list[Path], dirs: list[Path] = ()) -> Any:  # type: ignore[assignment]
        return agent_config(
            self.s3.endpoint, self.bucket, sqlite_paths=dbs, config_paths=list(dirs)
        )

    def seed(self, dbs: list[Path], after_start: Any = None) -> None:
        seed_replica(
            self.config(dbs),
            self.work,
            self.base_env,
            litestream_bin=self.litestream,
            after_start=after_start,
        )

    def env(self, dbs: list[Path], dirs: list[Path] = (), **extra: str) -> dict[str, str]:  # type: ignore[assignment]
        return agent_env(
            self.base_env,
            self.s3.endpoint,
            self.bucket,
            sqlite_paths=dbs,
            config_paths=list(dirs),
            **extra,
        )

    def restore(
        self, dbs: list[Path], dirs: list[Path] = (), *args: str, **extra: str
    ) -> subprocess.CompletedProcess[str]:  # type: ignore[assignment]
        return run_agent(["restore", *args], self.env(dbs, dirs, **extra))


@pytest.fixture
def world(s3: S3Server, tmp_path: Path, child_env: dict[str, str], litestream_bin: str) -> World:
    return World(s3, tmp_path, child_env, litestream_bin)


def logs(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    """The agent's JSON log records (stderr lines that parse as JSON objects)."""
    records = []
    for line in result.stderr.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("statekeeper: error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def quarantined(db: Path) -> list[Path]:
    return sorted((db.parent / QUARANTINE_DIR).glob("*/*"))


def status(db: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((db.parent / STATUS_FILE).read_text())
    return data


# --- the matrix ----------------------------------------------------------------------------


def test_case_01_empty_bucket_first_start(world: World) -> None:
    db = world.tmp / "data" / "app.db"
    result = world.restore([db])
    assert result.returncode == 0, result.stderr
    assert not db.exists()  # the app creates it
    messages = [r["msg"] for r in logs(result)]
    assert any(m.startswith("first start") for m in messages), messages
    assert status(db)["databases"][0]["action"] == "first-start"
    # No marker yet: the volume has never held the DB, so a second first start is fine too.
    assert not marker_path(db).exists()
    assert world.restore([db]).returncode == 0


def test_case_02_restore_brings_back_snapshot_and_later_transactions(world: World) -> None:
    db = make_db(world.tmp / "src" / "app.db", rows=20)
    world.seed([db], after_start=lambda _proc: add_rows(db, 5))
    expected = row_values(db)
    assert len(expected) == 25
    # The replica holds more than the first snapshot: later transactions came as LTX files.
    assert replica_max_txid(world.config([db]), db, world.work) >= 2

    # The replica lives at the documented key: <prefix>/sqlite/<db file name>/.
    assert replica_objects(world.s3.client(), world.bucket, "app/sqlite/app.db")

    target = world.tmp / "fresh" / "app.db"  # same file name → same replica key
    result = world.restore([target])
    assert result.returncode == 0, result.stderr
    assert TEST_SECRET not in result.stdout + result.stderr
    assert row_values(target) == expected
    assert sqlite3.connect(target).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    info = status(target)["databases"][0]
    assert info["action"] == "restored"
    assert info["restored_bytes"] == target.stat().st_size
    assert status(target)["restored_bytes"] >= info["restored_bytes"]
    assert marker_path(target).exists()
    # No scratch files left behind next to the DB.
    leftovers = [p.name for p in target.parent.iterdir() if "restoring" in p.name]
    assert leftovers == []


@pytest.mark.parametrize("integrity", ["full", "quick"])
def test_case_03_corrupt_local_db_with_replica_is_quarantined_and_restored(
    world: World, integrity: str
) -> None:
    db = make_db(world.tmp / "data" / "app.db", rows=30)
    world.seed([db])
    expected = row_values(db)
    original = db.read_bytes()
    corrupt_db(db)
    damaged = db.read_bytes()
    assert damaged != original

    result = world.restore([db], integrity=integrity)
    assert result.returncode == 0, result.stderr
    assert row_values(db) == expected
    moved = {p.name: p for p in quarantined(db)}
    assert "app.db" in moved
    assert moved["app.db"].read_bytes() == damaged  # kept byte for byte, never deleted
    assert status(db)["databases"][0]["action"] == "restored"
    assert any(r["msg"] == "quarantined" for r in logs(result))


def test_case_04_corrupt_local_db_without_replica_refuses_and_deletes_nothing(
    world: World,
) -> None:
    db = make_db(world.tmp / "data" / "app.db", rows=5)
    corrupt_db(db)
    before = {p.name: p.read_bytes() for p in db.parent.iterdir() if p.is_file()}

    result = world.restore([db])
    assert result.returncode == 3, result.stderr
    line = error_line(result)
    assert "app.db" in line and "no replica" in line and "--allow-empty" in line
    after = {p.name: p.read_bytes() for p in db.parent.iterdir() if p.is_file()}
    # Every file is still there, byte for byte. New: the status file, and the empty -wal/-shm
    # any SQLite reader of a WAL-mode DB creates.
    assert {k: after[k] for k in before} == before
    assert set(after) - set(before) <= {STATUS_FILE, "app.db-wal", "app.db-shm"}
    assert quarantined(db) == []
    assert "Traceback" not in result.stderr


def test_allow_empty_quarantines_corrupt_db_without_replica(world: World) -> None:
    db = make_db(world.tmp / "data" / "app.db", rows=5)
    corrupt_db(db)
    damaged = db.read_bytes()
    result = world.restore([db], (), "--allow-empty")
    assert result.returncode == 0, result.stderr
    assert not db.exists()
    moved = {p.name: p for p in quarantined(db)}
    assert moved["app.db"].read_bytes() == damaged
    assert status(db)["databases"][0]["action"] == "started-empty"


@pytest.mark.parametrize("kind", ["refused", "silent"])
def test_case_05_s3_unreachable_refuses_within_bounded_time(
    world: World, child_env: dict[str, str], kind: str
) -> None:
    """Nothing listening (connection refused), or a server that accepts and never answers."""
    db = make_db(world.tmp / "data" / "app.db", rows=3)
    before = db.read_bytes()
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        if kind == "silent":
            silent.listen(16)  # the kernel accepts connections; nobody ever reads or replies
        port = silent.getsockname()[1]
        env = agent_env(
            child_env,
            f"http://127.0.0.1:{port}",
            world.bucket,
            sqlite_paths=[db],
            s3_timeout="2s",
            kill_grace="1s",
        )
        # The bound: run_agent's timeout (60 s) is far above s3_timeout but far below the
        # default restore timeout (1 h) a hanging restore would run into.
        result = run_agent(["restore"], env, timeout=60)
    assert result.returncode == 4, result.stderr
    line = error_line(result)
    assert "S3 unreachable" in line and world.bucket in line
    assert db.read_bytes() == before


def test_case_06_several_dbs_each_handled_on_its_own(world: World) -> None:
    kept = make_db(world.tmp / "data" / "kept.db", rows=4)
    broken = make_db(world.tmp / "data" / "broken.db", rows=6)
    gone = make_db(world.tmp / "other" / "gone.db", rows=8)
    world.seed([kept, broken, gone])
    add_rows(kept, 3)  # newer than its replica: must stay as is
    kept_rows, broken_rows, gone_rows = row_values(kept), row_values(broken), row_values(gone)
    corrupt_db(broken)
    for path in gone.parent.iterdir():
        path.unlink() if path.is_file() else None
    new = world.tmp / "data" / "new.db"  # never existed: first start

    result = world.restore([kept, broken, gone, new])
    assert result.returncode == 0, result.stderr
    assert row_values(kept) == kept_rows
    assert row_values(broken) == broken_rows
    assert row_values(gone) == gone_rows
    assert not new.exists()
    actions = {Path(d["db"]).name: d["action"] for d in status(kept)["databases"]}
    assert actions == {
        "kept.db": "kept",
        "broken.db": "restored",
        "gone.db": "restored",
        "new.db": "first-start",
    }
    assert "broken.db" in [p.name for p in quarantined(broken)]


def test_case_07_config_restore(world: World) -> None:
    client = world.s3.client()
    client.put_object(Bucket=world.bucket, Key="app/files/config/settings.yaml", Body=b"a: 1\n")
    client.put_object(Bucket=world.bucket, Key="app/files/config/sub/extra.json", Body=b"{}")
    client.put_object(Bucket=world.bucket, Key="app/files/config/edited.conf", Body=b"old")
    config_dir = world.tmp / "config"
    config_dir.mkdir()
    (config_dir / "local-only.txt").write_text("mine")
    edited = config_dir / "edited.conf"
    edited.write_text("newer local edit")
    future = time.time() + 3600
    os.utime(edited, (future, future))  # newer than the bucket's copy: --update keeps it

    result = world.restore([], [config_dir])
    assert result.returncode == 0, result.stderr
    assert (config_dir / "settings.yaml").read_text() == "a: 1\n"
    assert (config_dir / "sub" / "extra.json").read_text() == "{}"
    assert (config_dir / "local-only.txt").read_text() == "mine"  # copy, not sync
    assert edited.read_text() == "newer local edit"
    info = json.loads((config_dir / STATUS_FILE).read_text())["config_paths"][0]
    assert info["files"] == 2 and info["bytes"] == 7 and info["empty_remote"] is False


def test_case_08_config_restore_from_empty_prefix_returns_promptly(world: World) -> None:
    config_dir = world.tmp / "config"
    result = world.restore([], [config_dir], rclone_timeout="20s")
    assert result.returncode == 0, result.stderr
    info = json.loads((config_dir / STATUS_FILE).read_text())["config_paths"][0]
    assert info["empty_remote"] is True and info["files"] == 0


def test_case_12_wal_beside_healthy_db_keeps_its_transactions(world: World) -> None:
    db = make_db(world.tmp / "data" / "app.db", rows=10)
    # A writer that never checkpoints: its commits live only in the -wal when the pod dies.
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_autocheckpoint=0")
    con.executemany(
        "INSERT INTO items (id, body) VALUES (?, 'in-wal')", [(100 + i,) for i in range(7)]
    )
    con.commit()
    snapshot = {s: db.with_name(db.name + s).read_bytes() for s in ("", "-wal")}
    con.close()  # closing checkpoints; restore the pre-close files to mimic a crash
    for suffix, data in snapshot.items():
        db.with_name(db.name + suffix).write_bytes(data)
    wal = db.with_name("app.db-wal")
    assert wal.stat().st_size > 0

    result = world.restore([db])
    assert result.returncode == 0, result.stderr
    assert wal.exists() and wal.read_bytes() == snapshot["-wal"]  # never deleted, never touched
    assert row_values(db)[-7:] == list(range(100, 107))
    assert status(db)["databases"][0]["action"] == "kept"


def test_missing_db_with_stray_wal_quarantines_the_wal_before_restoring(world: World) -> None:
    db = make_db(world.tmp / "data" / "app.db", rows=12)
    world.seed([db])
    expected = row_values(db)
    db.unlink()
    stray = db.with_name("app.db-wal")
    stray.write_bytes(b"\x37\x7f\x06\x82" + b"\x00" * 60)  # a WAL header from another life
    result = world.restore([db])
    assert result.returncode == 0, result.stderr
    assert row_values(db) == expected
    moved = {p.name: p for p in quarantined(db)}
    assert moved["app.db-wal"].read_bytes()[:4] == b"\x37\x7f\x06\x82"  # kept, not deleted


def test_case_13_healthy_local_db_newer_than_replica_is_kept(world: World) -> None:
    db = make_db(world.tmp / "data" / "app.db", rows=5)
    world.seed([db])
    add_rows(db, 10)
    before = row_values(db)
    result = world.restore([db])
    assert result.returncode == 0, result.stderr
    assert row_values(db) == before == list(range(1, 16))
    assert status(db)["databases"][0]["action"] == "kept"
    assert quarantined(db) == []


@pytest.mark.parametrize("local", ["healthy", "missing"])
def test_case_16_wrong_credentials_clear_error_no_secret(
    tmp_path: Path, child_env: dict[str, str], local: str
) -> None:
    """Healthy DB: only the bucket check talks to S3; missing DB: litestream does first."""
    db = tmp_path / "data" / "app.db"
    if local == "healthy":
        make_db(db, rows=2)
    else:
        db.parent.mkdir()
    before = db.read_bytes() if db.exists() else None
    with strict_s3_server() as endpoint:
        env = agent_env(child_env, endpoint, "some-bucket", sqlite_paths=[db])
        wrong_secret = "wrong-secret-do-not-print-0123456789"
        env["AWS_ACCESS_KEY_ID"] = "AKIAWRONGKEYID000000"
        env["AWS_SECRET_ACCESS_KEY"] = wrong_secret
        result = run_agent(["restore"], env)
    assert result.returncode == 4, result.stderr
    line = error_line(result)
    assert "credentials refused" in line and "some-bucket" in line
    for secret in (wrong_secret, TEST_SECRET):
        assert secret not in result.stdout + result.stderr
    assert (db.read_bytes() if db.exists() else None) == before
    assert not (db.parent / ".statekeeper-quarantine").exists()


def test_marker_present_db_and_replica_missing_refuses(world: World) -> None:
    db = make_db(world.tmp / "data" / "app.db", rows=3)
    assert world.restore([db]).returncode == 0  # healthy → kept, marker written
    assert marker_path(db).exists()
    db.unlink()
    for suffix in ("-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)

    result = world.restore([db])
    assert result.returncode == 3, result.stderr
    line = error_line(result)
    assert "initialised before" in line and "--allow-empty" in line

    allowed = world.restore([db], (), allow_empty="true")
    assert allowed.returncode == 0, allowed.stderr
    assert status(db)["databases"][0]["action"] == "started-empty"


def test_zero_byte_db_is_a_first_start_unless_the_volume_held_data(world: World) -> None:
    db = world.tmp / "data" / "app.db"
    db.parent.mkdir()
    db.touch()  # some apps create the file before their schema
    result = world.restore([db])
    assert result.returncode == 0, result.stderr
    assert db.exists() and db.stat().st_size == 0
    assert status(db)["databases"][0]["action"] == "first-start"

    marker_path(db).write_text("{}")  # the volume held this DB before: now it was truncated
    refused = world.restore([db])
    assert refused.returncode == 3, refused.stderr
    assert "empty (0 bytes)" in error_line(refused)
    assert db.exists() and quarantined(db) == []


def test_restore_past_its_deadline_is_stopped_and_leaves_nothing_half_done(world: World) -> None:
    db = make_db(world.tmp / "src" / "app.db", rows=2000, payload=500)
    world.seed([db])
    target = world.tmp / "data" / "app.db"
    # 50 ms: less than litestream needs to start, so the deadline always strikes first.
    result = world.restore([target], (), restore_timeout="50ms", kill_grace="1s")
    assert result.returncode == 4, result.stderr
    assert "did not finish within 0.05s" in error_line(result)
    assert not target.exists()
    assert [p.name for p in target.parent.iterdir() if "restoring" in p.name] == []


def test_restored_copy_failing_its_check_refuses(world: World) -> None:
    """A replica of an already damaged DB restores to a damaged copy: refuse, keep it aside."""
    source = make_db(world.tmp / "src" / "app.db", rows=300, payload=200)
    con = sqlite3.connect(source)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    with source.open("r+b") as handle:  # garbage in the middle of a table page
        handle.seek(4096 * 5 + 200)
        handle.write(b"\x00\xff" * 600)
    world.seed([source])  # litestream copies pages as they are

    target = world.tmp / "data" / "app.db"
    result = world.restore([target])
    assert result.returncode == 3, result.stderr
    line = error_line(result)
    assert "fails its integrity check" in line and "app.db" in line
    assert not target.exists()
    kept = quarantined(target)
    assert [p.name for p in kept] == ["app.db"]  # the bad copy is kept for inspection
    assert [p.name for p in target.parent.iterdir() if "restoring" in p.name] == []


# --- bounded child processes (agent/procs.py), with real processes ----------------------------


def test_run_bounded_stops_a_hung_child_with_sigterm_then_sigkill(tmp_path: Path) -> None:
    from statekeeper.agent.procs import run_bounded
    from statekeeper.errors import InfraError

    marker = tmp_path / "got-term"
    # A child that ignores SIGTERM (after noting it) and would sleep for a minute.
    script = (
        "import signal, sys, time, pathlib\n"
        f"signal.signal(signal.SIGTERM, lambda *a: pathlib.Path({str(marker)!r}).touch())\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    env = {"PATH": os.environ["PATH"], "SECRET_TOKEN": "do-not-leak-0123456789"}
    started = time.monotonic()
    with pytest.raises(InfraError) as err:
        run_bounded([sys.executable, "-c", script], env=env, timeout=1.0, grace=0.5)
    assert time.monotonic() - started < 30  # far below the child's 60 s
    assert marker.exists()  # SIGTERM came first ...
    message = str(err.value)
    assert "did not finish within 1s" in message  # ... then SIGKILL, and a one-line error
    assert "do-not-leak" not in message and "\n" not in message


def test_run_bounded_abort_stops_the_child_and_raises_the_reason() -> None:
    from statekeeper.agent.procs import run_bounded
    from statekeeper.errors import InfraError

    reason = InfraError("S3 unreachable: test")
    calls = iter([None, None, reason])
    with pytest.raises(InfraError, match="S3 unreachable: test"):
        run_bounded(
            [sys.executable, "-c", "import time; time.sleep(60)"],
            env={"PATH": os.environ["PATH"]},
            timeout=60,
            grace=1,
            abort=lambda: next(calls, reason),
        )


def test_run_bounded_returns_output_and_exit_status() -> None:
    from statekeeper.agent.procs import run_bounded

    result = run_bounded(
        [sys.executable, "-c", "import sys; print('out'); sys.exit(3)"],
        env={"PATH": os.environ["PATH"]},
        timeout=30,
        grace=1,
    )
    assert (result.returncode, result.stdout.strip()) == (3, "out")


# --- the generated litestream config (agent/litestream.py) ---------------------------------


def test_litestream_config_has_only_known_keys_no_secret_and_is_accepted(
    tmp_path: Path, litestream_bin: str, child_env: dict[str, str]
) -> None:
    import yaml

    from statekeeper.agent.litestream import render_config, write_config

    dbs = [tmp_path / "a" / "app.db", tmp_path / "b" / "other.db"]
    config = agent_config("http://127.0.0.1:9", "bkt", "myapp", sqlite_paths=dbs)
    text = render_config(config)
    assert TEST_SECRET not in text
    document = yaml.safe_load(text)
    assert set(document) == {"dbs"}
    for db, entry in zip(dbs, document["dbs"], strict=True):
        assert set(entry) == {"path", "replica"}
        assert entry["path"] == str(db)
        # Keys of litestream 0.5's ReplicaConfig/ReplicaSettings (cmd/litestream/main.go).
        assert entry["replica"] == {
            "type": "s3",
            "bucket": "bkt",
            "path": f"myapp/sqlite/{db.name}",
            "region": "us-east-1",
            "endpoint": "http://127.0.0.1:9",
            "force-path-style": True,
        }
    config_file = write_config(config, tmp_path / "litestream.yml")
    assert config_file.stat().st_mode & 0o077 == 0  # 0600
    listed = subprocess.run(
        [litestream_bin, "databases", "-config", str(config_file), "-no-expand-env"],
        env=child_env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert str(dbs[0]) in listed.stdout and str(dbs[1]) in listed.stdout


def test_file_system_error_is_one_line_exit_4_not_a_traceback(
    tmp_path: Path, child_env: dict[str, str]
) -> None:
    """A DB path under a regular file (a wrong mount): one `statekeeper: error:` line naming the
    path, exit 4 (infrastructure), and the file in the way is left as it was."""
    blocker = tmp_path / "data"
    blocker.write_text("not a directory\n")
    env = agent_env(
        child_env, "http://127.0.0.1:1", "some-bucket", sqlite_paths=[blocker / "app.db"]
    )
    result = run_agent(["restore"], env, timeout=60)
    assert result.returncode == 4, result.stderr
    assert "Traceback" not in result.stderr
    assert str(blocker) in error_line(result)
    assert blocker.read_text() == "not a directory\n"
