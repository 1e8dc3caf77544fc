"""`agent restore`'s decision table (`restore.decide`), row by row: pure, no files, no S3.

One case per row of the table in agent/restore.py's docstring (the reference), then the whole
space of `Facts` at once. The fault matrix (test_restore.py, test_stale_local.py,
test_hardening.py) runs the same decisions with their effects, against real parts.
"""

from __future__ import annotations

import inspect
import itertools
import re
from dataclasses import replace

import pytest

from statekeeper.agent import restore
from statekeeper.agent.restore import (
    KEPT_STATES,
    STALE_STATES,
    Action,
    Facts,
    LocalState,
    Replica,
    decide,
)

L, R, A = LocalState, Replica, Action

# (row of the docstring table, facts, action)
ROWS: list[tuple[str, Facts, Action]] = [
    # present, healthy → kept (never looked up: the replica is not needed)
    ("present, healthy", Facts(L.HEALTHY), A.KEEP),
    ("present, healthy (no position, same content)", Facts(L.HEALTHY_AS_REPLICA), A.KEEP),
    (
        "present, healthy: on_stale=restore changes nothing",
        Facts(L.HEALTHY, on_stale_restore=True),
        A.KEEP,
    ),
    # present, healthy, older than its replica → REFUSE, nothing looked up or moved
    ("older than its replica", Facts(L.OLDER), A.REFUSE_STALE),
    ("different from its replica, no position", Facts(L.DIFFERENT), A.REFUSE_STALE),
    ("older: --allow-empty changes nothing", Facts(L.OLDER, allow_empty=True), A.REFUSE_STALE),
    # the rows below look the replica up first
    ("older, on_stale=restore: look up", Facts(L.OLDER, on_stale_restore=True), A.LOOK_UP_REPLICA),
    ("corrupt: look up", Facts(L.CORRUPT), A.LOOK_UP_REPLICA),
    ("empty: look up", Facts(L.EMPTY), A.LOOK_UP_REPLICA),
    ("missing: look up", Facts(L.MISSING), A.LOOK_UP_REPLICA),
    # replica behind its mark → REFUSE
    ("corrupt, replica behind its mark", Facts(L.CORRUPT, R.BEHIND_MARK), A.REFUSE_BEHIND_MARK),
    (
        "missing, replica behind its mark, --allow-empty",
        Facts(L.MISSING, R.BEHIND_MARK, allow_empty=True),
        A.REFUSE_BEHIND_MARK,
    ),
    (
        "older, on_stale=restore, replica behind its mark",
        Facts(L.OLDER, R.BEHIND_MARK, on_stale_restore=True),
        A.REFUSE_BEHIND_MARK,
    ),
    # older, on_stale=restore → restored; the replica vanished since → REFUSE
    ("older, on_stale=restore", Facts(L.OLDER, R.PRESENT, on_stale_restore=True), A.RESTORE),
    (
        "different, on_stale=restore",
        Facts(L.DIFFERENT, R.PRESENT, on_stale_restore=True),
        A.RESTORE,
    ),
    (
        "older, on_stale=restore, replica vanished",
        Facts(L.OLDER, R.ABSENT, on_stale_restore=True, allow_empty=True),
        A.REFUSE_REPLICA_GONE,
    ),
    (
        "older, on_stale=restore, replica vanished, its mark left",
        Facts(L.OLDER, R.DELETED, on_stale_restore=True),
        A.REFUSE_REPLICA_GONE,
    ),
    # present, corrupt or empty, replica exists → restored
    ("corrupt, replica exists", Facts(L.CORRUPT, R.PRESENT), A.RESTORE),
    ("empty, replica exists", Facts(L.EMPTY, R.PRESENT), A.RESTORE),
    (
        "empty, replica exists, marker, data in its -wal",
        Facts(L.EMPTY, R.PRESENT, initialised=True, leftovers=True),
        A.RESTORE,
    ),
    # missing, replica exists → restored (even with stray -wal/-shm, or the marker)
    ("missing, replica exists", Facts(L.MISSING, R.PRESENT), A.RESTORE),
    (
        "missing, replica exists, stray -wal, marker",
        Facts(L.MISSING, R.PRESENT, initialised=True, leftovers=True),
        A.RESTORE,
    ),
    # no replica, but its mark → REFUSE (--allow-empty: start empty)
    ("missing, replica deleted", Facts(L.MISSING, R.DELETED), A.REFUSE_REPLICA_DELETED),
    ("corrupt, replica deleted", Facts(L.CORRUPT, R.DELETED), A.REFUSE_REPLICA_DELETED),
    (
        "missing, replica deleted, --allow-empty",
        Facts(L.MISSING, R.DELETED, allow_empty=True),
        A.START_EMPTY,
    ),
    # empty or missing, no replica, on a volume that never held data → first start
    ("missing, no replica", Facts(L.MISSING, R.ABSENT), A.FIRST_START),
    ("empty, no replica", Facts(L.EMPTY, R.ABSENT), A.FIRST_START),
    (
        "missing, no replica, --allow-empty",
        Facts(L.MISSING, R.ABSENT, allow_empty=True),
        A.FIRST_START,
    ),
    # otherwise, no replica → REFUSE (--allow-empty: start empty)
    ("corrupt, no replica", Facts(L.CORRUPT, R.ABSENT), A.REFUSE_NO_REPLICA),
    (
        "corrupt, no replica, --allow-empty",
        Facts(L.CORRUPT, R.ABSENT, allow_empty=True),
        A.START_EMPTY,
    ),
    (
        "missing on an initialised volume",
        Facts(L.MISSING, R.ABSENT, initialised=True),
        A.REFUSE_NO_REPLICA,
    ),
    (
        "missing on an initialised volume, --allow-empty",
        Facts(L.MISSING, R.ABSENT, initialised=True, allow_empty=True),
        A.START_EMPTY,
    ),
    (
        "missing, its -wal/-shm left",
        Facts(L.MISSING, R.ABSENT, leftovers=True),
        A.REFUSE_NO_REPLICA,
    ),
    (
        "empty on an initialised volume",
        Facts(L.EMPTY, R.ABSENT, initialised=True),
        A.REFUSE_NO_REPLICA,
    ),
    ("empty, data in its -wal", Facts(L.EMPTY, R.ABSENT, leftovers=True), A.REFUSE_NO_REPLICA),
]


