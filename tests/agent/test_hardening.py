"""Agent hardening (issue 13): faults beyond the first twenty, numbered from case 21, against
real parts: the real litestream and rclone binaries, a moto S3 server on 127.0.0.1 (behind a
loopback TCP proxy where a test needs a slow, hanging or partitioned S3) and real SQLite files.

Waits are for events (a file appearing, a process ending, a metric changing), never fixed sleeps.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.agent.helpers import (
    TcpProxy,
    add_rows,
    agent_config,
    agent_env,
    make_db,
    pid_alive,
    process_children,
    replica_objects,
    row_values,
    run_agent,
    seed_replica,
    unique_name,
    wait_for,
)
from tests.agent.test_run import (
    FAST,
    Sidecar,
    Writer,
    replicators_of,
    restore_replica,
    sidecars,
    start,
)
from tests.conftest import S3Server

__all__ = ["sidecars"]  # the fixture, shared with test_run

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


# --- sidecar helpers -------------------------------------------------------------------------


def sidecar_env(
    child_env: dict[str, str], endpoint: str, bucket: str, db: Path, **extra: str
) -> dict[str, str]:
    return agent_env(child_env, endpoint, bucket, sqlite_paths=[db], **{**FAST, **extra})


# --- 22 ------------------------------------------------------------------------------------


def test_case_22_symlinked_db_path_replicates_and_restores_through_the_link(
    s3: S3Server,
    tmp_path: Path,
    child_env: dict[str, str],
    litestream_bin: str,
    sidecars: list[Sidecar],
) -> None:
    bucket = s3.make_bucket(unique_name())
    real = make_db(tmp_path / "volume" / "real" / "app.db", rows=20)
    link = tmp_path / "volume" / "app.db"
    link.symlink_to(real)
    env = sidecar_env(child_env, s3.endpoint, bucket, link)
    sidecar = start(sidecars, env, tmp_path)
    wait_for(lambda: sidecar.get("/ready")[0] == 200, timeout=60)
    add_rows(link, 30, prefix="through-the-link")  # the app writes through the link
    wait_for(lambda: sidecar.metric("statekeeper_litestream_replicating", db=str(link)), timeout=60)
    assert sidecar.metric("statekeeper_litestream_sync_errors_total", db=str(link)) == 0.0
    assert sidecar.terminate() == 0
    expected = row_values(link)
    assert len(expected) == 50
    # (the bare litestream CLI is given the real path, as the agent gives it)
    config = agent_config(s3.endpoint, bucket, sqlite_paths=[real])
    assert restore_replica(config, real, tmp_path / "check.db", child_env, litestream_bin) == (
        expected
    )

    # The volume is lost but the link (e.g. from the image) is still there: the restore goes
    # through it, and the link stays a link.
    shutil.rmtree(real.parent)
    result = run_agent(["restore"], sidecar_env(child_env, s3.endpoint, bucket, link))
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and real.is_file()
    assert row_values(link) == expected


# --- 23 ------------------------------------------------------------------------------------


def test_case_23_litestream_sync_errors_show_in_metrics_and_readiness(
    s3: S3Server, tmp_path: Path, child_env: dict[str, str], sidecars: list[Sidecar]
) -> None:
    bucket = s3.make_bucket(unique_name())
    db = make_db(tmp_path / "data" / "app.db", rows=20)
    proxy = TcpProxy(s3.port)
    try:
        # A lease TTL longer than the partition: the sync errors, not the lease, are observed.
        env = sidecar_env(
            child_env, proxy.endpoint, bucket, db, lease_ttl="120s", sync_stale_after="5s"
        )
        sidecar = start(sidecars, env, tmp_path)
        label = str(db)
        wait_for(lambda: sidecar.get("/ready")[0] == 200, timeout=60)
        wait_for(lambda: sidecar.metric("statekeeper_litestream_replicating", db=label), timeout=60)
        assert sidecar.metric("statekeeper_litestream_consecutive_errors", db=label) == 0.0

        proxy.set_mode("drop")  # S3 partitioned away: litestream is up, no sync succeeds
        add_rows(db, 5, prefix="during-partition")
        wait_for(
            lambda: sidecar.metric("statekeeper_litestream_replicating", db=label) == 0.0,
            timeout=60,
        )
        assert sidecar.metric("statekeeper_litestream_up") == 1.0  # up, yet not replicating
        _status, body = wait_for(lambda: _not_ready(sidecar), timeout=60)
        assert "has not synced" in body and label in body
        proxy.set_mode("pass")
        wait_for(lambda: sidecar.metric("statekeeper_litestream_replicating", db=label), timeout=90)
        wait_for(lambda: sidecar.get("/ready")[0] == 200, timeout=60)

        # A local failure litestream reports on every sync: its LTX folder is not a folder.
        state = db.with_name(".app.db-litestream")
        state.rename(state.with_name("aside"))
        state.write_text("not a directory\n")
        add_rows(db, 5, prefix="during-local-failure")
        errors = wait_for(
            lambda: sidecar.metric("statekeeper_litestream_sync_errors_total", db=label), timeout=60
        )
        assert errors >= 1
        wait_for(
            lambda: (
                (sidecar.metric("statekeeper_litestream_consecutive_errors", db=label) or 0) >= 1
            ),
            timeout=60,
        )
        _status, body = wait_for(lambda: _not_ready(sidecar), timeout=60)
        assert "has not synced" in body and "not a directory" in body
        state.unlink()
        state.with_name("aside").rename(state)
        wait_for(
            lambda: sidecar.metric("statekeeper_litestream_consecutive_errors", db=label) == 0.0,
            timeout=90,
        )
        wait_for(lambda: sidecar.get("/ready")[0] == 200, timeout=60)
        assert sidecar.metric("statekeeper_litestream_replicating", db=label) == 1.0
        assert sidecar.terminate() == 0
    finally:
        proxy.close()


def _not_ready(sidecar: Sidecar) -> tuple[int, str] | None:
    status, body = sidecar.get("/ready")
    return (status, body) if status == 503 else None


# --- 24 ------------------------------------------------------------------------------------


def test_case_24_replica_deleted_while_running_is_alerted_and_reseeded(
    s3: S3Server,
    tmp_path: Path,
    child_env: dict[str, str],
    litestream_bin: str,
    sidecars: list[Sidecar],
) -> None:
    bucket = s3.make_bucket(unique_name())
    db = make_db(tmp_path / "data" / "app.db", rows=20)
    label = str(db)
    sidecar = start(sidecars, sidecar_env(child_env, s3.endpoint, bucket, db), tmp_path)
    wait_for(lambda: sidecar.metric("statekeeper_replica_restorable", db=label) == 1.0, timeout=60)
    config = agent_config(s3.endpoint, bucket, sqlite_paths=[db])
    client = s3.client()
    assert mark_txid(s3, config, db) >= 1  # the high-water mark object exists

    writer = Writer(db, pause=0.05)  # the app keeps writing throughout
    writer.start()
    try:
        wait_for(lambda: len(writer.committed) > 20, timeout=60)
        deleted_at = time.time()
        for key in replica_objects(client, bucket, config.replica_key(db)):
            client.delete_object(Bucket=bucket, Key=key)
        wait_for(
            lambda: sidecar.metric("statekeeper_replica_restorable", db=label) == 0.0, timeout=60
        )
        alerts = [r for r in sidecar.records() if r.get("msg") == "replica not restorable"]
        assert alerts and alerts[0]["level"] == "error" and alerts[0]["db"] == label
        wait_for(
            lambda: sidecar.metric("statekeeper_replica_reseeds_total", db=label) == 1.0,
            timeout=60,
        )
        wait_for(
            lambda: sidecar.metric("statekeeper_replica_restorable", db=label) == 1.0, timeout=90
        )
        good = sidecar.metric("statekeeper_replica_last_restorable_timestamp_seconds", db=label)
        assert good is not None and good > deleted_at
    finally:
        writer.stop()
    wait_for(
        lambda: any(r.get("msg") == "replica restorable again" for r in sidecar.records()),
        timeout=30,
    )
    assert sidecar.terminate() == 0
    restored = restore_replica(config, db, tmp_path / "check.db", child_env, litestream_bin)
    assert restored == row_values(db)


def mark_txid(s3: S3Server, config: Any, db: Path) -> int:
    body = s3.client().get_object(Bucket=config.bucket, Key=f"{config.prefix}/hwm/{db.name}.json")
    return int(json.loads(body["Body"].read())["txid"], 16)


# --- 25 ------------------------------------------------------------------------------------


def test_case_25_newest_ltx_deleted_verify_and_restore_refuse_by_the_high_water_mark(
    s3: S3Server, tmp_path: Path, child_env: dict[str, str], sidecars: list[Sidecar]
) -> None:
    bucket = s3.make_bucket(unique_name())
    db = make_db(tmp_path / "data" / "app.db", rows=50)
    label = str(db)
    # Scratch restores every 2 s too (the less frequent, thorough half of the check).
    env = sidecar_env(child_env, s3.endpoint, bucket, db, restore_check_interval="2s")
    sidecar = start(sidecars, env, tmp_path)
    wait_for(lambda: sidecar.metric("statekeeper_replica_restorable", db=label) == 1.0, timeout=60)
    wait_for(
        lambda: any(r.get("msg") == "scratch restore checked" for r in sidecar.records()),
        timeout=60,
    )
    for batch in range(3):  # three more transactions, each acknowledged in its own LTX file
        before = sidecar.metric("statekeeper_replica_restorable_txid", db=label) or 0
        add_rows(db, 100, prefix=f"batch-{batch}")
        wait_for(
            lambda b=before: (
                (sidecar.metric("statekeeper_replica_restorable_txid", db=label) or 0) > b
            ),
            timeout=60,
        )
    assert sidecar.terminate() == 0
    drills = [r for r in sidecar.records() if r.get("msg") == "scratch restore checked"]
    assert drills and all(r["ok"] for r in drills)
    config = agent_config(s3.endpoint, bucket, sqlite_paths=[db])
    mark = mark_txid(s3, config, db)
    client = s3.client()
    newest = [
        key
        for key in replica_objects(client, bucket, config.replica_key(db))
        if key.endswith(f"-{mark:016x}.ltx") and "/0009/" not in key
    ]
    assert newest
    for key in newest:  # every file holding the newest transaction
        client.delete_object(Bucket=bucket, Key=key)

    verify = run_agent(["verify"], env)
    assert verify.returncode == 5, verify.stderr
    report = json.loads(verify.stdout)["databases"][0]
    assert report["high_water_mark"] == f"{mark:016x}"
    assert any("behind its high-water mark" in p for p in report["problems"])

    target = tmp_path / "empty-volume" / "app.db"
    result = run_agent(["restore"], sidecar_env(child_env, s3.endpoint, bucket, target))
    assert result.returncode == 3, result.stderr
    line = [ln for ln in result.stderr.splitlines() if ln.startswith("statekeeper: error:")]
    assert len(line) == 1 and "high-water mark" in line[0] and "litestream restore -txid" in line[0]
    assert not target.exists()
    assert [p for p in target.parent.iterdir() if ".restoring-" in p.name] == []


# --- 26 ------------------------------------------------------------------------------------


class ReplicatorSampler(threading.Thread):
    """Counts the `litestream replicate` processes on `db` every 20 ms; `most` is the peak."""

    def __init__(self, db: Path) -> None:
        super().__init__(daemon=True)
        self.db = db
        self.most = 0
        self.samples = 0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(0.02):
            self.most = max(self.most, len(replicators_of(self.db)))
            self.samples += 1

    def stop(self) -> int:
        self.halt.set()
        self.join(timeout=10)
        return self.most


@pytest.mark.parametrize("fault", ["sigstop", "hanging-renewal", "partition"])
def test_case_26_fencing_holds_when_the_holder_is_frozen_hung_or_cut_off(
    fault: str,
    s3: S3Server,
    tmp_path: Path,
    child_env: dict[str, str],
    litestream_bin: str,
    sidecars: list[Sidecar],
) -> None:
    bucket = s3.make_bucket(unique_name())
    db = make_db(tmp_path / "data" / "app.db", rows=20)
    proxy = TcpProxy(s3.port)  # pod-a reaches S3 through it; pod-b directly
    writer = Writer(db, pause=0.02)
    sampler = ReplicatorSampler(db)
    try:
        pod_a = start(sidecars, sidecar_env(child_env, proxy.endpoint, bucket, db), tmp_path)
        wait_for(lambda: pod_a.get("/ready")[0] == 200, timeout=60)
        env_b = sidecar_env(child_env, s3.endpoint, bucket, db, holder="pod-b")
        pod_b = start(sidecars, env_b, tmp_path)
        wait_for(
            lambda: any(r.get("msg") == "waiting for the lease" for r in pod_b.records()),
            timeout=60,
        )
        writer.start()
        sampler.start()
        wait_for(lambda: len(writer.committed) > 50, timeout=60)

        if fault == "sigstop":
            os.kill(pod_a.proc.pid, signal.SIGSTOP)  # frozen longer than the lease TTL
        else:
            proxy.set_mode("hang" if fault == "hanging-renewal" else "drop")
        wait_for(lambda: pod_b.get("/ready")[0] == 200, timeout=90)
        wait_for(lambda: len(replicators_of(db)) == 1, timeout=30)
        assert replicators_of(db) == pod_b.litestream_children()
        assert pod_a.litestream_children() == []  # fenced, though pod-a could not act
        committed = len(writer.committed)
        wait_for(lambda: len(writer.committed) > committed + 50, timeout=60)

        if fault == "sigstop":
            os.kill(pod_a.proc.pid, signal.SIGCONT)
        else:
            proxy.set_mode("pass")
        # pod-a learns it lost the lease and stays out: no second replicator, ever.
        wait_for(lambda: "pod-b" in pod_a.get("/ready")[1], timeout=60)
        assert pod_a.get("/ready")[0] == 503
        writer.stop()
        assert pod_b.terminate() == 0
        assert pod_a.terminate() == 0
        assert sampler.stop() == 1 and sampler.samples > 10
    finally:
        writer.halt.set()
        sampler.halt.set()
        proxy.close()
    fenced = [r for r in pod_a.records() if "fenced" in str(r.get("msg", ""))]
    assert fenced, "pod-a's litestream was not stopped by the fence"
    config = agent_config(s3.endpoint, bucket, sqlite_paths=[db])
    restored = restore_replica(config, db, tmp_path / "check.db", child_env, litestream_bin)
    assert restored == row_values(db)  # not one committed row short


# --- 29-31: smaller ones (item 8) --------------------------------------------------------------

HALF_DONE_TRANSACTION = """
import os, sqlite3, sys
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("PRAGMA cache_size=5")  # tiny cache: the transaction spills pages into the DB file
con.execute("BEGIN")
con.executemany("INSERT INTO items (body) VALUES (?)", [("z" * 2000,) for _ in range(3000)])
os._exit(0)  # the app dies mid-transaction: no COMMIT, no ROLLBACK
"""


def test_case_29_hot_rollback_journal_is_rolled_back_after_a_copy(
    s3: S3Server, tmp_path: Path, child_env: dict[str, str]
) -> None:
    bucket = s3.make_bucket(unique_name())
    db = tmp_path / "data" / "app.db"
    db.parent.mkdir()
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, body TEXT)")
    con.executemany("INSERT INTO items (body) VALUES (?)", [(f"row-{i}",) for i in range(100)])
    con.commit()
    con.close()
    subprocess.run([sys.executable, "-c", HALF_DONE_TRANSACTION, str(db)], check=True)
    journal = db.with_name("app.db-journal")
    assert journal.stat().st_size > 0  # a hot journal
    torn_size = db.stat().st_size

    result = run_agent(["restore"], agent_env(child_env, s3.endpoint, bucket, sqlite_paths=[db]))
    assert result.returncode == 0, result.stderr
    assert row_values(db) == list(range(1, 101))  # the unfinished transaction is gone
    [folder] = list((db.parent / ".statekeeper-quarantine").iterdir())
    assert sorted(p.name for p in folder.iterdir()) == ["app.db", "app.db-journal"]
    assert (folder / "app.db").stat().st_size == torn_size  # the copy as found
    assert any("hot rollback journal" in r.get("msg", "") for r in records(result.stderr))


def test_case_30_sidecar_with_missing_db_but_replica_data_is_not_ready(
    s3: S3Server,
    tmp_path: Path,
    child_env: dict[str, str],
    litestream_bin: str,
    sidecars: list[Sidecar],
) -> None:
    bucket = s3.make_bucket(unique_name())
    db = make_db(tmp_path / "data" / "app.db", rows=10)
    work = tmp_path / "work"
    work.mkdir()
    seed_replica(
        agent_config(s3.endpoint, bucket, sqlite_paths=[db]),
        work,
        child_env,
        litestream_bin=litestream_bin,
    )
    shutil.rmtree(db.parent)  # the volume is empty and no init container restored it
    sidecar = start(sidecars, sidecar_env(child_env, s3.endpoint, bucket, db), tmp_path)
    status, body = wait_for(
        lambda: (lambda r: r if "does not exist" in r[1] else None)(sidecar.get("/ready")),
        timeout=60,
    )
    assert status == 503 and str(db) in body and "agent restore" in body
    assert sidecar.terminate() == 0


def test_case_31_run_without_credentials_fails_fast(
    child_env: dict[str, str], tmp_path: Path
) -> None:
    env = {k: v for k, v in child_env.items() if not k.startswith("AWS_")}
    env = sidecar_env(env, "http://127.0.0.1:9", "bkt", tmp_path / "app.db")
    result = run_agent(["run"], env, timeout=60)
    assert result.returncode == 4
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("statekeeper: error:") and "AWS_ACCESS_KEY_ID" in lines[-1]


def test_case_32_a_plain_http_server_is_not_reported_as_a_missing_bucket(
    child_env: dict[str, str], tmp_path: Path
) -> None:
    """An endpoint that speaks HTTP but not S3 (a web server answering 404 to everything)."""
    import http.server

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(404)
            self.send_header("Content-Length", "9")
            self.end_headers()
            self.wfile.write(b"not found")

        do_HEAD = do_GET

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        env = agent_env(child_env, endpoint, "bkt", sqlite_paths=[tmp_path / "app.db"])
        for command in (["restore"], ["verify"]):
            result = run_agent(command, {**env, "STATEKEEPER_S3_TIMEOUT": "2s"}, timeout=60)
            assert result.returncode == 4, result.stderr
            line = result.stderr.strip().splitlines()[-1]
            assert "does not look like an S3 server" in line and "does not exist" not in line
    finally:
        server.shutdown()


def test_case_34_disk_full_during_restore_names_enospc_and_the_space_needed(
    s3: S3Server, tmp_path: Path, child_env: dict[str, str], litestream_bin: str
) -> None:
    """The target volume is a 256 KiB tmpfs, mounted in a private user + mount namespace
    (`unshare -rm`), smaller than the replica's snapshot."""
    bucket = s3.make_bucket(unique_name())
    source = make_db(tmp_path / "src" / "app.db", rows=0)
    add_random_rows(source, 200, 2000)  # ~0.8 MB incompressible
    work = tmp_path / "work"
    work.mkdir()
    seed_replica(
        agent_config(s3.endpoint, bucket, sqlite_paths=[source]),
        work,
        child_env,
        litestream_bin=litestream_bin,
    )
    volume = tmp_path / "volume"
    volume.mkdir()
    target = volume / "app.db"
    env = agent_env(child_env, s3.endpoint, bucket, sqlite_paths=[target])
    script = (
        f'mount -t tmpfs -o size=256k tmpfs "{volume}" && '
        f'exec "{sys.executable}" -m statekeeper agent restore'
    )
    result = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 4, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("statekeeper: error: no space left on device (ENOSPC)")
    assert "bytes free" in line and "needs at least" in line
    assert "S3 reachability" not in line


