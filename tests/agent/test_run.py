"""`statekeeper agent run` (the sidecar) end to end: `python -m statekeeper agent run` as a
subprocess, the real litestream and rclone binaries, a real moto S3 server and real SQLite files.

Fault-matrix cases 9, 10, 11, 14, 15, 18, 19, 20. Intervals are shortened through the same
STATEKEEPER_* variables users set; waits are bounded polls, never fixed sleeps.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from statekeeper.agent.config import AgentConfig
from statekeeper.agent.lease import Lease
from statekeeper.agent.litestream import ltx_json, write_config
from statekeeper.agent.run import newest_ltx_time
from tests.agent.helpers import (
    add_rows,
    agent_config,
    agent_env,
    make_db,
    process_children,
    replica_objects,
    row_values,
    run_agent,
    seed_replica,
    unique_name,
    wait_for,
)
from tests.conftest import TEST_SECRET, S3Server

pytestmark = pytest.mark.timeout(150)

# Short but realistic settings: litestream's own sync interval stays at its 1 s default.
FAST = {
    "rclone_interval": "1s",
    "rclone_jitter": "0",
    "lease_ttl": "6s",
    "lease_heartbeat": "1s",
    "status_interval": "1s",
    "shutdown_timeout": "8s",
    "kill_grace": "2s",
    "s3_timeout": "2s",
    "rclone_timeout": "20s",
    "port": "0",
    "holder": "pod-a",
}


class Sidecar:
    """One `statekeeper agent run` process; its JSON log goes to a file we can read."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "statekeeper", "agent", "run"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            text=True,
        )
        self.port = int(wait_for(self._started_port, timeout=30))

    def records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"msg": line, "level": "raw"})
        return out

    def _started_port(self) -> int | None:
        if self.proc.poll() is not None:
            raise AssertionError(f"sidecar exited early:\n{self.log_path.read_text()}")
        for record in self.records():
            if record.get("msg") == "sidecar started":
                return int(record["port"])
        return None

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return int(r.status), r.read().decode()
        except urllib.error.HTTPError as err:
            return int(err.code), err.read().decode()

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        status, body = self.get("/metrics")
        assert status == 200
        values = {}
        for family in text_string_to_metric_families(body):
            for sample in family.samples:
                values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return values

    def metric(self, name: str, **labels: str) -> float | None:
        return self.metrics().get((name, tuple(sorted(labels.items()))))

    def litestream_children(self) -> list[int]:
        """`litestream replicate` processes under this sidecar (they run under the fence, a
        watchdog child; the short `litestream ltx` status probes are left out)."""
        found = []
        for pid in process_children(self.proc.pid):
            for candidate in [pid, *process_children(pid)]:
                args = cmdline(candidate).split()
                if len(args) > 1 and args[0].endswith("litestream") and args[1] == "replicate":
                    found.append(candidate)
        return found

    def terminate(self, timeout: float = 40) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


def cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def replicators_of(db: Path) -> list[int]:
    """Every `litestream replicate` process on this machine whose config names `db`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        args = cmdline(int(entry.name)).split()
        if len(args) > 3 and args[0].endswith("litestream") and args[1] == "replicate":
            config_file = Path(args[args.index("-config") + 1])
            try:
                if str(db) in config_file.read_text():
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


@pytest.fixture
def sidecars(tmp_path: Path) -> Iterator[list[Sidecar]]:
    """Started sidecars, killed at the end whatever happened."""
    started: list[Sidecar] = []
    yield started
    for sidecar in started:
        sidecar.close()


def start(sidecars: list[Sidecar], env: dict[str, str], tmp_path: Path) -> Sidecar:
    sidecar = Sidecar(env, tmp_path / f"sidecar-{len(sidecars)}.log")
    sidecars.append(sidecar)
    return sidecar


def restore_replica(
    config: AgentConfig, db: Path, out: Path, env: dict[str, str], litestream_bin: str
) -> list[int]:
    """Restore `db`'s replica with the real `litestream restore` into `out`; check it; ids."""
    ids = try_restore_replica(config, db, out, env, litestream_bin)
    assert ids is not None, f"no replica of {db} to restore"
    return ids


