"""Benchmark: the `statekeeper agent run` sidecar (issue 4).

1. Idle cost. The sidecar runs with its production defaults (lease heartbeat 10 s, replica status
   probe 30 s, rclone interval 10 min) against a moto S3 server in its own process, with one
   SQLite DB and one config directory, and nothing writing. After a warm-up, CPU time of the
   sidecar's Python process (utime+stime from /proc) is sampled over `--idle-seconds`, and of its
   children (litestream replicate, the `litestream ltx` probes) separately. RSS = VmRSS/VmHWM.
   The Python process's CPU is read from /proc/<pid>/task/*/schedstat (ns precision).
   The fence (the watchdog litestream runs under, agent/fence.py) is measured on its own.
   Targets: Python process (+ fence) ≤ 1 % of a core, ≤ 60 MB.

1b. Replica deleted (issue 13). With the default check interval (STATEKEEPER_STATUS_INTERVAL
   30 s) and a writer at 5 commits/s, every object of the replica is deleted; measured: seconds
   until `statekeeper_replica_restorable` drops to 0 (the alert) and until it is 1 again (after
   the re-seed). Target: both ≤ 2 check intervals.

2. Data lost after kill -9 of the whole pod. A "pod" = one process group holding a writer
   (one row per transaction, `--rate` commits/s, each commit's id and time logged after COMMIT
   returns) and the sidecar (and its litestream child). After `--load-seconds` of steady load
   the group gets SIGKILL at once — no SIGTERM, no flush. The replica is then restored with the
   real `litestream restore`, integrity-checked, and compared with the writer's log:
   lost = time of the last acknowledged commit − time of the newest commit in the restore.
   Target ≤ 2 s of commits.

    .venv/bin/python bench/agent_sidecar.py [--idle-seconds 30] [--runs 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conftest import TEST_KEY_ID, TEST_SECRET, free_port  # noqa: E402

from statekeeper.agent.config import AgentConfig  # noqa: E402
from statekeeper.agent.litestream import litestream_binary, write_config  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")

WRITER = """
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], timeout=10)
pause = 1.0 / float(sys.argv[2])
out = open(sys.argv[3], "a", buffering=1)
next_id = int(con.execute("SELECT coalesce(max(id), 0) FROM items").fetchone()[0]) + 1
while True:
    con.execute("INSERT INTO items (id, body) VALUES (?, ?)", (next_id, "p" * 200))
    con.commit()
    out.write(f"{next_id} {time.time():.6f}\\n")
    next_id += 1
    time.sleep(pause)
