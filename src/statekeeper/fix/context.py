"""What every fixer gets: the source index, the workspace of edits, the strategy, and the outcome.

A fixer is a function `fix(ctx, group)` that edits files through `ctx.workspace` and records
what it did (`ctx.fixed`) or why it could not (`ctx.cannot`). It never writes to disk itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from statekeeper.errors import InputError
from statekeeper.findings import Finding
from statekeeper.fix.audit import ClaimSizes
from statekeeper.fix.sources import SourceIndex
from statekeeper.fix.workspace import Workspace
from statekeeper.fix.yamlfile import YamlFile
from statekeeper.generate.strategy import Strategy

Style = Literal["agent", "litestream"]


@dataclass(frozen=True, slots=True)
class FindingGroup:
    """One object's findings of one rule, across the environments that reported it."""

    rule: str
    kind: str
    namespace: str | None
    name: str
    environments: tuple[str | None, ...]
    findings: tuple[Finding, ...]

    @property
    def label(self) -> str:
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.rule} {self.kind} {ns}{self.name}"


@dataclass(frozen=True, slots=True)
class Fixed:
    rule: str
    subject: str
    what: str
    # (rule, kind, namespace, name) of the group fixed: verification drops edits by group.
    key: tuple[str, str, str | None, str] | None = None


@dataclass(frozen=True, slots=True)
class CannotFix:
    rule: str
    subject: str
    reason: str


@dataclass(slots=True)
class FixContext:
    root: Path
    index: SourceIndex
    workspace: Workspace
    strategy: Strategy
    style: Style = "agent"
    # Where a cluster-wide object goes when the repo has no place for it (relative to root).
    cluster_dir: Path = Path("cluster")
    fixed: list[Fixed] = field(default_factory=list)
    cannot: list[CannotFix] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # (namespace, old PVC name) → new name, so later fixers target renamed claims.
    renames: dict[tuple[str | None, str], str] = field(default_factory=dict)
    # (kind, namespace, name) of a workload → (SQLite paths, config paths) the audit detected.
    detected: dict[tuple[str, str | None, str], tuple[list[str], list[str]]] = field(
        default_factory=dict
    )
    # (namespace, PVC name) → its size and sizing category per environment, as SK104 judged.
    claim_sizes: ClaimSizes = field(default_factory=dict)
    # (kind, namespace, name) → the rules the audit reported for that object.
    reported: dict[tuple[str, str | None, str], set[str]] = field(default_factory=dict)
    # Groups (rule, kind, namespace, name) verification refused, with the reason.
    refused: dict[tuple[str, str, str | None, str], str] = field(default_factory=dict)
    # Files each group's fixer loaded or created (what verification blames new findings on).
    touched: dict[tuple[str, str, str | None, str], set[Path]] = field(default_factory=dict)

    def done(self, group: FindingGroup, what: str) -> None:
        key = (group.rule, group.kind, group.namespace, group.name)
        self.fixed.append(Fixed(group.rule, _subject(group), what, key))

    def refuse(self, group: FindingGroup, reason: str) -> None:
        self.cannot.append(CannotFix(group.rule, _subject(group), reason))

    def renamed(self, namespace: str | None, name: str) -> str:
        return self.renames.get((namespace, name), self.renames.get((None, name), name))

    def name_matches_policy(self, app: str, name: str) -> bool:
        """Whether `name` matches the policy's PVC name pattern for `app`."""
        return bool(self.strategy.policy.pvc_naming.name_regex(app).match(name))

    def show(self, path: Path) -> str:
        return self.workspace.display(path)

    def edit_doc(self, file: Path, kind: str, name: str) -> tuple[YamlFile, CommentedMap]:
        """The editable ruamel document of kind/name in `file` (raises InputError if absent)."""
        yfile = self.workspace.load(file)
        for i, doc in enumerate(yfile.documents):
            data = doc.data
            if isinstance(data, dict) and data.get("kind") == kind:
                meta = data.get("metadata")
                if isinstance(meta, dict) and meta.get("name") == name:
                    edited = yfile.editable(i)
                    assert isinstance(edited, CommentedMap)
                    return yfile, edited
        for data in yfile.new_documents:  # created by this run (a claim beside its old one)
            meta = data.get("metadata") if isinstance(data, dict) else None
            if data.get("kind") == kind and isinstance(meta, dict) and meta.get("name") == name:
                assert isinstance(data, CommentedMap)
                return yfile, data
        raise InputError(f"{self.show(file)}: {kind} {name} not found")

    def edit_first(self, file: Path) -> CommentedMap:
        """The first mapping document of a file (a kustomization), editable."""
        yfile = self.workspace.load(file)
        for i, doc in enumerate(yfile.documents):
            if isinstance(doc.data, dict):
                edited = yfile.editable(i)
                assert isinstance(edited, CommentedMap)
                return edited
        raise InputError(f"{self.show(file)}: no YAML mapping to edit")


def _subject(group: FindingGroup) -> str:
    ns = f"{group.namespace}/" if group.namespace else ""
    envs = ", ".join(sorted(e for e in group.environments if e))
    return f"{group.kind} {ns}{group.name}" + (f" ({envs})" if envs else "")


def seq(items: list[Any] | None = None) -> CommentedSeq:
    result = CommentedSeq()
    result.extend(items or [])
    return result


def to_ruamel(value: Any) -> Any:
    """Plain dicts/lists → ruamel containers (block style; ambiguous strings double-quoted)."""
    from statekeeper.generate.yamlout import to_block

    return to_block(value)


def replace_token(text: str, old: str, new: str) -> str:
    """Replace `old` where it is a whole Kubernetes name (not part of a longer one)."""
    return re.sub(rf"(?<![\w.-]){re.escape(old)}(?![\w.-])", new, text)


Fixer = Callable[[FixContext, FindingGroup], None]
