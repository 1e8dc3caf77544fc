"""Shared helpers for the agent tests (restore, verify, run): real SQLite, real litestream.

- `make_db` / `add_rows` / `row_values`: a small WAL-mode SQLite database with an `items` table.
- `corrupt_db`: overwrite part of a DB with garbage so SQLite reports SQLITE_CORRUPT.
- `agent_config` / `agent_env`: the same settings as an AgentConfig or as STATEKEEPER_* variables.
- `seed_replica`: run the real `litestream replicate` until the replica holds the DB, then SIGTERM.
- `run_agent`: `python -m statekeeper agent ...` as a subprocess, as users run it.
- `unique_name`: a fresh bucket/prefix name, so tests sharing one moto server never collide.
"""

from __future__ import annotations

import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from statekeeper.agent.config import AgentConfig
from statekeeper.agent.litestream import write_config
from tests.conftest import TEST_KEY_ID, TEST_SECRET

_counter = itertools.count()


def unique_name(stem: str = "bkt") -> str:
    """A bucket-safe name unique within this test process."""
    return f"{stem}-{os.getpid()}-{next(_counter)}"


# --- SQLite --------------------------------------------------------------------------------


def make_db(path: Path, rows: int = 10, *, payload: int = 32) -> Path:
    """Create a WAL-mode DB at `path` with table `items(id, body)` holding `rows` rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, body TEXT)")
        con.commit()
    finally:
        con.close()
    if rows:
        add_rows(path, rows, payload=payload)
    return path


def add_rows(path: Path, count: int, *, payload: int = 32, prefix: str = "row") -> None:
    """Append `count` rows to `items` in one transaction."""
    con = sqlite3.connect(path)
    try:
        start = int(con.execute("SELECT coalesce(max(id), 0) FROM items").fetchone()[0])
        con.executemany(
            "INSERT INTO items (id, body) VALUES (?, ?)",
            [(start + i + 1, f"{prefix}-{start + i + 1}-" + "x" * payload) for i in range(count)],
        )
        con.commit()
    finally:
        con.close()


def row_values(path: Path) -> list[int]:
    """Ids in `items`, read-only (never checkpoints or deletes a -wal)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [int(r[0]) for r in con.execute("SELECT id FROM items ORDER BY id")]
    finally:
        con.close()


def corrupt_db(path: Path) -> None:
    """Damage page 1 (the schema B-tree) so any read fails with SQLITE_CORRUPT.

    The WAL is checkpointed into the main file and truncated first: otherwise page 1 may be read
    from the -wal and the damage would not show.
    """
    con = sqlite3.connect(path)
    try:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()
    with path.open("r+b") as handle:
        handle.seek(100)
        handle.write(b"\xde\xad\xbe\xef" * 64)


# --- configuration -------------------------------------------------------------------------


def agent_config(
    endpoint: str,
    bucket: str,
    prefix: str = "app",
    *,
    sqlite_paths: Sequence[Path] = (),
    config_paths: Sequence[Path] = (),
    **extra: Any,
) -> AgentConfig:
    """An AgentConfig for the local moto server, with the test credentials."""
    return AgentConfig(
        bucket=bucket,
        endpoint=endpoint,
        prefix=prefix,
        sqlite_paths=list(sqlite_paths),
        config_paths=list(config_paths),
        access_key_id=TEST_KEY_ID,  # type: ignore[arg-type]
        secret_access_key=TEST_SECRET,  # type: ignore[arg-type]
        **extra,
    )


def agent_env(
    base: dict[str, str],
    endpoint: str,
    bucket: str,
    prefix: str = "app",
    *,
    sqlite_paths: Sequence[Path] = (),
    config_paths: Sequence[Path] = (),
    **extra: str,
) -> dict[str, str]:
    """`base` (use the `child_env` fixture) plus STATEKEEPER_* variables.

    `extra` keys are upper-cased and prefixed: `s3_timeout="3s"` → STATEKEEPER_S3_TIMEOUT=3s.
    """
    env = dict(base)
    env.update(
        STATEKEEPER_BUCKET=bucket,
        STATEKEEPER_S3_ENDPOINT=endpoint,
        STATEKEEPER_PREFIX=prefix,
        STATEKEEPER_SQLITE_PATHS=",".join(str(p) for p in sqlite_paths),
        STATEKEEPER_CONFIG_PATHS=",".join(str(p) for p in config_paths),
        STATEKEEPER_LOG_FORMAT="json",
    )
    for key, value in extra.items():
        env[f"STATEKEEPER_{key.upper()}"] = value
    return env