@pytest.mark.parametrize(("row", "facts", "action"), ROWS, ids=[row for row, _, _ in ROWS])
def test_each_row_of_the_table(row: str, facts: Facts, action: Action) -> None:
    assert decide(facts) is action, row


def test_every_action_is_reached_by_a_row() -> None:
    assert {action for _, _, action in ROWS} == set(Action)


ALL_FACTS = [
    Facts(local, replica, initialised, leftovers, on_stale_restore, allow_empty)
    for local, replica, initialised, leftovers, on_stale_restore, allow_empty in itertools.product(
        LocalState, Replica, *[(False, True)] * 4
    )
]


def test_the_whole_space_of_facts_keeps_the_promises() -> None:
    """Every combination of facts (7 x 5 x 2^4): what the docstring promises holds."""
    assert len(ALL_FACTS) == len(LocalState) * len(Replica) * 16
    for facts in ALL_FACTS:
        _check_promises(facts)


def _check_promises(facts: Facts) -> None:
    action = decide(facts)
    # A healthy DB is kept; nothing else is.
    assert (action is A.KEEP) == (facts.local in KEPT_STATES)
    # The replica is looked up exactly when a row needs it and it is not known yet.
    needs_replica = facts.local not in KEPT_STATES and not (
        facts.local in STALE_STATES and not facts.on_stale_restore
    )
    assert (action is A.LOOK_UP_REPLICA) == (needs_replica and facts.replica is R.UNKNOWN)
    # Only a replica that exists and holds what its mark acknowledged is restored.
    if action is A.RESTORE:
        assert facts.replica is R.PRESENT
    # A first start only where nothing can be lost: no replica and no mark, nothing local.
    if action is A.FIRST_START:
        assert facts.replica is R.ABSENT and facts.local in (L.EMPTY, L.MISSING)
        assert not facts.initialised and not facts.leftovers
    # Starting empty needs --allow-empty, and never throws away a stale DB or a short replica.
    if action is A.START_EMPTY:
        assert facts.allow_empty and facts.local not in STALE_STATES
        assert facts.replica in (R.ABSENT, R.DELETED)
    # --allow-empty turns exactly the "no replica" refusals into an empty start.
    if action in (A.REFUSE_NO_REPLICA, A.REFUSE_REPLICA_DELETED):
        assert not facts.allow_empty
        assert decide(replace(facts, allow_empty=True)) is A.START_EMPTY


def _table_rows() -> list[str]:
    """The left column of the module docstring's table, continuation lines joined."""
    doc = restore.__doc__ or ""
    table = doc.split("\n\n")[2]  # after the summary line and "For each SQLite database ...:"
    rows: list[str] = []
    for line in table.splitlines():
        left = line[:30].strip()
        if not left or left.startswith("("):
            continue
        if "→" in line:
            rows.append(left)
        else:
            rows[-1] += " " + left
    return rows


def test_decide_reads_as_the_docstring_table_row_by_row() -> None:
    """decide's comments name the table's rows, in the table's order."""
    comments = re.findall(r"^\s+# (.+)$", inspect.getsource(decide), flags=re.MULTILINE)
    assert [c for c in comments if not c.startswith("(")] == _table_rows()
