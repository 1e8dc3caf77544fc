"""The fence: `litestream replicate` runs under a watchdog that kills it when the lease deadline
passes, whatever the agent's main process is doing.

    python -m statekeeper.agent.fence <deadline file> -- litestream replicate ...

The agent writes the deadline file after every successful lease write: one number, the
CLOCK_MONOTONIC second (system-wide on Linux, the clock of Python's `time.monotonic()`) until
which the lease is locally valid (`Lease.valid_until`: the request's start + `ttl - heartbeat`).
The watchdog re-reads it every POLL seconds and when the deadline it knows arrives; once the
deadline has passed it SIGKILLs litestream (no
shutdown sync: another pod may hold the lease by then) and exits with FENCED. So the replicator
stops before any contender can see the lease expire, even when the agent is frozen (SIGSTOP, a
stalled page-in), its renewal hangs, or S3 is partitioned away: only a renewal extends the
deadline. A contender waits `ttl` plus a margin (`lease.takeover_margin`) on the server's clock.

Signals: SIGTERM/SIGINT are passed on to litestream (the agent's orderly stop, with its flush).
litestream gets SIGKILL if the watchdog dies, the watchdog SIGTERM if the agent dies (both via
PR_SET_PDEATHSIG, see procs.die_with_parent). Standard library only: it starts in ~30 ms.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

POLL = 1.0  # the deadline file is re-read at least this often (and at the deadline itself)
FENCED = 75  # exit status after killing litestream at the deadline


def read_deadline(path: Path, last: float) -> float:
    """The deadline in the file, or `last` while it cannot be read (being replaced)."""
    try:
        return float(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return last


def write_deadline(path: Path, deadline: float) -> None:
    """Replace the deadline file atomically (the watchdog never reads half a number)."""
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(f"{deadline:.3f}\n", encoding="ascii")
    temp.replace(path)


def _say(level: str, msg: str, **fields: object) -> None:
    # One JSON line on stdout, which the agent relays like litestream's own lines.
    record = {"time": datetime.now(UTC).isoformat(), "level": level, "msg": msg, **fields}
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        sys.stderr.write("usage: python -m statekeeper.agent.fence DEADLINE_FILE -- CMD...\n")
        return 2
    deadline_file, command = Path(argv[0]), argv[2:]
    deadline = read_deadline(deadline_file, 0.0)
    if time.monotonic() >= deadline:
        _say("ERROR", "lease deadline already passed: litestream not started")
        return FENCED

    from statekeeper.agent.procs import die_with_parent

    child = subprocess.Popen(command, preexec_fn=die_with_parent(signal.SIGKILL))

    def forward(signum: int, frame: FrameType | None) -> None:
        child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while True:
        # Sleep until the deadline as known (re-read at least every POLL seconds, so that a
        # lease given up early — the file set to 0 — is seen within POLL).
        wait = max(0.02, min(POLL, deadline - time.monotonic()))
        try:
            return child.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            pass
        deadline = read_deadline(deadline_file, deadline)
        overdue = time.monotonic() - deadline
        if overdue >= 0:
            child.kill()
            child.wait()
            _say(
                "ERROR",
                "lease not renewed in time: litestream killed (fenced)",
                pid=child.pid,
                overdue_s=round(overdue, 2),
            )
            return FENCED


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