def try_restore_replica(
    config: AgentConfig, db: Path, out: Path, env: dict[str, str], litestream_bin: str
) -> list[int] | None:
    """Like `restore_replica`, but None while the replica holds nothing restorable yet. A
    restored copy that fails its integrity check is an error, never "not yet"."""
    config_file = write_config(config, out.parent / f"restore-{out.name}.yml", dbs=[db])
    cmd = [litestream_bin, "restore", "-config", str(config_file), "-no-expand-env"]
    result = subprocess.run(
        [*cmd, "-o", str(out), str(db)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        assert "no matching backup" in result.stderr, result.stderr
        return None
    con = sqlite3.connect(out)
    try:
        check = con.execute("PRAGMA integrity_check").fetchall()
    finally:
        con.close()
    assert check == [("ok",)], f"restored replica fails its integrity check: {check}"
    return row_values(out)


def wait_for_replica_to_reach(
    config: AgentConfig,
    db: Path,
    expected: list[int],
    work: Path,
    env: dict[str, str],
    litestream_bin: str,
    stall: float = 90.0,
    in_flight: int | None = None,
) -> list[int]:
    """Restore the replica until it holds exactly `expected`. Fails when a restore is not a
    prefix of `expected` (a gap or a torn transaction), or when the replica makes no progress
    for `stall` seconds: waiting on an event, not on a fixed deadline.

    `in_flight`: the id of a transaction a killed writer may have left complete in the WAL but
    unpublished in the WAL index (killed between the two writes of a commit). SQLite's readers
    do not see it, litestream (which reads WAL frames itself) may replicate it: the replica may
    then hold `expected + [in_flight]`, never anything else."""
    n = itertools.count()
    best, progress_at = -1, time.monotonic()
    allowed = [*expected, in_flight] if in_flight is not None else expected
    while True:
        ids = try_restore_replica(config, db, work / f"r-{next(n)}.db", env, litestream_bin)
        if ids is not None:
            assert ids == allowed[: len(ids)], "restored rows are not a prefix of the local rows"
            if ids in (expected, allowed):
                return ids
            if len(ids) > best:
                best, progress_at = len(ids), time.monotonic()
        assert time.monotonic() - progress_at < stall, (
            f"replica stuck at {best} of {len(expected)} rows for {stall:g}s"
        )
        time.sleep(0.5)


def replica_txid(config: AgentConfig, db: Path, work: Path) -> int:
    config_file = write_config(config, work / "probe.yml", dbs=[db])
    entries = ltx_json(config, db, config_file)
    return max((int(str(e["max_txid"]), 16) for e in entries), default=0)


def local_txid(db: Path) -> int:
    """Number of write transactions SQLite committed, as litestream counts them (approx):
    we compare replicas by content instead, this is only used for waiting."""
    return len(row_values(db))


class Writer(threading.Thread):
    """Commits one row per transaction until stopped; `committed` holds the ids committed."""

    def __init__(self, db: Path, pause: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.db = db
        self.pause = pause
        self.halt = threading.Event()
        self.committed: list[int] = []

    def run(self) -> None:
        con = sqlite3.connect(self.db, timeout=10)
        try:
            start_id = int(con.execute("SELECT coalesce(max(id), 0) FROM items").fetchone()[0])
            next_id = start_id + 1
            while not self.halt.is_set():
                con.execute("INSERT INTO items (id, body) VALUES (?, ?)", (next_id, "w" * 64))
                con.commit()
                self.committed.append(next_id)
                next_id += 1
                self.halt.wait(self.pause)
        finally:
            con.close()

    def stop(self) -> list[int]:
        self.halt.set()
        self.join(timeout=30)
        return self.committed


def setup_app(
    s3: S3Server, tmp_path: Path, child_env: dict[str, str], *, rows: int = 20, **extra: str
) -> tuple[AgentConfig, dict[str, str], Path, Path]:
    """A bucket, a WAL DB with `rows` rows, a config dir with two files; config and env."""
    bucket = s3.make_bucket(unique_name())
    db = make_db(tmp_path / "data" / "app.db", rows=rows)
    conf = tmp_path / "config"
    conf.mkdir()
    (conf / "app.yaml").write_text("setting: 1\n")
    (conf / "extra.ini").write_text("[x]\ny=2\n")
    settings = {**FAST, **extra}
    env = agent_env(
        child_env, s3.endpoint, bucket, "app", sqlite_paths=[db], config_paths=[conf], **settings
    )
    config = agent_config(s3.endpoint, bucket, "app", sqlite_paths=[db], config_paths=[conf])
    return config, env, db, conf


def remote_config_files(s3: S3Server, config: AgentConfig, conf: Path) -> dict[str, bytes]:
    client = s3.client()
    prefix = config.files_key(conf) + "/"
    files: dict[str, bytes] = {}
    for key in replica_objects(client, config.bucket, config.files_key(conf)):
        # A sync running meanwhile may move a listed key into the history folder: skip it, the
        # caller polls again.
        try:
            files[key[len(prefix) :]] = client.get_object(Bucket=config.bucket, Key=key)[
                "Body"
            ].read()
        except client.exceptions.NoSuchKey:
            continue
    return files


def no_secret_in_logs(sidecar: Sidecar) -> None:
    assert TEST_SECRET not in sidecar.log_path.read_text()


# --- log relay -----------------------------------------------------------------------------


def test_litestream_json_lines_become_structured_records(caplog: pytest.LogCaptureFixture) -> None:
    """litestream's JSON log repeats "level" (log level, then a compaction level): the first wins,
    fields are kept, and a non-JSON line is still relayed."""
    from statekeeper.agent.litestream import relay_litestream_line

    caplog.set_level(logging.DEBUG, logger="statekeeper.agent")
    relay_litestream_line(
        '{"time":"t","level":"INFO","msg":"starting compaction monitor","level":2,"interval":1}\n'
    )
    relay_litestream_line('{"time":"t","level":"WARN","msg":"sync error","db":"app.db"}')
    relay_litestream_line("plain text line")
    records = [(r.levelno, r.getMessage(), r.__dict__.get("source")) for r in caplog.records]
    assert records == [
        (logging.INFO, "starting compaction monitor", "litestream"),
        (logging.WARNING, "sync error", "litestream"),
        (logging.INFO, "plain text line", "litestream"),
    ]
    assert caplog.records[0].__dict__["interval"] == 1
    assert caplog.records[1].__dict__["db"] == "app.db"


# --- 9 -------------------------------------------------------------------------------------


def test_case_09_sigterm_during_replication_flushes_everything(
    s3: S3Server,
    tmp_path: Path,
    child_env: dict[str, str],
    litestream_bin: str,
    sidecars: list[Sidecar],
) -> None:
    config, env, db, _ = setup_app(s3, tmp_path, child_env)
    sidecar = start(sidecars, env, tmp_path)
    wait_for(lambda: sidecar.get("/ready")[0] == 200, timeout=30)

    writer = Writer(db)
    writer.start()
    wait_for(lambda: len(writer.committed) > 150, timeout=30)
    committed = writer.stop()
    # SIGTERM right after the last commit: no time for a regular 1 s sync to happen.
    assert sidecar.terminate() == 0

    restored = restore_replica(config, db, tmp_path / "restored.db", child_env, litestream_bin)
    assert restored == row_values(db)
    assert set(committed) <= set(restored)
    assert sidecar.litestream_children() == []
    records = sidecar.records()
    stopped = [r["msg"] for r in records]
    assert "litestream stopped" in stopped and "lease released" in stopped
    # the generated litestream keys took effect: `logging: json` (its lines arrive parsed, with
    # fields) and `socket` (the pre-SIGTERM `litestream sync -wait` went through it)
    assert any(
        r.get("source") == "litestream" and r.get("msg") == "initialized db" and "path" in r
        for r in records
    )
    assert "final litestream sync done" in stopped
    no_secret_in_logs(sidecar)


# --- 10 ------------------------------------------------------------------------------------


def test_case_10_s3_down_sidecar_stays_up_and_catches_up(
    s3: S3Server,
    tmp_path: Path,
    child_env: dict[str, str],
    litestream_bin: str,
    sidecars: list[Sidecar],
) -> None:
    # A lease ttl longer than the outage: replication is paused by S3, not by the lease.
    config, env, db, conf = setup_app(s3, tmp_path, child_env, lease_ttl="60s")
    sidecar = start(sidecars, env, tmp_path)
    wait_for(lambda: sidecar.get("/ready")[0] == 200, timeout=30)
    wait_for(lambda: sidecar.metric("statekeeper_s3_up") == 1.0, timeout=30)
    wait_for(
        lambda: sidecar.metric("statekeeper_rclone_last_success_timestamp_seconds", path=str(conf)),
        timeout=30,
    )

    s3.stop()
    try:
        add_rows(db, 25, prefix="during-outage")
        (conf / "app.yaml").write_text("setting: changed during the outage\n")
        wait_for(lambda: sidecar.metric("statekeeper_s3_up") == 0.0, timeout=30)
        failures = wait_for(
            lambda: sidecar.metric("statekeeper_rclone_sync_failures_total", path=str(conf)),
            timeout=30,
        )
        assert failures >= 1
        assert sidecar.proc.poll() is None
        assert sidecar.get("/healthz")[0] == 200
        assert sidecar.metric("statekeeper_litestream_up") == 1.0  # still running, retrying
    finally:
        s3.start()

    failed_before = time.time()
    wait_for(lambda: sidecar.metric("statekeeper_s3_up") == 1.0, timeout=30)
    wait_for(
        lambda: (
            (
                sidecar.metric("statekeeper_rclone_last_success_timestamp_seconds", path=str(conf))
                or 0
            )
            > failed_before
        ),
        timeout=30,
    )
    assert remote_config_files(s3, config, conf)["app.yaml"] == (
        b"setting: changed during the outage\n"
    )
    # The replica catches up while the sidecar keeps running (no SIGTERM flush needed).
    expected = row_values(db)
    n = iter(range(1000))

    def caught_up() -> bool:
        out = tmp_path / f"catchup-{next(n)}.db"
        try:
            return restore_replica(config, db, out, child_env, litestream_bin) == expected
        except AssertionError:
            return False

    wait_for(caught_up, timeout=45, interval=1.0)
    assert sidecar.terminate() == 0


# --- 11 ------------------------------------------------------------------------------------


def test_case_11_metrics_match_reality(
    s3: S3Server,
    tmp_path: Path,
    child_env: dict[str, str],
    sidecars: list[Sidecar],
) -> None:
    config, env, db, conf = setup_app(s3, tmp_path, child_env)
    before = time.time()
    sidecar = start(sidecars, env, tmp_path)
    wait_for(lambda: sidecar.get("/ready")[0] == 200, timeout=30)

    # lease held ⇔ the lease object names this holder
    assert sidecar.metric("statekeeper_lease_held") == 1.0
    lease = json.loads(
        s3.client().get_object(Bucket=config.bucket, Key=config.lease_key)["Body"].read()
    )
    assert lease["holder"] == "pod-a"

    # litestream up ⇔ exactly one litestream child
    assert sidecar.metric("statekeeper_litestream_up") == 1.0
    pids = wait_for(sidecar.litestream_children, timeout=10)
    assert len(pids) == 1
    # no secret in the child's argv or in the config file it reads
    args = cmdline(pids[0]).split()
    assert TEST_SECRET not in " ".join(args)
    assert TEST_SECRET not in Path(args[args.index("-config") + 1]).read_text()

    # last successful sync time: after start, and the files really are in the bucket
    synced_at = wait_for(
        lambda: sidecar.metric("statekeeper_rclone_last_success_timestamp_seconds", path=str(conf)),
        timeout=30,
    )
    assert before <= synced_at <= time.time()
    assert set(remote_config_files(s3, config, conf)) == {"app.yaml", "extra.ini"}
    assert sidecar.metric("statekeeper_rclone_sync_failures_total", path=str(conf)) == 0.0
    assert (sidecar.metric("statekeeper_rclone_sync_duration_seconds_count") or 0) >= 1
    assert sidecar.metric("statekeeper_restored_bytes") == 0.0  # no restore ran for this pod

    # replica newest timestamp == what litestream itself reports for the replica
    wait_for(lambda: replica_objects(s3.client(), config.bucket, config.replica_key(db)))
    work = tmp_path / "probe"
    work.mkdir()

    def newest_matches() -> bool:
        truth = newest_ltx_time(ltx_json(config, db, write_config(config, work / "c.yml")))
        shown = sidecar.metric("statekeeper_replica_newest_timestamp_seconds", db=str(db))
        return truth is not None and shown == truth

    wait_for(newest_matches, timeout=30, interval=0.5)
    lag = sidecar.metric("statekeeper_replica_lag_seconds", db=str(db))
    shown_newest = sidecar.metric("statekeeper_replica_newest_timestamp_seconds", db=str(db))
    assert lag is not None and shown_newest is not None
    assert 0 <= lag <= time.time() - shown_newest + 0.5

    # litestream killed behind the sidecar's back → counted, restarted, up again
    os.kill(pids[0], signal.SIGKILL)
    wait_for(lambda: sidecar.metric("statekeeper_litestream_restarts_total") == 1.0, timeout=20)
    new_pids = wait_for(
        lambda: [p for p in sidecar.litestream_children() if p != pids[0]], timeout=20
    )
    assert len(new_pids) == 1
    wait_for(lambda: sidecar.metric("statekeeper_litestream_up") == 1.0, timeout=20)
    assert sidecar.terminate() == 0


# --- 14 ------------------------------------------------------------------------------------


def test_case_14_two_sidecars_on_one_db_only_one_replicates(
    s3: S3Server,
    tmp_path: Path,
    child_env: dict[str, str],
    litestream_bin: str,
    sidecars: list[Sidecar],
) -> None:
    config, env, db, _ = setup_app(s3, tmp_path, child_env)
    first = start(sidecars, {**env, "STATEKEEPER_HOLDER": "pod-old"}, tmp_path)
    wait_for(lambda: first.get("/ready")[0] == 200, timeout=30)
    second = start(sidecars, {**env, "STATEKEEPER_HOLDER": "pod-new"}, tmp_path)

    # the newcomer sees the lease, waits, does not replicate
    wait_for(
        lambda: any(r.get("msg") == "waiting for the lease" for r in second.records()), timeout=30
    )
    status, body = second.get("/ready")
    assert status == 503 and "pod-old" in body
    assert second.metric("statekeeper_lease_held") == 0.0
    assert second.metric("statekeeper_litestream_up") == 0.0
    assert second.litestream_children() == []
    assert replicators_of(db) == first.litestream_children()
    assert len(replicators_of(db)) == 1

    add_rows(db, 10, prefix="by-old")
    assert first.terminate() == 0  # releases the lease on the way out

    wait_for(lambda: second.get("/ready")[0] == 200, timeout=30)
    assert second.metric("statekeeper_lease_held") == 1.0
    wait_for(lambda: len(replicators_of(db)) == 1, timeout=10)
    assert replicators_of(db) == second.litestream_children()
    add_rows(db, 10, prefix="by-new")
    assert second.terminate() == 0
    restored = restore_replica(config, db, tmp_path / "restored.db", child_env, litestream_bin)
    assert restored == row_values(db)


def test_case_14_losing_the_lease_stops_litestream(
    s3: S3Server,
    tmp_path: Path,
    child_env: dict[str, str],
    sidecars: list[Sidecar],
) -> None:
    config, env, _, _ = setup_app(s3, tmp_path, child_env)
    sidecar = start(sidecars, env, tmp_path)
    wait_for(lambda: sidecar.get("/ready")[0] == 200, timeout=30)
    assert len(wait_for(sidecar.litestream_children, timeout=10)) == 1

    # Another replica overwrites the lease directly (an unconditional write, as after a forced
    # takeover). Releasing it first would race the sidecar's own loop, which takes a free lease
    # back within a heartbeat.
    intruder = Lease(agent_config(s3.endpoint, config.bucket, "app", holder="pod-intruder"))
    assert intruder._write(if_match=None, create=False)
    # The intruder heartbeats like a live pod, so its lease cannot expire (TTL 6 s) while a
    # loaded machine runs the checks below; every renewal must still find the lease its own.
    renewals: list[bool] = []
    stop_renewing = threading.Event()

    def heartbeat() -> None:
        while not stop_renewing.wait(1.0):
            renewals.append(intruder.renew())

    renewer = threading.Thread(target=heartbeat, daemon=True)
    renewer.start()

    wait_for(lambda: sidecar.metric("statekeeper_lease_held") == 0.0, timeout=30)
    wait_for(lambda: sidecar.litestream_children() == [], timeout=30)
    assert sidecar.metric("statekeeper_litestream_up") == 0.0
    wait_for(lambda: "pod-intruder" in sidecar.get("/ready")[1], timeout=10)
    assert sidecar.get("/ready")[0] == 503
    assert sidecar.proc.poll() is None
    stop_renewing.set()
    renewer.join(timeout=10)
    assert all(renewals)  # the sidecar never wrote over the new holder's lease
    assert intruder.renew() is True
    # Nor did it push an explicit final sync into a replica that now has another writer.
    messages = [str(r.get("msg", "")) for r in sidecar.records()]
    assert "stopping litestream" in messages
    assert not [m for m in messages if m.startswith("final litestream sync")]
    assert sidecar.terminate() == 0
    assert intruder.renew() is True  # nor delete it on its way out


# --- 15 ------------------------------------------------------------------------------------

WRITER_SCRIPT = """
import sqlite3, sys
con = sqlite3.connect(sys.argv[1], timeout=10)
next_id = int(con.execute("SELECT coalesce(max(id), 0) FROM items").fetchone()[0]) + 1
while True:
    con.execute("INSERT INTO items (id, body) VALUES (?, ?)", (next_id, "k" * 64))
    con.commit()
    print(next_id, flush=True)
    next_id += 1
"""


def test_case_15_kill_9_of_writer_mid_load_restore_is_consistent(
    s3: S3Server,
    tmp_path: Path,
    child_env: dict[str, str],
    litestream_bin: str,
    sidecars: list[Sidecar],
) -> None:
    config, env, db, _ = setup_app(s3, tmp_path, child_env)
    sidecar = start(sidecars, env, tmp_path)
    wait_for(lambda: sidecar.get("/ready")[0] == 200, timeout=30)

    out_path = tmp_path / "writer.out"
    with out_path.open("w") as out:
        writer = subprocess.Popen([sys.executable, "-c", WRITER_SCRIPT, str(db)], stdout=out)
        try:
            wait_for(lambda: len(out_path.read_text().split()) > 300, timeout=90)
        finally:
            writer.kill()  # SIGKILL, mid-transaction stream
            writer.wait()
    reported = [int(x) for x in out_path.read_text().split()]

    # The sidecar is alive: the replica catches up (an event, however long a loaded machine
    # takes: the wait fails only when the replica stops making progress). Every restore on the
    # way must pass its integrity check and be a prefix of the local rows.
    local = row_values(db)
    assert local[-1] >= reported[-1]
    ids = wait_for_replica_to_reach(
        config, db, local, tmp_path, child_env, litestream_bin, in_flight=local[-1] + 1
    )
    assert ids == list(range(1, len(ids) + 1))  # consistent: no gap, no torn transaction
    assert set(reported) <= set(ids)
    assert sidecar.terminate() == 0


# --- 18 ------------------------------------------------------------------------------------


def test_case_18_restore_then_new_writes_reach_the_replica(
    s3: S3Server,
    tmp_path: Path,
    child_env: dict[str, str],
    litestream_bin: str,
    sidecars: list[Sidecar],
) -> None:
    config, env, db, _ = setup_app(s3, tmp_path, child_env, rows=30)
    work = tmp_path / "seed"
    work.mkdir()
    seed_replica(config, work, child_env, litestream_bin=litestream_bin)
    before = row_values(db)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)  # the pod lost its volume

    restored = run_agent(["restore"], env)
    assert restored.returncode == 0, restored.stderr
    assert row_values(db) == before

    sidecar = start(sidecars, env, tmp_path)
    wait_for(lambda: sidecar.get("/ready")[0] == 200, timeout=30)
    status_file = db.parent / ".statekeeper-restore.json"
    recorded = json.loads(status_file.read_text())["restored_bytes"]
    assert recorded > 0
    assert sidecar.metric("statekeeper_restored_bytes") == float(recorded)

    add_rows(db, 15, prefix="after-restore")
    expected = row_values(db)
    assert len(expected) == 45
    assert sidecar.terminate() == 0
    out = tmp_path / "check.db"
    assert restore_replica(config, db, out, child_env, litestream_bin) == expected


# --- 19 ------------------------------------------------------------------------------------


def test_case_19_emptied_config_dir_sync_refuses_remote_intact(
    s3: S3Server, tmp_path: Path, child_env: dict[str, str], sidecars: list[Sidecar]
) -> None:
    config, env, _, conf = setup_app(s3, tmp_path, child_env)
    sidecar = start(sidecars, env, tmp_path)
    wait_for(
        lambda: sidecar.metric("statekeeper_rclone_last_success_timestamp_seconds", path=str(conf)),
        timeout=30,
    )
    before = remote_config_files(s3, config, conf)
    assert set(before) == {"app.yaml", "extra.ini"}

    for path in conf.iterdir():
        path.unlink()  # the app wiped /config
    wait_for(
        lambda: (
            (sidecar.metric("statekeeper_rclone_sync_refusals_total", path=str(conf)) or 0) >= 2
        ),
        timeout=30,
    )
    assert remote_config_files(s3, config, conf) == before
    assert sidecar.proc.poll() is None
    refusals = [r for r in sidecar.records() if r.get("msg") == "config sync refused"]
    assert refusals and refusals[0]["level"] == "error" and "empty" in refusals[0]["reason"]
    assert sidecar.terminate() == 0
    # even the final sync on shutdown refused
    assert remote_config_files(s3, config, conf) == before


# --- 20 ------------------------------------------------------------------------------------


def test_case_20_overwritten_config_previous_version_in_dated_folder(
    s3: S3Server, tmp_path: Path, child_env: dict[str, str], sidecars: list[Sidecar]
) -> None:
    config, env, _, conf = setup_app(s3, tmp_path, child_env)
    sidecar = start(sidecars, env, tmp_path)
    wait_for(
        lambda: remote_config_files(s3, config, conf).get("app.yaml") == b"setting: 1\n",
        timeout=30,
    )
    (conf / "app.yaml").write_text("setting: broken by the app\n")
    client = s3.client()

    def saved_copies() -> list[str]:
        history = replica_objects(client, config.bucket, config.history_key(conf))
        return [key for key in history if key.endswith("/app.yaml")]

    # The new version and the old one's copy are two S3 writes of one sync, in an order that is
    # rclone's: wait for both, then judge.
    wait_for(
        lambda: (
            remote_config_files(s3, config, conf).get("app.yaml") == b"setting: broken by the app\n"
            and bool(saved_copies())
        ),
        timeout=30,
    )
    history = replica_objects(client, config.bucket, config.history_key(conf))
    saved = saved_copies()
    assert len(saved) == 1
    folder = saved[0].split("/")[-2]
    assert folder.endswith("Z") and folder[:4].isdigit()  # <UTC date-time>
    body = client.get_object(Bucket=config.bucket, Key=saved[0])["Body"].read()
    assert body == b"setting: 1\n"
    assert not any(key.endswith("extra.ini") for key in history)  # unchanged: not copied
    assert sidecar.terminate() == 0


# --- start-up errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"lease_ttl": "5s", "lease_heartbeat": "5s"}, "lease_heartbeat"),
        ({"sqlite_paths": "", "config_paths": ""}, "nothing to protect"),
        ({"rclone_interval": "soon"}, "rclone_interval"),
    ],
)
def test_bad_settings_end_with_one_line_and_exit_2(
    child_env: dict[str, str], tmp_path: Path, settings: dict[str, str], expected: str
) -> None:
    env = agent_env(
        child_env,
        "http://127.0.0.1:9",
        "bkt",
        "app",
        sqlite_paths=[tmp_path / "app.db"],
        config_paths=[tmp_path / "config"],
    )
    env.update({f"STATEKEEPER_{k.upper()}": v for k, v in settings.items()})
    result = run_agent(["run"], env, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("statekeeper: error:") and expected in lines[0]