def run_agent(
    args: Sequence[str], env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`python -m statekeeper agent <args>` with `env`; text output captured."""
    return subprocess.run(
        [sys.executable, "-m", "statekeeper", "agent", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# --- litestream ----------------------------------------------------------------------------


def replica_objects(s3_client: Any, bucket: str, key_prefix: str) -> list[str]:
    """Keys under `key_prefix/` in `bucket`."""
    keys: list[str] = []
    paginator = s3_client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=key_prefix.rstrip("/") + "/"):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return keys


@contextmanager
def litestream_replicate(
    config: AgentConfig,
    workdir: Path,
    env: dict[str, str],
    *,
    litestream_bin: str = "litestream",
    sync_interval: str = "100ms",
    extra: dict[str, Any] | None = None,
) -> Iterator[subprocess.Popen[str]]:
    """Run `litestream replicate` for `config.sqlite_paths`; SIGTERM it (and wait) on exit."""
    config_file = write_config(
        config,
        workdir / f"litestream-{next(_counter)}.yml",
        replica_extra={"sync-interval": sync_interval},
        extra=extra,
    )
    log_file = (workdir / f"litestream-{next(_counter)}.log").open("w")
    proc = subprocess.Popen(
        [litestream_bin, "replicate", "-config", str(config_file), "-no-expand-env"],
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log_file.close()


def wait_for(predicate: Any, timeout: float = 20.0, interval: float = 0.1) -> Any:
    """Poll `predicate()` until it returns something truthy; AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def replica_max_txid(config: AgentConfig, db: Path, workdir: Path) -> int:
    """Highest TXID in `db`'s replica (0 when it holds nothing), via `litestream ltx -json`."""
    from statekeeper.agent.litestream import ltx_json

    config_file = write_config(config, workdir / f"ltx-{next(_counter)}.yml", dbs=[db])
    entries = ltx_json(config, db, config_file)
    return max((int(str(e["max_txid"]), 16) for e in entries), default=0)


def seed_replica(
    config: AgentConfig,
    workdir: Path,
    env: dict[str, str],
    *,
    litestream_bin: str = "litestream",
    after_start: Any = None,
    settle: float = 0.6,
) -> None:
    """Replicate `config.sqlite_paths` with the real litestream until every DB's replica stops
    growing, then stop it with SIGTERM.

    `after_start(proc)` runs once the first snapshot of every DB is in S3: use it to write more
    transactions that must reach the replica as later LTX files (not only the snapshot).
    """
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=config.endpoint,
        region_name=config.region,
        aws_access_key_id=TEST_KEY_ID,
        aws_secret_access_key=TEST_SECRET,
    )

    def snapshot() -> tuple[int, ...]:
        return tuple(
            len(replica_objects(client, config.bucket, config.replica_key(db)))
            for db in config.sqlite_paths
        )

    with litestream_replicate(config, workdir, env, litestream_bin=litestream_bin) as proc:
        wait_for(lambda: all(snapshot()) or proc.poll() is not None)
        assert proc.poll() is None, "litestream replicate exited early"
        if after_start is not None:
            after_start(proc)
        # Settled: no new object for `settle` seconds (sync interval is 100 ms).
        last, stable_since = snapshot(), time.monotonic()
        deadline = time.monotonic() + 20
        while time.monotonic() - stable_since < settle and time.monotonic() < deadline:
            time.sleep(0.1)
            now = snapshot()
            if now != last:
                last, stable_since = now, time.monotonic()


@contextmanager
def strict_s3_server() -> Iterator[str]:
    """A moto S3 server (own process) that enforces credentials from the first request: every
    key it has not issued is refused with InvalidAccessKeyId, as a real S3 refuses a wrong one.
    Yields its endpoint."""
    import socket

    from tests.conftest import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def listening() -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_for(listening, timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- a loopback TCP proxy in front of S3 ------------------------------------------------------


class TcpProxy:
    """A TCP proxy on 127.0.0.1 in front of `target_port`, to put faults between a client and S3.

    `mode`: "pass" forwards bytes (at most `rate` bytes/s from the server when set), "hang"
    accepts connections and forwards nothing any more (a peer that never answers), "drop" closes
    every connection and each new one at once (a partition). `endpoint` is http://127.0.0.1:port.
    """

    def __init__(self, target_port: int, *, rate: int | None = None) -> None:
        import socket
        import threading

        self.target_port = target_port
        self.rate = rate
        self.mode = "pass"
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.2)
        self.port = int(self._listener.getsockname()[1])
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[Any] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_mode(self, mode: str) -> None:
        assert mode in ("pass", "hang", "drop")
        self.mode = mode
        if mode == "drop":
            with self._lock:
                for sock in self._sockets:
                    _close_quietly(sock)
                self._sockets.clear()

    def close(self) -> None:
        self._closed.set()
        _close_quietly(self._listener)
        self.set_mode("drop")

    def _accept(self) -> None:
        import socket
        import threading

        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            if self.mode == "drop":
                _close_quietly(client)
                continue
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                _close_quietly(client)
                continue
            with self._lock:
                self._sockets += [client, server]
            for src, dst, limited in ((client, server, False), (server, client, True)):
                threading.Thread(target=self._pump, args=(src, dst, limited), daemon=True).start()

    def _pump(self, src: Any, dst: Any, limited: bool) -> None:
        import select

        try:
            while not self._closed.is_set():
                if self.mode == "hang":
                    time.sleep(0.1)
                    continue
                readable, _, _ = select.select([src], [], [], 0.1)
                if not readable:
                    continue
                size = 65536
                if limited and self.rate:
                    size = max(1, self.rate // 10)
                data = src.recv(size)
                if not data:
                    break
                while self.mode == "hang" and not self._closed.is_set():
                    time.sleep(0.1)  # a response caught mid-way never arrives
                dst.sendall(data)
                if limited and self.rate:
                    time.sleep(len(data) / self.rate)
        except (OSError, ValueError):  # ValueError: the other direction closed the socket
            pass
        finally:
            _close_quietly(src)
            _close_quietly(dst)


def _close_quietly(sock: Any) -> None:
    import socket

    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with suppress(OSError):
        sock.close()


def process_children(pid: int) -> list[int]:
    """Pids whose parent is `pid` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def pid_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        stat = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
