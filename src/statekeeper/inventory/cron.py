"""Cron schedules: how long the longest gap between two runs is.

Read with croniter (standard 5-field cron, `L`/`W`/`#`, `?`, `@daily`-style descriptors). Two
extensions of the Go cron library that Velero and many sync images use are handled here: a
leading `CRON_TZ=`/`TZ=`, a 6-field schedule with seconds first, and `@every <duration>`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache

from statekeeper.policy.model import parse_duration

# Runs are walked from a fixed start over two years (a yearly schedule shows one full gap; a leap
# day is in the window), at most this many runs: a regular schedule repeats its gaps long before.
_START = datetime(2024, 1, 1)
_WINDOW = timedelta(days=2 * 366 + 1)
_MAX_RUNS = 5000


@lru_cache(maxsize=4096)
def cron_interval(expr: str) -> float | None:
    """The longest gap between two runs of a cron schedule in seconds (None: unparsable, or a
    schedule that never runs)."""
    words = expr.split()
    if words and (words[0].startswith("CRON_TZ=") or words[0].startswith("TZ=")):
        words = words[1:]
    if not words:
        return None
    if words[0] == "@every":
        return parse_duration(words[1]) if len(words) == 2 else None
    if len(words) == 6:
        words = words[1:]  # Go cron's seconds field comes first (croniter's would come last)
    text = " ".join(words)
    # Imported here, not at the top: croniter (with dateutil) is ~15 ms of every start-up, and
    # most audits hold no cron schedule at all.
    from croniter import CroniterError, croniter

    if not croniter.is_valid(text):
        return None
    try:
        runs = croniter(text, _START)
        previous = runs.get_next(datetime)
        longest = 0.0
        for _ in range(_MAX_RUNS):
            current = runs.get_next(datetime)
            longest = max(longest, (current - previous).total_seconds())
            if current - _START > _WINDOW:
                break
            previous = current
    except CroniterError:
        return None
    return longest or None
