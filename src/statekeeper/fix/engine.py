"""`statekeeper fix`: audit → group findings → fixers edit a workspace → verify → write.

The audit is the same engine `statekeeper audit` runs, so `fix` repairs exactly what the audit
reports. Each rule declares its fixer (`fix = FixedBy("statekeeper.fix.<module>:<function>",
step=..., batch=...)`) or why it has none (`fix = NotFixable(reason)`); `families()` groups the
rules by fixer and orders the fixers by step: renames (SK103) first, so the StorageClass patches
(SK101, SK106) target the new names; then the claims' values, the backup tiers (SK2xx, SK301),
the rollout strategy of Deployments on ReadWriteOnce claims (SK107, after the agent wiring,
which may set it already) and Velero (SK401).

`fix_tree` then verifies the plan by rendering (`verify`): the edits are applied to a scratch
copy, the copy is audited again, and the groups whose edit did not remove their finding or
introduced a new one are refused and the plan made again without them, until it is clean.
"""

from __future__ import annotations

import importlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from statekeeper.errors import InputError
from statekeeper.findings import Finding
from statekeeper.fix.audit import ClaimSizes, Detected
from statekeeper.fix.context import CannotFix, FindingGroup, FixContext, Fixed, Style
from statekeeper.fix.sources import SourceIndex
from statekeeper.fix.verify import Audit, GroupKey, group_key, judge, scratch_copy
from statekeeper.fix.workspace import ChangedOnDisk, Workspace
from statekeeper.generate.strategy import Strategy
from statekeeper.rules.base import FixBatch, FixedBy, NotFixable, Rule, all_rules, select_rules


def _guarded(
    ctx: FixContext,
    groups: list[FindingGroup],
    fixer: Callable[[FixContext, list[FindingGroup]], None],
) -> None:
    """Run one fixer on its groups; if it meets a file it must not edit, undo its edits and list
    the groups as not fixable with the reason. Other fixes go ahead."""
    refused = [g for g in groups if group_key(g) in ctx.refused]
    for group in refused:
        ctx.refuse(group, ctx.refused[group_key(group)])
    groups = [g for g in groups if group_key(g) not in ctx.refused]
    if not groups:
        return
    checkpoint = ctx.workspace.checkpoint()
    fixed, notes, cannot = len(ctx.fixed), len(ctx.notes), len(ctx.cannot)
    renames = dict(ctx.renames)
    ctx.workspace.touched.clear()
    try:
        fixer(ctx, groups)
        for path in ctx.workspace.touched:
            if path in ctx.workspace.files:
                ctx.workspace.files[path].render()  # an edit that cannot be spliced: refuse now
        for group in groups:
            ctx.touched.setdefault(group_key(group), set()).update(ctx.workspace.touched)
    except ChangedOnDisk:
        raise  # the audit's findings may be stale: stop the whole run, write nothing
    except InputError as exc:
        ctx.workspace.rollback(checkpoint)
        del ctx.fixed[fixed:]
        del ctx.notes[notes:]
        del ctx.cannot[cannot:]
        ctx.renames = renames
        for group in groups:
            ctx.refuse(group, str(exc))


def _each(
    fixer: Callable[[FixContext, FindingGroup], None],
) -> Callable[[FixContext, list[FindingGroup]], None]:
    def run(ctx: FixContext, groups: list[FindingGroup]) -> None:
        for group in groups:
            _guarded(ctx, [group], lambda c, g: fixer(c, g[0]))

    return run


def _per_workload(
    fixer: Callable[[FixContext, list[FindingGroup]], None],
) -> Callable[[FixContext, list[FindingGroup]], None]:
    def run(ctx: FixContext, groups: list[FindingGroup]) -> None:
        by_workload: dict[tuple[str, str | None, str], list[FindingGroup]] = defaultdict(list)
        for group in groups:
            by_workload[(group.kind, group.namespace, group.name)].append(group)
        for key in sorted(by_workload, key=str):
            _guarded(ctx, by_workload[key], fixer)

    return run


def _all_at_once(
    fixer: Callable[[FixContext, list[FindingGroup]], None],
) -> Callable[[FixContext, list[FindingGroup]], None]:
    return lambda ctx, groups: _guarded(ctx, groups, fixer)


_BATCHES: dict[FixBatch, Callable[[Any], Callable[[FixContext, list[FindingGroup]], None]]] = {
    "each": _each,
    "per_workload": _per_workload,
    "all_at_once": _all_at_once,
}


