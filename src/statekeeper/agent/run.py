"""`statekeeper agent run`: the sidecar.

Four activities, each in its own thread, all sleeping on `threading.Event.wait` (no busy polling):

  lease      (main thread) acquire / renew the lease every `lease_heartbeat`
  supervisor runs exactly one `litestream replicate` while the lease is held; restarts it with
             backoff when it dies; SIGTERM (then SIGKILL) when the lease is lost or on shutdown
  sync       guarded `rclone sync` of every config path every `rclone_interval` ± jitter, runs never
             overlap, each bounded by `rclone_timeout`; one final sync on shutdown
  status     every `status_interval`, `litestream ltx -json` per DB → replica lag metrics

On SIGTERM/SIGINT, bounded by `shutdown_timeout` (S): `litestream sync -wait` through its control
socket (up to S/2), then SIGTERM (litestream's own `shutdown-sync-timeout` is 0.4·S), SIGKILL when
S runs out; meanwhile the final config sync runs (deadline S). Then the lease is released so a
successor starts at once. `terminationGracePeriodSeconds` must exceed S + `kill_grace` + a few
seconds (defaults 20 s + 10 s: raise it from the Kubernetes default 30 s to e.g. 40 s).
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from statekeeper.agent.config import AgentConfig
from statekeeper.agent.lease import Lease
from statekeeper.agent.litestream import litestream_binary, ltx_json, write_config
from statekeeper.agent.log import get_logger
from statekeeper.agent.metrics import HealthServer, SidecarMetrics
from statekeeper.agent.procs import die_with_parent, run_bounded
from statekeeper.agent.rclone import rclone_binary, sync_to_remote
from statekeeper.errors import EXIT_OK, ConfigError, InfraError

log = get_logger("run")

RESTART_BACKOFF_MAX = 30.0  # seconds between litestream restarts, at most
STABLE_RUN = 60.0  # a litestream that ran this long resets the backoff
RETRY_BASE = 5.0  # first retry of a failed sync after min(interval, this), then doubling


def shutdown_sync_timeout(config: AgentConfig) -> float:
    """litestream's own flush budget on SIGTERM (`shutdown-sync-timeout`): 40 % of ours. The
    first half of our budget goes to an explicit `litestream sync -wait` (see `_flush`)."""
    return max(1.0, round(config.shutdown_timeout * 0.4, 1))


def newest_ltx_time(entries: list[dict[str, Any]]) -> float | None:
    """Unix time of the newest LTX file (`timestamp`, RFC 3339) or None for an empty replica."""
    newest: float | None = None
    for entry in entries:
        stamp = entry.get("timestamp")
        if not isinstance(stamp, str):
            continue
        try:
            value = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        except ValueError:
            continue
        newest = value if newest is None else max(newest, value)
    return newest


_LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARN": logging.WARNING}
_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "time", "level"}


def _first_wins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        out.setdefault(key, value)
    return out


def relay_litestream_line(line: str) -> None:
    """Log one line of litestream's JSON log as our own record (`source=litestream`)."""
    text = line.strip()
    if not text:
        return
    try:
        # litestream repeats "level" (log level, then e.g. a compaction level): keep the first.
        record = json.loads(text, object_pairs_hook=_first_wins)
    except ValueError:
        record = None
    if not isinstance(record, dict):
        log.info(text, extra={"source": "litestream"})
        return
    level = _LEVELS.get(str(record.get("level", "")).upper(), logging.ERROR)
    fields = {k: v for k, v in record.items() if k not in _RESERVED}
    fields["source"] = "litestream"
    log.log(level, str(record.get("msg", "")), extra=fields)