def test_case_35_replica_deleted_while_down_is_not_a_first_start(
    s3: S3Server, tmp_path: Path, child_env: dict[str, str], sidecars: list[Sidecar]
) -> None:
    """The high-water mark outlives the replica: a restore onto an empty volume refuses instead
    of starting empty; --allow-empty starts empty and removes the mark (the loss is accepted)."""
    bucket = s3.make_bucket(unique_name())
    db = make_db(tmp_path / "data" / "app.db", rows=30)
    sidecar = start(sidecars, sidecar_env(child_env, s3.endpoint, bucket, db), tmp_path)
    wait_for(
        lambda: sidecar.metric("statekeeper_replica_restorable", db=str(db)) == 1.0, timeout=60
    )
    assert sidecar.terminate() == 0
    config = agent_config(s3.endpoint, bucket, sqlite_paths=[db])
    client = s3.client()
    for key in replica_objects(client, bucket, config.replica_key(db)):
        client.delete_object(Bucket=bucket, Key=key)

    target = tmp_path / "new-volume" / "app.db"
    env = sidecar_env(child_env, s3.endpoint, bucket, target)
    refused = run_agent(["restore"], env)
    assert refused.returncode == 3, refused.stderr
    line = refused.stderr.strip().splitlines()[-1]
    assert "high-water mark" in line and "the replica was deleted" in line
    assert not target.exists()

    started = run_agent(["restore", "--allow-empty"], env)
    assert started.returncode == 0, started.stderr
    assert replica_objects(client, bucket, f"{config.prefix}/hwm") == []
