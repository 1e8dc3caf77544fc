"""`statekeeper agent run`: the sidecar.

Four activities, each in its own thread, all sleeping on `threading.Event.wait` (no busy polling):

  lease      (main thread) acquire / renew the lease every `lease_heartbeat`
  supervisor runs exactly one `litestream replicate` while the lease is held, under the fence
             (agent/fence.py: a watchdog that kills it when the lease deadline passes, even
             if this process is frozen); restarts it with backoff when it dies; SIGKILL when
             the lease is lost, SIGTERM (then SIGKILL) on shutdown
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
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from types import FrameType
from typing import Any

from statekeeper.agent.config import AgentConfig
from statekeeper.agent.fence import write_deadline
from statekeeper.agent.hwm import Position, read_mark, restorable_position, write_mark
from statekeeper.agent.lease import Lease
from statekeeper.agent.litestream import (
    litestream_binary,
    ltx_json,
    real_db_path,
    relay_litestream_line,
    socket_list,
    write_config,
)
from statekeeper.agent.log import get_logger
from statekeeper.agent.metrics import HealthServer, SidecarMetrics
from statekeeper.agent.procs import die_with_parent, run_bounded
from statekeeper.agent.rclone import rclone_binary, sync_to_remote
from statekeeper.agent.restore import local_txid
from statekeeper.errors import EXIT_OK, ConfigError, InfraError

log = get_logger("run")

RESTART_BACKOFF_MAX = 30.0  # seconds between litestream restarts, at most
STABLE_RUN = 60.0  # a litestream that ran this long resets the backoff
RETRY_BASE = 5.0  # first retry of a failed sync after min(interval, this), then doubling
SYNC_POLL = 5.0  # litestream's control socket (`/list`) is asked this often, at most
RECHECK_DELAY = 1.0  # a replica check that could not decide yet (or a re-seed) is redone after


def shutdown_sync_timeout(config: AgentConfig) -> float:
    """litestream's own flush budget on SIGTERM (`shutdown-sync-timeout`): 40 % of ours. The
    first half of our budget goes to an explicit `litestream sync -wait` (see `_flush`)."""
    return max(1.0, round(config.shutdown_timeout * 0.4, 1))


def parse_rfc3339(stamp: object) -> float | None:
    """Unix time of an RFC 3339 string (Go's, with nanoseconds), None when it is not one."""
    if not isinstance(stamp, str):
        return None
    text = stamp.replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:  # Python's fromisoformat takes at most 6 fractional digits
        digits = "".join(c for c in rest if c.isdigit())
        text = f"{head}.{digits[:6]}{rest[len(digits) :]}"
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


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


class StopReason(Enum):
    """Why the sidecar stops litestream; decided once, when it starts stopping it."""

    SHUTDOWN = "shutdown"  # SIGTERM/SIGINT: `litestream sync -wait`, then SIGTERM (its own flush)
    RESEED = "re-seed"  # a failed replica check: SIGTERM; restarted, it writes a new snapshot
    LEASE_LOST = "lease lost"  # another replica may replicate already: SIGKILL, no final sync


@dataclass(frozen=True)
class SyncErrorStreak:
    """litestream logged `sync error` for a database, maybe several times in a row."""

    error: str  # the last error
    since: float  # unix time of the first in the streak
    txid: int  # the local L0 TXID then: the streak ends once the position moves past it


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
        self.workdir = workdir
        # The fence's deadline: extended by every lease write, read by the watchdog that runs
        # litestream (agent/fence.py), which kills it once the deadline passes.
        self.deadline_file = workdir / "lease-deadline"
        write_deadline(self.deadline_file, 0.0)
        self.lease.on_renewed = lambda until: write_deadline(self.deadline_file, until)
        self.litestream_config = workdir / "litestream.yml"
        self.control_socket = workdir / "litestream.sock"
        self._threads: list[threading.Thread] = []
        for directory in config.config_paths:
            # Export the per-path series from the start (at 0), so rate()/alerts see them.
            self.metrics.sync_failures.labels(path=str(directory))
            self.metrics.sync_refusals.labels(path=str(directory))
            self.metrics.files_skipped.labels(path=str(directory))
        # Databases by label (the configured path); litestream sees the real paths.
        self._real = {str(db): real_db_path(db) for db in config.sqlite_paths}
        self._label_by_name = {real.name: label for label, real in self._real.items()}
        self._litestream_started_at = 0.0  # unix time the running litestream started
        self._last_sync: dict[str, float] = {}  # unix time of its last successful sync
        # A DB sync litestream reported failing. It clears once the local position moves past
        # the streak's TXID: the replica-side `last_sync_at` keeps moving while the DB side fails.
        self._sync_error: dict[str, SyncErrorStreak] = {}
        self._status_wake = threading.Event()
        self._reseed = threading.Event()
        self._reseeded_at: dict[str, float] = {}
        self._unrestorable: dict[str, str] = {}  # label → why, while a check fails
        self._marks: dict[str, int] = {}  # label → high-water mark TXID (stored)
        self._replica_has_data: dict[str, bool] = {}
        self._next_scratch_check = time.monotonic() + config.restore_check_interval
        for label in self._real:
            for series in (
                self.metrics.sync_errors,
                self.metrics.consecutive_errors,
                self.metrics.replicating,
                self.metrics.restorable,
                self.metrics.reseeds,
            ):
                series.labels(db=label)

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
        now = time.time()
        for label, real in self._real.items():
            if not real.exists() and self._replica_has_data.get(label):
                return False, (
                    f"database {label} does not exist but its replica holds data: "
                    "run `statekeeper agent restore` before the app (init container)"
                )
            age = self._sync_age(label, now)
            if age is not None and age > self.config.sync_stale_after:
                streak = self._sync_error.get(label)
                error = streak.error if streak else "no error logged"
                return False, f"litestream has not synced {label} for {age:.0f}s: {error}"
        return True, "ok"

    def _sync_age(self, label: str, now: float) -> float | None:
        """Seconds since litestream last synced `label` (since it started, before its first
        sync); None while litestream is not running."""
        if self._litestream is None or not self._litestream_started_at:
            return None
        streak = self._sync_error.get(label)
        if streak is not None:
            return now - streak.since
        return now - max(self._last_sync.get(label, 0.0), self._litestream_started_at)

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
            self._status_wake.set()

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
        # (name, loop, daemon): the status prober is a daemon, so shutdown never waits for a
        # slow `litestream ltx`; the others flush on shutdown (`_drain` waits for them).
        workers: list[tuple[str, Callable[[], None], bool]] = [
            ("supervisor", self._supervise, False)
        ]
        if self.config.config_paths:
            workers.append(("sync", self._sync_loop, False))
        if self.config.sqlite_paths:
            workers.append(("status", self._status_loop, True))
        self._threads = [
            threading.Thread(target=fn, name=name, daemon=daemon) for name, fn, daemon in workers
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
        elif self.config.sqlite_paths and self.lease.etag is not None:
            self.write_final_marks()  # still the holder: the flushed state is acknowledged
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
            want = (
                self._held.is_set()
                and not self.stop.is_set()
                and bool(self.config.sqlite_paths)
                # a thawed agent must not restart a fenced litestream on a stale `_held`
                and self.lease.valid_until > time.monotonic()
            )
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
            if want and proc is not None and self._reseed.is_set():
                # A failed replica check: a restarted litestream writes a new snapshot.
                self._reseed.clear()
                self._stop_litestream(proc, reseed=True)
                continue
            if self.stop.is_set() and self._litestream is None:
                return
            self._supervisor_wake.wait(timeout=60.0)

    def _start_litestream(self) -> None:
        self._litestream_exited.clear()
        cmd = [
            sys.executable,
            "-m",
            "statekeeper.agent.fence",
            str(self.deadline_file),
            "--",
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
        self._litestream_started_at = time.time()
        self._last_sync.clear()
        self._sync_error.clear()
        for label in self._real:
            self.metrics.consecutive_errors.labels(db=label).set(0)
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
            record = relay_litestream_line(line)
            if record is not None and record.get("msg") == "sync error":
                self._note_sync_error(record)
        proc.wait()
        self._litestream_exited.set()
        self._supervisor_wake.set()

    def _note_sync_error(self, record: dict[str, Any]) -> None:
        """A `sync error` line of litestream's log: count it for its database."""
        label = self._label_by_name.get(str(record.get("db", "")))
        if label is None:
            return
        previous = self._sync_error.get(label)
        since, txid = (
            (previous.since, previous.txid)
            if previous
            else (time.time(), local_txid(self._real[label]) or 0)
        )
        self._sync_error[label] = SyncErrorStreak(
            str(record.get("error", "unknown error")), since, txid
        )
        self.metrics.sync_errors.labels(db=label).inc()
        consecutive = record.get("consecutive_errors")
        if isinstance(consecutive, int):
            self.metrics.consecutive_errors.labels(db=label).set(consecutive)

    def _stop_litestream(self, proc: subprocess.Popen[str], *, reseed: bool = False) -> None:
        """SIGTERM (litestream flushes to the replica), SIGKILL after the shutdown budget; at once
        SIGKILL when the lease was lost (see `StopReason`)."""
        if self.stop.is_set():
            reason = StopReason.SHUTDOWN
        else:
            reason = StopReason.RESEED if reseed else StopReason.LEASE_LOST
        budget = self.config.shutdown_timeout
        if reason is StopReason.SHUTDOWN:
            budget = max(1.0, self._stop_started + budget - time.monotonic())
        log.info("stopping litestream", extra={"pid": proc.pid, "budget_s": round(budget, 1)})
        if reason is StopReason.SHUTDOWN:
            flush_until = time.monotonic() + budget / 2
            for db in self.config.sqlite_paths:
                self._flush(db, flush_until)
        elif reason is StopReason.RESEED:
            log.warning("restarting litestream to re-seed the replica (a new snapshot)")
        else:
            # The lease was lost: another replica may hold it and replicate into the same
            # replica already. Pushing more (an explicit sync) would interleave two writers.
            log.warning("lease lost: stopping litestream without a final sync")
        budget = max(1.0, budget - budget / 2)
        if reason is StopReason.LEASE_LOST:
            proc.kill()  # the fence's SIGKILL: no shutdown sync into a replica now shared
        else:
            proc.send_signal(signal.SIGTERM)  # the fence passes it on: litestream's own flush
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
                str(real_db_path(db)),
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
                self.metrics.files_skipped.labels(path=label).set(stats.unuploadable)
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
        """Every SYNC_POLL: litestream's last sync per DB (control socket, no child process).
        Every `status_interval`: the replica listing (`litestream ltx`) → lag, restorability,
        high-water mark; redone after RECHECK_DELAY while a check cannot decide or after a
        re-seed, so that a broken replica is restorable again within two intervals."""
        tick = min(SYNC_POLL, self.config.status_interval)
        next_probe = time.monotonic() + min(2.0, self.config.status_interval)
        while not self.stop.is_set():
            self._status_wake.wait(max(0.0, min(tick, next_probe - time.monotonic())))
            self._status_wake.clear()
            if self.stop.is_set() or not self._held.is_set() or self._litestream is None:
                continue
            self.poll_sync_state()
            if time.monotonic() >= next_probe:
                undecided = self.probe_replicas()
                delay = RECHECK_DELAY if undecided else self.config.status_interval
                next_probe = time.monotonic() + delay

    def poll_sync_state(self) -> None:
        """litestream's `last_sync_at` per DB → last-sync and replicating metrics."""
        try:
            listed = socket_list(self.control_socket)
        except InfraError:
            return  # starting or stopping: readiness already says so
        now = time.time()
        for label, real in self._real.items():
            entry = listed.get(real) or {}
            synced = parse_rfc3339(entry.get("last_sync_at"))
            if synced is not None:
                self._last_sync[label] = synced
                self.metrics.last_sync.labels(db=label).set(synced)
            streak = self._sync_error.get(label)
            if streak is not None and (local_txid(real) or 0) > streak.txid:
                self._sync_error.pop(label, None)
                self.metrics.consecutive_errors.labels(db=label).set(0)
                log.info("litestream syncs again", extra={"db": label})
            fresh = (
                synced is not None
                and now - synced <= self.config.sync_stale_after
                and label not in self._sync_error
            )
            self.metrics.replicating.labels(db=label).set(1 if fresh else 0)

    def probe_replicas(self) -> bool:
        """Per DB: `litestream ltx -json` → replica lag (seconds since the newest LTX file; while
        S3 cannot answer it keeps growing from the last newest timestamp seen) and the
        restorability check. Returns True when a check must be redone soon."""
        undecided = False
        for db in self.config.sqlite_paths:
            label = str(db)
            started = time.time()
            try:
                entries = ltx_json(self.config, db, self.litestream_config)
                self.metrics.s3_up.set(1)
            except InfraError as exc:
                self.metrics.s3_up.set(0)
                log.warning("replica status unknown", extra={"db": label, "error": str(exc)})
                entries = None
            if entries is not None:
                self._replica_has_data[label] = bool(entries)
                newest = newest_ltx_time(entries)
                if newest is not None:
                    self._newest[label] = newest
            if label in self._newest:
                # lag first: a scrape that sees the newest timestamp also sees its lag
                self.metrics.replica_lag.labels(db=label).set(
                    max(0.0, time.time() - self._newest[label])
                )
                self.metrics.replica_newest.labels(db=label).set(self._newest[label])
            if entries is not None:
                undecided |= self._check_restorable(db, entries, started)
        return undecided

    def _mark(self, db: Path) -> int | None:
        """The stored high-water mark TXID of `db` (read once, then what we wrote); None when
        S3 cannot say."""
        label = str(db)
        if label not in self._marks:
            try:
                mark = read_mark(self.config, db, self.lease.store)
            except InfraError as exc:
                log.warning("high-water mark unknown", extra={"db": label, "error": str(exc)})
                return None
            self._marks[label] = mark.txid if mark else 0
        return self._marks[label]

    def _check_restorable(self, db: Path, entries: list[dict[str, Any]], listed_at: float) -> bool:
        """Is the replica restorable up to its high-water mark? Metrics, mark, re-seed (see
        `hwm`). Returns True when it could not decide yet or re-seeded (check again soon)."""
        label = str(db)
        synced = self._last_sync.get(label)
        if synced is None or synced > listed_at:
            # This litestream has not synced yet (its first sync uploads the snapshot), or
            # synced while the listing ran: the listing may predate it. Decide next time.
            return True
        position = restorable_position(entries)
        mark = self._mark(db)
        problem = self._restorability_problem(db, position, mark)
        if problem is None and self._scratch_check_due():
            problem = self._scratch_check(db)
        # Logs first, metrics after: whoever sees a metric change finds its log line.
        if problem is None:
            if mark is not None and position.restorable > mark:
                try:
                    write_mark(self.config, db, position.restorable, self.lease.store)
                    self._marks[label] = position.restorable
                except InfraError as exc:
                    log.warning("cannot write the high-water mark", extra={"error": str(exc)})
            if self._unrestorable.pop(label, None) is not None:
                log.info(
                    "replica restorable again",
                    extra={"db": label, "txid": f"{position.restorable:016x}"},
                )
            self.metrics.last_restorable.labels(db=label).set(time.time())
            self.metrics.restorable_txid.labels(db=label).set(position.restorable)
            self.metrics.restorable.labels(db=label).set(1)
            return False
        if self._unrestorable.get(label) != problem:
            log.error("replica not restorable", extra={"db": label, "problem": problem})
        self._unrestorable[label] = problem
        self.metrics.restorable.labels(db=label).set(0)
        now = time.monotonic()
        if now - self._reseeded_at.get(label, -1e9) < max(60.0, 5 * self.config.status_interval):
            return False  # re-seeded recently: alert, but do not restart litestream in a loop
        self._reseeded_at[label] = now
        self.metrics.reseeds.labels(db=label).inc()
        self._reseed.set()
        self._supervisor_wake.set()
        return True

    @staticmethod
    def _restorability_problem(db: Path, position: Position, mark: int | None) -> str | None:
        if not position.newest:
            return "the replica is empty"
        if not position.snapshot:
            return "the replica has no snapshot"
        if position.gap:
            return (
                f"LTX files are missing after txid {position.restorable:016x} "
                f"(newest {position.newest:016x})"
            )
        if mark is not None and position.restorable < mark:
            return (
                f"the replica restores only up to txid {position.restorable:016x}, behind "
                f"its high-water mark {mark:016x}"
            )
        return None

    def _scratch_check_due(self) -> bool:
        interval = self.config.restore_check_interval
        return bool(interval) and time.monotonic() >= self._next_scratch_check

    def _scratch_check(self, db: Path) -> str | None:
        """A real restore of the replica into scratch space and its integrity check (the
        restore drill of `agent verify`), every `restore_check_interval`."""
        from statekeeper.agent.verify import check_database

        self._next_scratch_check = time.monotonic() + self.config.restore_check_interval
        with tempfile.TemporaryDirectory(dir=self.workdir) as scratch:
            try:
                report = check_database(
                    self.config, db, self.litestream_config, Path(scratch), None
                )
            except InfraError as exc:
                return f"scratch restore failed: {exc}"
        problems = report.get("problems") or []
        log.info("scratch restore checked", extra={"db": str(db), "ok": not problems})
        return f"scratch restore: {problems[0]}" if problems else None

    def write_final_marks(self) -> None:
        """After the final flush: raise each high-water mark to what the replica now holds."""
        for db in self.config.sqlite_paths:
            try:
                position = restorable_position(ltx_json(self.config, db, self.litestream_config))
            except InfraError:
                continue
            mark = self._mark(db)
            if mark is None or position.gap or not position.snapshot:
                continue
            if position.restorable > mark:
                try:
                    write_mark(self.config, db, position.restorable, self.lease.store)
                except InfraError:
                    continue
                log.info(
                    "high-water mark written",
                    extra={"db": str(db), "txid": f"{position.restorable:016x}"},
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
    # No credentials can never work: fail now (exit 4) instead of staying up, unready.
    Lease(config).store  # noqa: B018  (raises InfraError naming the missing variables)
    with tempfile.TemporaryDirectory(prefix="statekeeper-agent-") as workdir:
        if config.sqlite_paths:
            from statekeeper.agent.restore import refuse_stale_start

            refuse_stale_start(config, Path(workdir))
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