class Sidecar:
    """The running sidecar. `run()` blocks until `stop` is set and everything is flushed."""

    def __init__(self, config: AgentConfig, workdir: Path) -> None:
        self.config = config
        self.metrics = SidecarMetrics()
        self.lease = Lease(config)
        self.stop = threading.Event()
        self._stop_started = 0.0
        self._held = threading.Event()
        self._supervisor_wake = threading.Event()
        self._litestream: subprocess.Popen[str] | None = None
        self._litestream_exited = threading.Event()
        self._sync_lock = threading.Lock()
        self._last_holder: str | None = None
        self._newest: dict[str, float] = {}
        self.litestream_config = workdir / "litestream.yml"
        self.control_socket = workdir / "litestream.sock"
        self._threads: list[threading.Thread] = []
        for directory in config.config_paths:
            # Export the per-path series from the start (at 0), so rate()/alerts see them.
            self.metrics.sync_failures.labels(path=str(directory))
            self.metrics.sync_refusals.labels(path=str(directory))

    # --- probes ---------------------------------------------------------------------------

    def ready(self) -> tuple[bool, str]:
        if self.stop.is_set():
            return False, "shutting down"
        if not self._held.is_set():
            holder = self._last_holder or "nobody yet"
            return False, f"waiting for the lease (held by {holder})"
        if self.config.sqlite_paths and self._litestream is None:
            return False, "litestream is not running"
        if self.config.sqlite_paths and not self._litestream_answers():
            # Until its control socket answers, litestream has not picked up the databases: a
            # stop now would lose what the app writes meanwhile, so the pod is not ready yet.
            return False, "litestream is starting"
        return True, "ok"

    def _litestream_answers(self) -> bool:
        """True when litestream's control socket accepts a connection."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(0.5)
            try:
                probe.connect(str(self.control_socket))
            except OSError:
                return False
        return True

    def healthy(self) -> tuple[bool, str]:
        dead = [t.name for t in self._threads if not t.is_alive()]
        if dead and not self.stop.is_set():
            return False, f"sidecar thread(s) died: {', '.join(dead)}"
        return True, "ok"

    # --- main -----------------------------------------------------------------------------

    def request_stop(self) -> None:
        if not self.stop.is_set():
            self._stop_started = time.monotonic()
            self.stop.set()
            self._supervisor_wake.set()

    def run(self) -> None:
        if self.config.sqlite_paths:
            write_config(
                self.config,
                self.litestream_config,
                extra={
                    "shutdown-sync-timeout": f"{shutdown_sync_timeout(self.config):g}s",
                    # control socket for `litestream sync -wait` before SIGTERM
                    "socket": {"enabled": True, "path": str(self.control_socket)},
                    # JSON lines, so its records can be relayed as structured ones of ours.
                    "logging": {"type": "json", "level": "info"},
                },
            )
        workers: list[tuple[str, Callable[[], None]]] = [("supervisor", self._supervise)]
        if self.config.config_paths:
            workers.append(("sync", self._sync_loop))
        if self.config.sqlite_paths:
            workers.append(("status", self._status_loop))
        # The status prober is a daemon: shutdown never waits for a slow `litestream ltx`.
        self._threads = [
            threading.Thread(target=fn, name=name, daemon=name == "status") for name, fn in workers
        ]
        for thread in self._threads:
            thread.start()
        self._lease_loop()
        self._drain()

    def _lease_loop(self) -> None:
        failing_since: float | None = None
        last_warning = 0.0
        while not self.stop.is_set():
            try:
                held = self.lease.try_acquire()
                self.metrics.s3_up.set(1)
                if failing_since is not None:
                    log.info(
                        "S3 answers again",
                        extra={"down_s": round(time.monotonic() - failing_since, 1)},
                    )
                failing_since = None
            except InfraError as exc:
                self.metrics.s3_up.set(0)
                now = time.monotonic()
                failing_since = now if failing_since is None else failing_since
                if now - last_warning >= 60.0:  # one line a minute while S3 stays down
                    log.warning("lease check failed", extra={"error": str(exc)})
                    last_warning = now
                held = self.lease.held  # ours until its local validity runs out
            self._set_held(held)
            self.stop.wait(self.config.lease_heartbeat)

    def _set_held(self, held: bool) -> None:
        if not held:
            holder = self.lease.last_seen.holder if self.lease.last_seen else None
            if holder not in (self._last_holder, self.config.holder, None):
                log.info("waiting for the lease", extra={"holder": holder})
            self._last_holder = holder
        if held == self._held.is_set():
            return
        self.metrics.lease_held.set(1 if held else 0)
        if held:
            self._last_holder = self.config.holder
            self._held.set()
        else:
            log.warning("lease not held: replication paused", extra={"holder": self.config.holder})
            self._held.clear()
        self._supervisor_wake.set()

    def _drain(self) -> None:
        """After stop: keep the lease renewed while litestream flushes and the final sync runs,
        then release it so the next replica can start at once."""
        hard_deadline = (
            self._stop_started + self.config.shutdown_timeout + self.config.kill_grace + 5.0
        )
        flushers = [t for t in self._threads if not t.daemon]
        while any(t.is_alive() for t in flushers) and time.monotonic() < hard_deadline:
            if self.lease.etag is not None:
                with contextlib.suppress(InfraError):
                    self.lease.renew()
            for thread in flushers:
                thread.join(timeout=max(0.0, min(1.0, hard_deadline - time.monotonic())))
        stragglers = [t.name for t in flushers if t.is_alive()]
        if stragglers:
            log.error("shutdown budget exceeded", extra={"threads": ",".join(stragglers)})
        try:
            if self.lease.release():
                log.info("lease released")
        except InfraError as exc:
            log.warning(
                "could not release the lease; it expires by itself", extra={"error": str(exc)}
            )
        self._held.clear()
        self.metrics.lease_held.set(0)

    # --- litestream supervision -----------------------------------------------------------

    def _supervise(self) -> None:
        backoff = 1.0
        started = 0.0
        while True:
            self._supervisor_wake.clear()
            want = self._held.is_set() and not self.stop.is_set() and bool(self.config.sqlite_paths)
            proc = self._litestream
            if proc is not None and self._litestream_exited.is_set():
                self._litestream = None
                self.metrics.litestream_up.set(0)
                if want:
                    ran = time.monotonic() - started
                    backoff = 1.0 if ran > STABLE_RUN else backoff
                    log.error(
                        "litestream exited, restarting",
                        extra={"exit_code": proc.returncode, "backoff_s": backoff},
                    )
                    self.metrics.litestream_restarts.inc()
                    self.stop.wait(backoff)
                    backoff = min(backoff * 2, RESTART_BACKOFF_MAX)
                continue
            if want and proc is None:
                started = time.monotonic()
                self._start_litestream()
                continue
            if not want and proc is not None:
                self._stop_litestream(proc)
                continue
            if self.stop.is_set() and self._litestream is None:
                return
            self._supervisor_wake.wait(timeout=60.0)

    def _start_litestream(self) -> None:
        self._litestream_exited.clear()
        cmd = [
            litestream_binary(),
            "replicate",
            "-config",
            str(self.litestream_config),
            "-no-expand-env",
        ]
        try:
            proc = subprocess.Popen(
                cmd,
                env=self.config.child_env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                # SIGTERM litestream if the sidecar dies (even by SIGKILL), so that a restarted
                # sidecar never finds a stray replicator. The supervisor thread that starts it
                # lives until litestream is stopped.
                preexec_fn=die_with_parent(signal.SIGTERM),
            )
        except OSError as exc:
            log.error("cannot start litestream", extra={"error": exc.strerror or str(exc)})
            self._litestream_exited.set()
            self.metrics.litestream_up.set(0)
            self.stop.wait(RESTART_BACKOFF_MAX)
            return
        self._litestream = proc
        self.metrics.litestream_up.set(1)
        log.info(
            "litestream started", extra={"pid": proc.pid, "dbs": len(self.config.sqlite_paths)}
        )
        threading.Thread(
            target=self._pump, args=(proc,), name="litestream-log", daemon=True
        ).start()

    def _pump(self, proc: subprocess.Popen[str]) -> None:
        """Relay litestream's log lines into ours (one structured record each), then reap it."""
        assert proc.stdout is not None
        for line in proc.stdout:
            relay_litestream_line(line)
        proc.wait()
        self._litestream_exited.set()
        self._supervisor_wake.set()

    def _stop_litestream(self, proc: subprocess.Popen[str]) -> None:
        """SIGTERM (litestream flushes to the replica), SIGKILL after the shutdown budget."""
        budget = self.config.shutdown_timeout
        if self.stop.is_set():
            budget = max(1.0, self._stop_started + budget - time.monotonic())
        log.info("stopping litestream", extra={"pid": proc.pid, "budget_s": round(budget, 1)})
        if self.stop.is_set():
            flush_until = time.monotonic() + budget / 2
            for db in self.config.sqlite_paths:
                self._flush(db, flush_until)
        else:
            # The lease was lost: another replica may hold it and replicate into the same
            # replica already. Pushing more (an explicit sync) would interleave two writers.
            log.warning("lease lost: stopping litestream without a final sync")
        budget = max(1.0, budget - budget / 2)
        proc.send_signal(signal.SIGTERM)
        if not self._litestream_exited.wait(budget):
            log.error("litestream did not stop in time, killing it", extra={"pid": proc.pid})
            proc.kill()
            self._litestream_exited.wait(self.config.kill_grace)
        log.info("litestream stopped", extra={"exit_code": proc.returncode})
        self._litestream = None
        self.metrics.litestream_up.set(0)

    def _flush(self, db: Path, until: float) -> None:
        """`litestream sync -wait` through the control socket: push every committed transaction
        of `db` to the replica before SIGTERM. Needed because a litestream stopped before its
        first sync interval exits without replicating anything; its own shutdown sync only
        covers what it has already picked up. A litestream that started moments ago may not
        answer yet: wait for it (and retry a failed sync) while the budget lasts."""
        exit_code: int | None = None
        while not self._litestream_exited.is_set():
            remaining = until - time.monotonic()
            if remaining < 0.5:
                break
            if not self._litestream_answers():
                time.sleep(0.1)
                continue
            cmd = [
                litestream_binary(),
                "sync",
                "-wait",
                "-timeout",
                str(max(1, int(remaining))),
                "-socket",
                str(self.control_socket),
                str(db.absolute()),
            ]
            try:
                result = run_bounded(
                    cmd, env=self.config.child_env(), timeout=remaining + 1.0, grace=1.0
                )
            except InfraError as exc:
                log.warning(
                    "final litestream sync timed out", extra={"db": str(db), "error": str(exc)}
                )
                return
            if result.returncode == 0:
                log.info("final litestream sync done", extra={"db": str(db)})
                return
            exit_code = result.returncode
            time.sleep(0.2)  # e.g. the database is not registered yet
        log.warning(
            "final litestream sync failed; relying on litestream's shutdown sync",
            extra={"db": str(db), "exit_code": exit_code if exit_code is not None else "-"},
        )

    # --- rclone sync ----------------------------------------------------------------------

    def _sync_loop(self) -> None:
        failures_in_row = 0
        while True:
            if self.stop.wait(self._next_delay(failures_in_row)):
                break
            if not self._held.is_set():
                continue
            ok = self.sync_all(deadline=time.monotonic() + self.config.rclone_timeout)
            failures_in_row = 0 if ok else failures_in_row + 1
        if self._held.is_set() or self.lease.etag is not None:
            deadline = self._stop_started + self.config.shutdown_timeout
            log.info("final config sync before shutdown")
            self.sync_all(deadline=deadline)

    def _next_delay(self, failures_in_row: int) -> float:
        interval = self.config.rclone_interval
        if failures_in_row:
            return min(interval, RETRY_BASE * 2.0 ** (failures_in_row - 1))
        jitter = self.config.rclone_jitter
        return float(interval * (1.0 + random.uniform(-jitter, jitter)))

    def sync_all(self, *, deadline: float) -> bool:
        """One sync run over every config path; never two at once. Returns True when no path
        failed (a refusal is not a failure: retrying it sooner would not change the answer)."""
        with self._sync_lock:
            started = time.monotonic()
            ok = True
            for directory in self.config.config_paths:
                label = str(directory)
                try:
                    stats = sync_to_remote(
                        self.config, directory, now=datetime.now(UTC), deadline=deadline
                    )
                except InfraError as exc:
                    ok = False
                    self.metrics.sync_failures.labels(path=label).inc()
                    log.error("config sync failed", extra={"path": label, "error": str(exc)})
                    continue
                if stats.refused:
                    self.metrics.sync_refusals.labels(path=label).inc()
                    log.error("config sync refused", extra={"path": label, "reason": stats.refused})
                    continue
                self.metrics.sync_last_success.labels(path=label).set(time.time())
                log.info(
                    "config synced",
                    extra={
                        "path": label,
                        "files": stats.local_files,
                        "uploaded": stats.uploaded,
                        "deleted": stats.deleted,
                        "history": stats.history or "-",
                    },
                )
            self.metrics.sync_duration.observe(time.monotonic() - started)
            return ok

    # --- replica status -------------------------------------------------------------------

    def _status_loop(self) -> None:
        delay = min(2.0, self.config.status_interval)
        while not self.stop.wait(delay):
            delay = self.config.status_interval
            if self._held.is_set():
                self.probe_replicas()

    def probe_replicas(self) -> None:
        """Replica lag from `litestream ltx -json`: seconds since the newest LTX file. While S3
        cannot answer, the lag keeps growing from the last newest timestamp seen."""
        for db in self.config.sqlite_paths:
            label = str(db)
            try:
                newest = newest_ltx_time(ltx_json(self.config, db, self.litestream_config))
                self.metrics.s3_up.set(1)
            except InfraError as exc:
                self.metrics.s3_up.set(0)
                log.warning("replica status unknown", extra={"db": label, "error": str(exc)})
                newest = None
            if newest is not None:
                self._newest[label] = newest
                self.metrics.replica_newest.labels(db=label).set(newest)
            if label in self._newest:
                self.metrics.replica_lag.labels(db=label).set(
                    max(0.0, time.time() - self._newest[label])
                )