@dataclass(frozen=True, slots=True)
class Family:
    """The rules one fixer repairs, as the rules declare it (`Rule.fix = FixedBy(...)`)."""

    fixer: FixedBy
    rules: tuple[str, ...]

    def resolve(self) -> Callable[..., None]:
        """The fixer's function, imported by name."""
        function = getattr(importlib.import_module(self.fixer.module), self.fixer.function, None)
        if not callable(function):
            raise TypeError(f"{self.rules}: FixedBy({self.fixer.target!r}) names no function")
        return cast("Callable[..., None]", function)

    def run(self, ctx: FixContext, groups: list[FindingGroup]) -> None:
        _BATCHES[self.fixer.batch](self.resolve())(ctx, groups)


def families(rules: Iterable[Rule] | None = None) -> list[Family]:
    """The fixers in the order they run (`FixedBy.step`), each with the rules it repairs. Rules
    sharing a fixer must declare the same step and batch."""
    by_target: dict[str, list[tuple[FixedBy, str]]] = defaultdict(list)
    for rule in all_rules() if rules is None else rules:
        if isinstance(rule.fix, FixedBy):
            by_target[rule.fix.target].append((rule.fix, rule.id))
    found = []
    for target, declared in by_target.items():
        fixers = {fixer for fixer, _ in declared}
        if len(fixers) > 1:
            raise ValueError(f"{target}: its rules declare different steps or batches: {fixers}")
        found.append(Family(declared[0][0], tuple(rule_id for _, rule_id in declared)))
    return sorted(found, key=lambda family: (family.fixer.step, family.fixer.target))


def not_fixable(rules: Iterable[Rule] | None = None) -> dict[str, str]:
    """Rule id -> why `statekeeper fix` does not repair it (`Rule.fix = NotFixable(...)`)."""
    return {
        rule.id: rule.fix.reason
        for rule in (all_rules() if rules is None else rules)
        if isinstance(rule.fix, NotFixable)
    }


_FAMILIES = families()
# The rules with a fixer, in the order their fixers run, and why the others are not fixed.
FIXABLE: tuple[str, ...] = tuple(rule for family in _FAMILIES for rule in family.rules)
NOT_FIXABLE: dict[str, str] = not_fixable()


@dataclass(slots=True)
class FixResult:
    """What a fix run changed (in `workspace`, not yet written) and what it could not."""

    workspace: Workspace
    fixed: list[Fixed] = field(default_factory=list)
    cannot: list[CannotFix] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    groups: list[FindingGroup] = field(default_factory=list)
    touched: dict[GroupKey, set[Path]] = field(default_factory=dict)
    renames: dict[tuple[str | None, str], str] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.workspace.changes())


def group_findings(findings: Iterable[Finding]) -> list[FindingGroup]:
    """One group per (rule, object), environments merged, in a stable order."""
    grouped: dict[tuple[str, str, str | None, str], list[Finding]] = defaultdict(list)
    for finding in findings:
        grouped[(finding.rule, finding.kind, finding.namespace, finding.name)].append(finding)
    groups = []
    for (rule, kind, namespace, name), items in sorted(grouped.items(), key=str):
        envs = tuple(dict.fromkeys(f.environment for f in items))
        groups.append(FindingGroup(rule, kind, namespace, name, envs, tuple(items)))
    return groups


