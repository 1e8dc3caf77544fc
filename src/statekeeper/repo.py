"""Where the repository is: its git root, found without running git (startup time matters)."""

from __future__ import annotations

from pathlib import Path


def git_root(start: Path) -> Path | None:
    """The nearest directory at or above `start` holding `.git` (a directory, or the file of a
    worktree or submodule), or None outside any repository."""
    here = start.resolve()
    for directory in (here, *here.parents):
        if (directory / ".git").exists():
            return directory
    return None