def restored_bytes(config: AgentConfig) -> int:
    """Bytes the last `agent restore` recorded in its status file (`restored_bytes` of
    `.statekeeper-restore.json`, see agent/restore.py); 0 when it restored nothing or left no file.
    """
    from statekeeper.agent.restore import read_status

    status = read_status(config) or {}
    try:
        return max(0, int(status.get("restored_bytes", 0)))
    except (TypeError, ValueError):
        return 0


def main(config: AgentConfig) -> int:
    """Run the sidecar until SIGTERM/SIGINT. Returns the exit code (0 after a clean shutdown)."""
    if config.lease_heartbeat >= config.lease_ttl:
        raise ConfigError(
            f"lease_heartbeat ({config.lease_heartbeat:g}s) must be shorter than lease_ttl "
            f"({config.lease_ttl:g}s) (STATEKEEPER_LEASE_HEARTBEAT / STATEKEEPER_LEASE_TTL)"
        )
    if not config.sqlite_paths and not config.config_paths:
        raise ConfigError(
            "nothing to protect: set STATEKEEPER_SQLITE_PATHS and/or STATEKEEPER_CONFIG_PATHS"
        )
    if config.sqlite_paths:
        litestream_binary()
    if config.config_paths:
        rclone_binary()
    with tempfile.TemporaryDirectory(prefix="statekeeper-agent-") as workdir:
        sidecar = Sidecar(config, Path(workdir))
        sidecar.metrics.restored_bytes.set(restored_bytes(config))
        try:
            server = HealthServer(
                sidecar.metrics, port=config.port, ready=sidecar.ready, healthy=sidecar.healthy
            )
        except OSError as exc:
            raise InfraError(
                f"cannot listen on port {config.port} (STATEKEEPER_PORT): {exc.strerror or exc}"
            ) from None
        server.start()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            log.info(
                "signal received, shutting down", extra={"signal": signal.Signals(signum).name}
            )
            sidecar.request_stop()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        log.info(
            "sidecar started",
            extra={
                "port": server.port,
                "holder": config.holder,
                "dbs": len(config.sqlite_paths),
                "config_paths": len(config.config_paths),
                "rclone_interval_s": config.rclone_interval,
            },
        )
        try:
            sidecar.run()
        finally:
            server.stop()
        log.info("sidecar stopped")
    return EXIT_OK
