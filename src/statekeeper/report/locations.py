"""A finding's file relative to the repository root: pure path arithmetic, no file access."""

from __future__ import annotations

import posixpath
from pathlib import PureWindowsPath

STDIN_NAME = "<stdin>"


def repo_relative(file: str, srcroot: str | None, cwd: str | None) -> str | None:
    """`file` (relative to `cwd`, or absolute) as a POSIX path relative to `srcroot`; None for
    `<stdin>`, URLs, Windows paths and files outside the root. Without a root, a relative
    path is returned normalised and an absolute one is None."""
    if file == STDIN_NAME or "://" in file or PureWindowsPath(file).drive:
        return None
    posix = file.replace("\\", "/")
    if srcroot is None or cwd is None:
        if posixpath.isabs(posix):
            return None
        return posixpath.normpath(posix)
    absolute = posixpath.normpath(posixpath.join(cwd, posix))
    root = posixpath.normpath(srcroot)
    if absolute == root or not absolute.startswith(root.rstrip("/") + "/"):
        return None
    return posixpath.relpath(absolute, root)


def display_path(file: str | None, srcroot: str | None, cwd: str | None) -> str:
    """The path people and CI annotations should see: repository-relative when possible."""
    if not file:
        return ""
    return repo_relative(file, srcroot, cwd) or file
