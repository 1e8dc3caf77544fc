"""Bounded child processes: a wall-clock deadline, SIGTERM first, SIGKILL after a grace period.

litestream and rclone have no overall deadline of their own; a restore or sync that hangs (a
stalled TCP connection, a prompt) must never block a pod start forever.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from statekeeper.agent.log import get_logger
from statekeeper.errors import InfraError

log = get_logger("procs")

PR_SET_PDEATHSIG = 1


def _load_libc() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


# Loaded once in the parent: nothing that takes a lock (dlopen) may run in the forked child.
_LIBC = _load_libc()


def die_with_parent(sig: signal.Signals) -> Callable[[], None]:
    """A `preexec_fn` that makes the child receive `sig` when the agent dies, even by SIGKILL
    (Linux `PR_SET_PDEATHSIG`; a no-op elsewhere). A child started in its own session
    (`start_new_session`) is out of reach of a signal to the agent's process group, so without
    this a SIGKILLed agent would leave e.g. a `litestream restore` writing on.

    The signal fires when the *thread* that started the child ends; callers start children from
    threads that outlive them. When the parent died between fork and prctl, the child exits.
    """
    parent = os.getpid()

    def preexec() -> None:  # runs in the forked child: only syscalls, no locks
        prctl = getattr(_LIBC, "prctl", None)
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, int(sig))
        if os.getppid() != parent:
            os._exit(1)

    return preexec


def terminate(proc: subprocess.Popen[str], grace: float) -> None:
    """SIGTERM `proc` (and its process group), then SIGKILL it if it outlives `grace` seconds."""
    if proc.poll() is not None:
        return
    _signal_group(proc, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        log.warning("child ignored SIGTERM, killing", extra={"pid": proc.pid, "grace_s": grace})
        _signal_group(proc, signal.SIGKILL)
        proc.wait()


def _signal_group(proc: subprocess.Popen[str], sig: signal.Signals) -> None:
    # The child runs in its own session (start_new_session=True), so its pid is its group id:
    # signalling the group also reaches anything it spawned.
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)


def run_bounded(
    cmd: Sequence[str],
    *,
    env: Mapping[str, str],
    timeout: float,
    grace: float,
    cwd: Path | None = None,
    abort: Callable[[], BaseException | None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `cmd` to completion, capturing text stdout/stderr; never longer than `timeout` seconds.

    On timeout the child gets SIGTERM, then SIGKILL after `grace` seconds, and InfraError is raised
    naming the command (never its environment, which holds credentials). A non-zero exit is NOT an
    error here: callers inspect `returncode`.

    `abort`, when given, is polled every 50 ms: when it returns an exception the child is stopped
    the same way and that exception is raised (e.g. a bucket check running in parallel failed).
    """
    name = Path(cmd[0]).name
    try:
        proc = subprocess.Popen(
            list(cmd),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            preexec_fn=die_with_parent(signal.SIGKILL),
        )
    except OSError as exc:
        raise InfraError(f"cannot run {name}: {exc.strerror or exc}") from None
    deadline = time.monotonic() + timeout
    try:
        while True:
            step = deadline - time.monotonic()
            if abort is not None:
                step = min(step, 0.05)
            try:
                stdout, stderr = proc.communicate(timeout=max(step, 0.0))
                break
            except subprocess.TimeoutExpired:
                reason = abort() if abort is not None else None
                if reason is not None:
                    terminate(proc, grace)
                    proc.communicate()
                    raise reason from None
                if time.monotonic() >= deadline:
                    terminate(proc, grace)
                    proc.communicate()
                    raise InfraError(
                        f"{name} {' '.join(cmd[1:2])} did not finish within {timeout:g}s and was "
                        "stopped; raise the timeout or check S3 reachability"
                    ) from None
    except BaseException:
        terminate(proc, grace)
        raise
    return subprocess.CompletedProcess(list(cmd), proc.returncode, stdout, stderr)