def plan_fixes(
    root: Path,
    findings: Sequence[Finding],
    strategy: Strategy,
    *,
    rules: Sequence[str] | None = None,
    style: Style = "agent",
    detected: Detected | None = None,
    claim_sizes: ClaimSizes | None = None,
    audited: dict[Path, str] | None = None,
    refused: dict[GroupKey, str] | None = None,
    cluster_dir: Path = Path("cluster"),
) -> FixResult:
    """Edit, in memory, the files below `root` so the given findings go away. `audited` holds the
    files' SHA-256 as the audit read them (`workspace.fingerprint`): a file edited since then is
    not touched (ChangedOnDisk). Groups in `refused` are listed as not fixable with its reason."""
    root = root.resolve()
    wanted = {r.id for r in select_rules(rules, fixable=True)} if rules else None
    ctx = FixContext(
        root=root,
        index=SourceIndex.build(root, strategy),
        workspace=Workspace(root=root if root.is_dir() else root.parent, audited=audited or {}),
        strategy=strategy,
        style=style,
        detected=dict(detected or {}),
        claim_sizes=dict(claim_sizes or {}),
        refused=dict(refused or {}),
        cluster_dir=cluster_dir,
    )
    for finding in findings:
        key = (finding.kind, finding.namespace, finding.name)
        ctx.reported.setdefault(key, set()).add(finding.rule)
    groups = []
    for group in group_findings(f for f in findings if wanted is None or f.rule in wanted):
        helm_file = _rendered_from_helm(ctx.index, group)
        if helm_file is None:
            groups.append(group)
        else:
            ctx.refuse(
                group,
                f"cannot fix: value comes from the chart ({group.kind} {group.name} is rendered "
                f"from the Helm release in {helm_file}; change its values there)",
            )
    for family in _FAMILIES:
        mine = [g for g in groups if g.rule in family.rules]
        if mine:
            family.run(ctx, mine)
    for group in groups:
        if group.rule not in FIXABLE:
            ctx.refuse(group, NOT_FIXABLE.get(group.rule, "no automatic fix for this rule"))
    return FixResult(
        workspace=ctx.workspace,
        fixed=ctx.fixed,
        cannot=ctx.cannot,
        notes=list(dict.fromkeys(ctx.notes)),
        groups=groups,
        touched=ctx.touched,
        renames=ctx.renames,
    )


_HELM_KINDS = frozenset({"HelmRelease", "Application"})
_CHART_OBJECTS = frozenset(
    {"Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job", "Pod", "PersistentVolumeClaim"}
)


def _rendered_from_helm(index: SourceIndex, group: FindingGroup) -> str | None:
    """The file of the HelmRelease (or Argo CD Application, or the values file of a chart
    folder) a finding's object was rendered or interpreted from: the object itself is written
    nowhere, its values are."""
    if group.kind not in _CHART_OBJECTS:
        return None  # e.g. SK401 names a namespace, whichever file it was seen in
    for finding in group.findings:
        if finding.file is None:
            return None
        path = Path(finding.file).resolve()
        docs = index.docs.get(path, [])
        declares = any(d.kind == group.kind and d.name == group.name for d in docs)
        chart_values = (path.parent / "Chart.yaml").is_file()
        if declares or not (chart_values or any(d.kind in _HELM_KINDS for d in docs)):
            return None
    return group.findings[0].file


# Rounds of plan → verify before fix gives up on every edit left (each round refuses at least
# one group, and later groups often only failed because of an earlier one).
MAX_ROUNDS = 4


def fix_tree(
    root: Path,
    findings: Sequence[Finding],
    strategy: Strategy,
    audit: Audit,
    *,
    rules: Sequence[str] | None = None,
    style: Style = "agent",
    detected: Detected | None = None,
    claim_sizes: ClaimSizes | None = None,
    audited: dict[Path, str] | None = None,
    cluster_dir: Path = Path("cluster"),
) -> FixResult:
    """`plan_fixes`, verified by rendering: the result holds only edits that, applied to a
    scratch copy and audited again with `audit`, remove their finding and add none."""
    refused: dict[GroupKey, str] = {}

    def plan() -> FixResult:
        return plan_fixes(
            root,
            findings,
            strategy,
            rules=rules,
            style=style,
            detected=detected,
            claim_sizes=claim_sizes,
            audited=audited,
            refused=refused,
            cluster_dir=cluster_dir,
        )

    for _round in range(MAX_ROUNDS):
        result = plan()
        changes = result.workspace.changes()
        if not changes:
            # Claimed fixes that change no byte are not fixes: the finding would stay.
            for item in result.fixed:
                if item.key is not None:
                    refused[item.key] = (
                        "the edit would change nothing, and the audit still reports it"
                    )
            return plan() if result.fixed else result
        with scratch_copy(root, changes) as paths:
            after = audit(paths)
            verdicts = judge(
                before=findings,
                after=after,
                groups=result.groups,
                fixed=result.fixed,
                touched=result.touched,
                renames=result.renames,
                root=root,
                scratch=paths[0] if paths[0].is_dir() else paths[0].parent,
            )
        if not verdicts:
            return result
        for verdict in verdicts:
            refused[verdict.key] = verdict.reason
    # Still not clean: refuse every edit left rather than write one that was not verified.
    for item in plan().fixed:
        if item.key is not None:
            refused.setdefault(item.key, "its edit could not be verified by rendering")
    return plan()