"""


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_ACCESS_KEY_ID"] = TEST_KEY_ID
    env["AWS_SECRET_ACCESS_KEY"] = TEST_SECRET
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def start_moto(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=base_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id=TEST_KEY_ID,
        aws_secret_access_key=TEST_SECRET,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            client.list_buckets()
            return proc
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def make_bucket(endpoint: str, name: str) -> None:
    import boto3

    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=TEST_KEY_ID,
        aws_secret_access_key=TEST_SECRET,
    ).create_bucket(Bucket=name)


def make_app(root: Path) -> tuple[Path, Path]:
    db = root / "data" / "app.db"
    db.parent.mkdir(parents=True)
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, body TEXT)")
    con.executemany(
        "INSERT INTO items (id, body) VALUES (?, ?)", [(i, "s" * 200) for i in range(1, 1001)]
    )
    con.commit()
    con.close()
    conf = root / "config"
    conf.mkdir()
    for i in range(5):
        (conf / f"file{i}.yaml").write_text(f"key: {i}\n" * 20)
    return db, conf


def sidecar_env(endpoint: str, bucket: str, db: Path, conf: Path, **extra: str) -> dict[str, str]:
    env = base_env()
    env.update(
        STATEKEEPER_BUCKET=bucket,
        STATEKEEPER_S3_ENDPOINT=endpoint,
        STATEKEEPER_PREFIX="app",
        STATEKEEPER_SQLITE_PATHS=str(db),
        STATEKEEPER_CONFIG_PATHS=str(conf),
        STATEKEEPER_PORT="0",
        STATEKEEPER_LOG_FORMAT="json",
        STATEKEEPER_HOLDER="bench-pod",
    )
    env.update({f"STATEKEEPER_{k.upper()}": v for k, v in extra.items()})
    return env


def wait_ready(log_path: Path, proc: subprocess.Popen[bytes], timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    port = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sidecar exited:\n{log_path.read_text()}")
        for line in log_path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("msg") == "sidecar started":
                port = int(record["port"])
        if port is not None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as r:
                    if r.status == 200:
                        return port
            except OSError:
                pass
        time.sleep(0.2)
    raise RuntimeError("sidecar never became ready")


def cpu_ticks(pid: int) -> tuple[int, int]:
    """(own utime+stime, reaped children's cutime+cstime) in clock ticks."""
    fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def own_cpu_ns(pid: int) -> int:
    """CPU time of every thread of `pid` in ns (/proc/<pid>/task/*/schedstat: ns precision,
    where utime/stime count 10 ms ticks and round a quiet process down to 0)."""
    total = 0
    for task in (Path("/proc") / str(pid) / "task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return total


def _processes() -> dict[int, tuple[int, int, str]]:
    """pid → (parent pid, utime+stime ticks, cmdline) of every process."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        out[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]), cmdline)
    return out


def descendants(pid: int, table: dict[int, tuple[int, int, str]]) -> list[int]:
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [p for p, (ppid, _, _) in table.items() if ppid == parent]
        found += kids
        frontier += kids
    return found


def children_ticks(pid: int) -> tuple[int, int]:
    """(CPU ticks of the live fence watchdog, of every other live descendant: litestream, the
    `litestream ltx` probes, rclone)."""
    table = _processes()
    fence = other = 0
    for child in descendants(pid, table):
        _, ticks, cmdline = table[child]
        if "statekeeper.agent.fence" in cmdline:
            fence += ticks
        else:
            other += ticks
    return fence, other


def fence_rss_kb(pid: int) -> int:
    table = _processes()
    for child in descendants(pid, table):
        if "statekeeper.agent.fence" in table[child][2]:
            return rss_kb(child).get("VmRSS", 0)
    return 0


def rss_kb(pid: int) -> dict[str, int]:
    out = {}
    for line in (Path("/proc") / str(pid) / "status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            out[line.split(":")[0]] = int(line.split()[1])
    return out


def bench_idle(endpoint: str, work: Path, seconds: float, warmup: float) -> dict[str, Any]:
    bucket = "idle"
    make_bucket(endpoint, bucket)
    db, conf = make_app(work / "idle")
    log_path = work / "idle-sidecar.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "statekeeper", "agent", "run"],
            env=sidecar_env(endpoint, bucket, db, conf),
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            wait_ready(log_path, proc)
            time.sleep(warmup)  # first snapshot, first status probe, imports settled
            _, reaped0 = cpu_ticks(proc.pid)
            own0 = own_cpu_ns(proc.pid)
            fence0, live0 = children_ticks(proc.pid)
            t0 = time.monotonic()
            time.sleep(seconds)
            _, reaped1 = cpu_ticks(proc.pid)
            own1 = own_cpu_ns(proc.pid)
            fence1, live1 = children_ticks(proc.pid)
            elapsed = time.monotonic() - t0
            memory = rss_kb(proc.pid)
            fence_rss = fence_rss_kb(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    own_pct = 100.0 * (own1 - own0) / 1e9 / elapsed
    fence_pct = 100.0 * (fence1 - fence0) / TICK / elapsed
    children_pct = 100.0 * ((reaped1 - reaped0) + (live1 - live0)) / TICK / elapsed
    return {
        "seconds": round(elapsed, 1),
        "python_cpu_pct_of_core": round(own_pct, 3),
        "fence_cpu_pct_of_core": round(fence_pct, 3),
        "fence_rss_mb": round(fence_rss / 1024, 1),
        "children_cpu_pct_of_core": round(children_pct, 3),
        "python_rss_mb": round(memory.get("VmRSS", 0) / 1024, 1),
        "python_peak_rss_mb": round(memory.get("VmHWM", 0) / 1024, 1),
    }


def metric(port: int, name: str) -> float | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
    return None


def bench_replica_deleted(endpoint: str, work: Path, run: int, interval: str) -> dict[str, Any]:
    """Every object of the replica deleted while the app writes: seconds until the sidecar
    alerts (`statekeeper_replica_restorable` 0) and until the replica is restorable again."""
    import boto3

    bucket = f"deleted{run}"
    make_bucket(endpoint, bucket)
    db, conf = make_app(work / f"deleted{run}")
    log_path = work / f"deleted{run}-sidecar.log"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=TEST_KEY_ID,
        aws_secret_access_key=TEST_SECRET,
    )
    name = "statekeeper_replica_restorable"
    with log_path.open("w") as log:
        env = sidecar_env(endpoint, bucket, db, conf, status_interval=interval)
        proc = subprocess.Popen(
            [sys.executable, "-m", "statekeeper", "agent", "run"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db), "5", str(work / f"deleted{run}.log")]
        )
        try:
            port = wait_ready(log_path, proc)
            while metric(port, name) != 1.0:
                time.sleep(0.2)
            time.sleep(3.0)  # some writes after the first good check
            pages = client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix="app/sqlite/"
            )
            keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
            deleted_at = time.monotonic()
            for key in keys:
                client.delete_object(Bucket=bucket, Key=key)
            while metric(port, name) != 0.0:
                time.sleep(0.1)
            alerted_at = time.monotonic()
            while metric(port, name) != 1.0:
                time.sleep(0.1)
            restorable_at = time.monotonic()
        finally:
            writer.kill()
            writer.wait()
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    seconds = float(interval.rstrip("s"))
    return {
        "run": run,
        "check_interval_s": seconds,
        "objects_deleted": len(keys),
        "to_alert_s": round(alerted_at - deleted_at, 2),
        "to_restorable_s": round(restorable_at - deleted_at, 2),
        "to_restorable_intervals": round((restorable_at - deleted_at) / seconds, 2),
    }


def restore_ids(endpoint: str, bucket: str, db: Path, out: Path) -> list[int]:
    config = AgentConfig(bucket=bucket, endpoint=endpoint, prefix="app", sqlite_paths=[db])
    config_file = write_config(config, out.parent / "restore.yml", dbs=[db])
    env = base_env()
    cmd = [litestream_binary(), "restore", "-config", str(config_file), "-no-expand-env"]
    result = subprocess.run(
        [*cmd, "-o", str(out), str(db)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"litestream restore failed: {result.stderr.strip()[-300:]}")
    con = sqlite3.connect(out)
    try:
        check = con.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            raise RuntimeError(f"restored DB fails integrity_check: {check}")
        return [int(r[0]) for r in con.execute("SELECT id FROM items ORDER BY id")]
    finally:
        con.close()


def bench_pod_kill(endpoint: str, work: Path, run: int, load: float, rate: float) -> dict[str, Any]:
    bucket = f"kill{run}"
    make_bucket(endpoint, bucket)
    root = work / f"kill{run}"
    db, conf = make_app(root)
    log_path = root / "sidecar.log"
    commits = root / "commits.log"
    # The "pod": one process group (a new session) holding the writer and the sidecar (+ its
    # litestream child); the writer starts once the sidecar is ready.
    script = (
        f'"{sys.executable}" -m statekeeper agent run 2>"{log_path}" & '
        f'until grep -q "lease acquired" "{log_path}" 2>/dev/null; do sleep 0.1; done; '
        f'"{sys.executable}" -c "$WRITER" "{db}" {rate} "{commits}" & wait'
    )
    env = sidecar_env(endpoint, bucket, db, conf)
    env["WRITER"] = WRITER
    pod = subprocess.Popen(["/bin/sh", "-c", script], env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not commits.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(load)
        os.killpg(pod.pid, signal.SIGKILL)  # node death: everything at once
        killed_at = time.time()
        pod.wait()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pod.pid, signal.SIGKILL)
        pod.wait()
    acked = {}
    for line in commits.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2:
            acked[int(parts[0])] = float(parts[1])
    ids = restore_ids(endpoint, bucket, db, root / "restored.db")
    consistent = ids == list(range(1, len(ids) + 1))
    newest_restored = max(ids)
    last_acked = max(acked)
    lost_rows = max(0, last_acked - newest_restored)
    if newest_restored >= last_acked:
        lost_seconds = 0.0
    else:
        newest_time = acked.get(newest_restored, min(acked.values()))
        lost_seconds = acked[last_acked] - newest_time
    return {
        "run": run,
        "acknowledged_commits": len(acked),
        "last_ack_before_kill_s": round(killed_at - acked[last_acked], 3),
        "lost_commits": lost_rows,
        "lost_seconds": round(lost_seconds, 3),
        "restore_consistent": consistent,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=8.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--load-seconds", type=float, default=12.0)
    parser.add_argument("--rate", type=float, default=50.0, help="writer commits per second")
    parser.add_argument("--deletion-runs", type=int, default=2)
    parser.add_argument(
        "--check-interval", default="30s", help="STATEKEEPER_STATUS_INTERVAL (default: 30s)"
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    port = free_port()
    moto = start_moto(port)
    endpoint = f"http://127.0.0.1:{port}"
    results: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="sk-bench-sidecar-") as tmp:
            work = Path(tmp)
            idle = bench_idle(endpoint, work, args.idle_seconds, args.warmup)
            results["idle"] = idle
            print(
                f"idle: python {idle['python_cpu_pct_of_core']:.3f} % of a core, fence "
                f"{idle['fence_cpu_pct_of_core']:.3f} % ({idle['fence_rss_mb']} MB), "
                f"(other children {idle['children_cpu_pct_of_core']:.3f} %), "
                f"RSS {idle['python_rss_mb']} MB (peak {idle['python_peak_rss_mb']} MB) "
                f"over {idle['seconds']} s"
            )
            deletions = []
            for run in range(1, args.deletion_runs + 1):
                outcome = bench_replica_deleted(endpoint, work, run, args.check_interval)
                deletions.append(outcome)
                print(
                    f"replica deleted run {run}: alert after {outcome['to_alert_s']} s, "
                    f"restorable again after {outcome['to_restorable_s']} s = "
                    f"{outcome['to_restorable_intervals']} check intervals (target ≤ 2)"
                )
            results["replica_deleted"] = deletions
            kills = []
            for run in range(1, args.runs + 1):
                outcome = bench_pod_kill(endpoint, work, run, args.load_seconds, args.rate)
                kills.append(outcome)
                print(
                    f"kill -9 run {run}: {outcome['acknowledged_commits']} commits, lost "
                    f"{outcome['lost_commits']} = {outcome['lost_seconds']:.3f} s, "
                    f"consistent={outcome['restore_consistent']}"
                )
            results["pod_kill"] = kills
            lost = [k["lost_seconds"] for k in kills]
            if lost:
                results["pod_kill_summary"] = {
                    "median_lost_seconds": round(statistics.median(lost), 3),
                    "max_lost_seconds": round(max(lost), 3),
                    "rate_commits_per_s": args.rate,
                }
                print(
                    f"kill -9: lost median {statistics.median(lost):.3f} s, "
                    f"max {max(lost):.3f} s (target ≤ 2 s)"
                )
    finally:
        moto.terminate()
        moto.wait(timeout=30)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
