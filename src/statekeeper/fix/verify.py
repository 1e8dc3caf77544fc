"""Verify planned edits by rendering them: nothing is written that the audit has not seen work.

The planned edits are applied to a scratch copy of the tree, and the scratch copy is audited
again (every kustomization root rendered by the same loader). An edit is kept only if

* the finding it targets is gone (in every environment it was reported in), and
* it introduces no finding that was not there before: a root that built and no longer builds
  (SK002), a claim that now has the wrong class, a patch whose target never matches, …

Anything else is a verdict: the group's edit is dropped and listed under "cannot fix" with the
reason, and the engine plans again without it (later edits may have built on it).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from statekeeper.findings import Finding
from statekeeper.fix.context import FindingGroup, Fixed

GroupKey = tuple[str, str, str | None, str]
# Audit a list of paths (files or directories) → its findings.
Audit = Callable[[Sequence[Path]], list[Finding]]


def group_key(group: FindingGroup) -> GroupKey:
    return (group.rule, group.kind, group.namespace, group.name)


@dataclass(frozen=True, slots=True)
class Verdict:
    key: GroupKey
    reason: str


@contextmanager
def scratch_copy(root: Path, changes: dict[Path, tuple[str, str]]) -> Iterator[list[Path]]:
    """A temporary copy of `root` (a directory, or one file) with `changes` applied; yields the
    paths to audit there (the tree, or the file and any new files next to it)."""
    root = root.resolve()
    with _scratch_dir(root) as temp:
        if root.is_dir():
            scratch = Path(temp, root.name)
            shutil.copytree(
                root, scratch, symlinks=True, ignore=_not_copied, copy_function=_copy_if_readable
            )
            base = root
        else:
            scratch = Path(temp, "tree")
            scratch.mkdir()
            shutil.copy2(root, scratch / root.name)
            base = root.parent
        for path, (_old, new) in changes.items():
            target = scratch / path.relative_to(base)
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_symlink():
                target.unlink()  # never write through a link out of the scratch copy
            target.write_text(new, encoding="utf-8")
        if root.is_dir():
            yield [scratch]
        else:
            extra = [scratch / p.relative_to(base) for p in changes if p != root]
            yield [scratch / root.name, *sorted(extra)]


def _not_copied(folder: str, names: list[str]) -> set[str]:
    """VCS folders and anything that is not a folder, file or link (a FIFO would block)."""
    skipped = {".git", ".venv"}
    for name in names:
        mode = os.lstat(os.path.join(folder, name)).st_mode  # noqa: PTH118 - str paths from copytree
        if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
            skipped.add(name)
    return skipped


def _copy_if_readable(source: str, target: str) -> str:
    """Copy a file; one that cannot be read is left out (the audit reports it as SK003)."""
    try:
        return str(shutil.copy2(source, target))
    except OSError:
        return target


@contextmanager
def _scratch_dir(root: Path) -> Iterator[str]:
    """A temporary directory at the same path for the same tree every run (unless another run
    holds it): the render cache is keyed by path, so the roots an edit does not touch are not
    rendered again, in later rounds and later runs."""
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:16]
    stable = Path(tempfile.gettempdir(), f"statekeeper-fix-{os.getuid()}-{digest}")
    try:
        stable.mkdir(mode=0o700)
    except OSError:
        with tempfile.TemporaryDirectory(prefix="statekeeper-fix-") as temp:
            yield temp
        return
    try:
        yield str(stable)
    finally:
        shutil.rmtree(stable, ignore_errors=True)


def _relative(file: str | None, scratch: Path, root: Path) -> str | None:
    """A finding's file relative to the tree it was audited in (scratch or original)."""
    if not file:
        return None
    path = Path(file).absolute()
    for base in (scratch, root):
        try:
            return path.relative_to(base).as_posix()
        except ValueError:
            continue
    return file


# Findings about an input (a root that does not build, a file that cannot be read) are named
# by its path, which differs between the tree and its scratch copy.
_INPUT_RULES = ("SK002", "SK003")


def _key(
    f: Finding,
    renames: dict[tuple[str | None, str], str],
    scratch: Path,
    root: Path,
) -> tuple[object, ...]:
    name = renames.get((f.namespace, f.name), renames.get((None, f.name), f.name))
    if f.rule in _INPUT_RULES:
        name = _relative(f.name, scratch, root) or f.name
    return (f.rule, f.kind, f.namespace, name, f.environment)


def judge(
    *,
    before: Sequence[Finding],
    after: Sequence[Finding],
    groups: Sequence[FindingGroup],
    fixed: Sequence[Fixed],
    touched: dict[GroupKey, set[Path]],
    renames: dict[tuple[str | None, str], str],
    root: Path,
    scratch: Path,
) -> list[Verdict]:
    """The fixed groups whose edit did not do what it claimed, or did harm."""
    root = root.resolve() if root.is_dir() else root.resolve().parent
    done = {f.key for f in fixed if f.key is not None}
    by_key = {group_key(g): g for g in groups}
    verdicts: dict[GroupKey, str] = {}
    after_keys: dict[tuple[object, ...], Finding] = {}
    for finding in after:
        after_keys.setdefault(_key(finding, {}, scratch, root), finding)
    # 1. The targeted finding must be gone, under the claim's old or new name.
    for key in sorted(done, key=str):
        group = by_key.get(key)
        if group is None:
            continue
        names = {group.name, renames.get((group.namespace, group.name), group.name)}
        for env in group.environments:
            for name in names:
                if (group.rule, group.kind, group.namespace, name, env) in after_keys:
                    verdicts[key] = (
                        "the edit does not remove the finding when the tree is rendered again "
                        "(the patch does not reach the object where kustomize applies it?)"
                    )
    # 2. No new finding: each one is blamed on the edits about its object, else on the edits
    #    of its file, else on the edits of the root (directory) it was reported for.
    old = {_key(f, renames, scratch, root) for f in before}
    for finding in after:
        if _key(finding, {}, scratch, root) in old:
            continue
        where = _relative(finding.file, scratch, root)
        blamed = [
            k
            for k in done
            if k[1] == finding.kind
            and k[2] == finding.namespace
            and finding.name in (k[3], renames.get((k[2], k[3])))
        ]
        if not blamed and where:
            file = Path(os.path.normpath(root / where))  # never resolve(): links may loop
            blamed = [k for k in done if file in touched.get(k, set())]
            if not blamed:
                folder = file.parent
                blamed = [
                    k
                    for k in done
                    if any(
                        p.is_relative_to(folder) or folder.is_relative_to(p.parent)
                        for p in touched.get(k, set())
                    )
                ]
        if not blamed:
            blamed = sorted(done, key=str)  # cannot tell: keep nothing rather than harm
        text = f"{finding.rule} {finding.kind} {finding.name}"
        if finding.rule == "SK002":
            reason = f"the edit would break a root that builds today ({where}): {finding.message}"
        else:
            reason = f"the edit would introduce {text}: {finding.message}"
        for k in blamed:
            verdicts.setdefault(k, reason)
    return [Verdict(k, r) for k, r in sorted(verdicts.items(), key=str)]
