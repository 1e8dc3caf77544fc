"""Find and read the files below a directory: YAML files, kustomization directories, Helm charts.

Reading never follows a path out of the tree twice: symlinked directories are followed once, a
link back to one of its own ancestors is a symlink loop. Whatever cannot be read becomes a
`ReadError` — raised for a file named on the command line, collected by the walk otherwise.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from statekeeper.manifests.yaml import ReadError

STDIN_NAME = "<stdin>"
YAML_SUFFIXES = (".yaml", ".yml")
KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
HELM_CHART_FILE = "Chart.yaml"

__all__ = [
    "HELM_CHART_FILE",
    "KUSTOMIZATION_NAMES",
    "STDIN_NAME",
    "YAML_SUFFIXES",
    "Tree",
    "is_kustomization",
    "kustomization_file",
    "norm",
    "read_file",
    "read_stdin",
    "relative_to_cwd",
    "walk",
]


def relative_to_cwd(path: str | os.PathLike[str]) -> str:
    """`path` relative to the working directory when it lies below it, else absolute."""
    text = os.fspath(path)
    if not os.path.isabs(text):  # noqa: PTH117 - str in, str out
        normal = os.path.normpath(text)
        if normal != ".." and not normal.startswith(".." + os.sep):
            return normal  # already relative to the working directory (the common case)
    absolute = os.path.abspath(text)  # noqa: PTH100 - normalises `..` without resolving links
    cwd = os.getcwd()  # noqa: PTH109 - a str, compared as text
    if absolute == cwd:
        return "."
    if absolute.startswith(cwd + os.sep):
        return absolute[len(cwd) + 1 :]
    return absolute


def norm(path: str | os.PathLike[str]) -> str:
    """An absolute, normalised path (links kept): the key paths are compared by."""
    return os.path.normpath(os.path.abspath(path))  # noqa: PTH100 - normalise, keep links


def is_kustomization(name: str) -> bool:
    return name in KUSTOMIZATION_NAMES


def kustomization_file(directory: Path) -> Path:
    """The kustomization file of `directory` (kustomization.yaml when there is none)."""
    for name in KUSTOMIZATION_NAMES:
        if (directory / name).is_file():
            return directory / name
    return directory / KUSTOMIZATION_NAMES[0]


@dataclass
class Tree:
    """What a walk below one directory argument found."""

    root: Path
    yaml_files: list[Path] = field(default_factory=list)
    kustomize_dirs: set[Path] = field(default_factory=set)
    helm_charts: list[Path] = field(default_factory=list)  # directories holding Chart.yaml
    problems: list[ReadError] = field(default_factory=list)  # what could not be read


def walk(root: Path, on_problem: Callable[[ReadError], None] | None = None) -> Tree:
    """Every *.yaml/*.yml file below `root` (sorted, hidden directories skipped), every
    directory holding a kustomization file, and every Helm chart (not descended into).

    A directory or entry that cannot be read is a problem: passed to `on_problem` (which may
    raise to stop the walk) and kept in `Tree.problems`.
    """
    walker = _Walker(Tree(root), on_problem)
    walker.visit(root, frozenset())
    return walker.tree


# A directory's identity: (device, inode), the same through every link to it.
_DirId = tuple[int, int]


@dataclass
class _Walker:
    """One walk's state: the tree found so far, where problems go, and the directories already
    read (by identity, so a second link to one is read once and a link to a parent is a loop)."""

    tree: Tree
    on_problem: Callable[[ReadError], None] | None
    visited: set[_DirId] = field(default_factory=set)

    def visit(self, directory: Path, ancestors: frozenset[_DirId]) -> None:
        """Read `directory` (unless already read, or a chart), then its subdirectories."""
        entered = self._enter(directory, ancestors)
        if entered is None:
            return
        ident, entries = entered
        if directory != self.tree.root and any(e.name == HELM_CHART_FILE for e in entries):
            # Templates are not YAML until Helm renders them with values: one note per chart.
            self.tree.helm_charts.append(directory)
            return
        for sub in self._sort(directory, entries):
            self.visit(sub, ancestors | {ident})

    def _enter(
        self, directory: Path, ancestors: frozenset[_DirId]
    ) -> tuple[_DirId, list[os.DirEntry[str]]] | None:
        """The directory's identity and entries (sorted by name), or None when it is not to be
        read: unreadable or a symlink loop (both problems), or already read (not one)."""
        try:
            info = directory.stat()
        except OSError as err:
            self.problem(directory, f"cannot read: {os_reason(err)}")
            return None
        ident = (info.st_dev, info.st_ino)
        if ident in ancestors:
            self.problem(directory, "symlink loop (links back to a parent)")
            return None
        if ident in self.visited:
            return None  # a second link to a directory already read
        self.visited.add(ident)
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as err:
            self.problem(directory, f"cannot read: {os_reason(err)}")
            return None
        return ident, entries

    def _sort(self, directory: Path, entries: list[os.DirEntry[str]]) -> list[Path]:
        """Put the directory's manifests and kustomization into the tree; its subdirectories
        (to visit next) are returned. Hidden entries are skipped."""
        subdirs: list[Path] = []
        for entry in entries:
            if entry.name.startswith("."):
                continue  # .git, .github, .gitlab-ci.yml, .pre-commit-config.yaml: not manifests
            path = directory / entry.name
            try:
                is_dir = entry.is_dir()  # follows symlinks
            except OSError as err:
                self.problem(path, f"cannot read: {os_reason(err)}")
                continue
            if is_dir:
                subdirs.append(path)
            elif is_kustomization(entry.name):
                self.tree.kustomize_dirs.add(directory)
            elif entry.name.endswith(YAML_SUFFIXES):
                self.tree.yaml_files.append(path)
        return subdirs

    def problem(self, path: Path, reason: str) -> None:
        err = ReadError(relative_to_cwd(path), reason)
        if self.on_problem is not None:
            self.on_problem(err)
        self.tree.problems.append(err)


def os_reason(err: OSError) -> str:
    if err.errno == 40:  # ELOOP
        return "symlink loop"
    return err.strerror or str(err)


# The largest manifest read (a bigger file is SK003): shared by the walk and the side reads
# (kustomization files, Flux/Argo deployers, Helm values).
MAX_FILE_BYTES = 16 * 1024 * 1024


def read_file(path: Path, max_bytes: int = MAX_FILE_BYTES, *, named: bool = False) -> bytes:
    """The bytes of `path`, at most `max_bytes`. Only a regular file is read, except that a
    pipe named on the command line (`statekeeper audit <(helm template …)`) is too.
    Raises ReadError."""
    where = relative_to_cwd(path)
    try:
        info = path.stat()
    except OSError as err:
        reason = os_reason(err)
        if path.is_symlink() and reason != "symlink loop":
            reason = f"broken symlink ({reason})"
        raise ReadError(where, f"cannot read: {reason}") from None
    piped = named and stat.S_ISFIFO(info.st_mode)
    if not (stat.S_ISREG(info.st_mode) or piped):
        raise ReadError(where, "cannot read: not a regular file")
    if info.st_size > max_bytes:
        raise ReadError(where, f"file too large ({info.st_size} bytes; limit {max_bytes})")
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as err:
        raise ReadError(where, f"cannot read: {os_reason(err)}") from None
    if len(data) > max_bytes:
        raise ReadError(where, f"file too large (more than {max_bytes} bytes)")
    return data


def read_stdin(stream: BinaryIO, max_bytes: int) -> bytes:
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ReadError(STDIN_NAME, f"input too large (more than {max_bytes} bytes)")
    return data
