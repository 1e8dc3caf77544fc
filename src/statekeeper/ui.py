"""How chatty the CLI is: `-q` (errors only), default, `-v` (what was used and how long).

One process-wide level, set by the command from its flags. Anything that writes progress or
warnings to stderr (the loader's progress bar, "nothing audited") asks `quiet()` first.
"""

from __future__ import annotations

import sys

QUIET, NORMAL, VERBOSE = -1, 0, 1
_level = NORMAL


def set_level(level: int) -> None:
    global _level
    _level = level


def level() -> int:
    return _level


def quiet() -> bool:
    return _level <= QUIET


def warn(message: str) -> None:
    """`statekeeper: warning: <message>` on stderr, unless -q."""
    if _level > QUIET:
        sys.stderr.write(f"statekeeper: warning: {message}\n")


def info(message: str) -> None:
    """`statekeeper: <message>` on stderr with -v only."""
    if _level >= VERBOSE:
        sys.stderr.write(f"statekeeper: {message}\n")
