"""The set of files one `fix` run reads, edits and writes — all of them, or none.

Every file is read once and remembered with its SHA-256. Writing checks, for every file first,
that it is still what was read (no one edited it meanwhile) and that it may be written; only then
are the new texts written to temporary files in the same directories and renamed over the
originals, so a reader never sees half a file.
"""

from __future__ import annotations

import copy
import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from statekeeper.errors import InputError
from statekeeper.fix.yamlfile import YamlFile, sha256
from statekeeper.generate.yamlout import replace_all


class ChangedOnDisk(InputError):
    """A file changed between the time fix read it and the time it would write it."""


@dataclass(slots=True)
class Workspace:
    """Files loaded for editing (by absolute path) and new files to create."""

    root: Path
    files: dict[Path, YamlFile] = field(default_factory=dict)
    new_files: dict[Path, str] = field(default_factory=dict)
    # SHA-256 of files as the audit read them (see `fingerprint`): a file that differs when fix
    # loads it changed after the audit, and its findings may no longer be true.
    audited: dict[Path, str] = field(default_factory=dict)
    # Files loaded or created since the engine last cleared it: what one fixer may have edited.
    touched: set[Path] = field(default_factory=set)

    def load(self, path: Path) -> YamlFile:
        path = path.resolve()
        self.touched.add(path)
        if path not in self.files:
            yfile = YamlFile.load(path)
            expected = self.audited.get(path)
            if expected is not None and expected != yfile.digest:
                raise ChangedOnDisk(
                    f"{self.display(path)} changed after the audit; nothing was written "
                    "(run fix again)"
                )
            self.files[path] = yfile
        return self.files[path]

    def checkpoint(self) -> Any:
        """A copy of every in-memory edit so far, for `rollback`."""
        files = {
            path: (
                copy.deepcopy([d.data for d in yfile.documents]),
                [d.baseline for d in yfile.documents],
                copy.deepcopy(yfile.new_documents),
            )
            for path, yfile in self.files.items()
        }
        return files, dict(self.new_files)

    def rollback(self, checkpoint: Any) -> None:
        """Undo every in-memory edit made since `checkpoint`."""
        files, new_files = checkpoint
        for path in list(self.files):
            if path not in files:
                del self.files[path]
                continue
            datas, baselines, new_documents = files[path]
            yfile = self.files[path]
            for doc, data, baseline in zip(yfile.documents, datas, baselines, strict=True):
                doc.data, doc.baseline = data, baseline
            yfile.new_documents = new_documents
        self.new_files = new_files

    def create(self, path: Path, text: str) -> None:
        """Plan a new file. If it exists already (or is planned), that is a usage error."""
        path = path.resolve()
        if path.exists() or path in self.new_files:
            raise InputError(f"{self.display(path)} already exists")
        self.touched.add(path)
        self.new_files[path] = text

    def display(self, path: Path) -> str:
        """The path as the user would recognise it: relative to the fixed tree when inside it."""
        try:
            return path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return str(path)

    def changes(self) -> dict[Path, tuple[str, str]]:
        """path → (old text, new text) for every file that changes (new files: old is "")."""
        result: dict[Path, tuple[str, str]] = {}
        for path, yfile in sorted(self.files.items()):
            new = yfile.render()
            if new != yfile.original_text:
                result[path] = (yfile.original_text, new)
        for path, text in sorted(self.new_files.items()):
            result[path] = ("", text)
        return result

    def diff(self) -> str:
        """A unified diff of every change, `a/`/`b/` paths relative to the tree."""
        chunks: list[str] = []
        for path, (old, new) in self.changes().items():
            name = self.display(path)
            chunks.extend(
                difflib.unified_diff(
                    old.splitlines(keepends=True),
                    new.splitlines(keepends=True),
                    fromfile="/dev/null" if not old and path in self.new_files else f"a/{name}",
                    tofile=f"b/{name}",
                )
            )
        return "".join(line if line.endswith("\n") else line + "\n" for line in chunks)

    def commit(self) -> list[Path]:
        """Write every change, or nothing. Returns the paths written."""
        changes = self.changes()
        for path in changes:
            self._check_writable(path)
        for path, yfile in self.files.items():
            if path in changes:
                try:
                    current = path.read_bytes()
                except OSError as exc:
                    raise InputError(f"cannot read {self.display(path)}: {exc}") from exc
                if sha256(current) != yfile.digest:
                    raise ChangedOnDisk(
                        f"{self.display(path)} changed while fix was running; nothing was "
                        "written (run fix again)"
                    )
        return replace_all({path: new for path, (_old, new) in changes.items()}, self.display)

    def _check_writable(self, path: Path) -> None:
        name = self.display(path)
        if path in self.new_files:
            if path.exists():
                raise ChangedOnDisk(f"{name} appeared while fix was running; nothing was written")
            parent = _existing_parent(path)
            if not os.access(parent, os.W_OK | os.X_OK):
                raise InputError(f"cannot create {name}: directory {parent} is not writable")
            return
        # No write bit for anyone counts as read-only even for root, who `os.access` lets write:
        # someone marked the file read-only on purpose, and a rename would ignore it.
        if not os.access(path, os.W_OK) or not path.stat().st_mode & 0o222:
            raise InputError(f"{name} is read-only; nothing was written")
        if not os.access(path.parent, os.W_OK | os.X_OK):
            raise InputError(f"cannot replace {name}: its directory is not writable")


def _existing_parent(path: Path) -> Path:
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    return parent


def fingerprint(root: Path) -> dict[Path, str]:
    """SHA-256 of every YAML file below `root` (or of `root` itself), taken before the audit."""
    root = root.resolve()
    paths = (
        [root]
        if root.is_file()
        else [
            p
            for p in root.rglob("*")
            if (p.suffix in (".yaml", ".yml") or p.name == "Kustomization") and p.is_file()
        ]
    )
    digests: dict[Path, str] = {}
    for path in paths:
        try:
            digests[path.resolve()] = sha256(path.read_bytes())
        except OSError:
            continue  # unreadable files are the audit's to report
    return digests
