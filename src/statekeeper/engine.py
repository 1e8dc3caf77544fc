"""The engine every front door shares: inventory + policy -> rules -> Report.

Rules yield violations (`rules.base.Violation`); the engine makes each one a finding (or, for a
rule that joins them, each run about one subject): it adds rule, severity (the policy's override
wins), remediation, app, environment, file and the line of the violation's field, looked up only
for the findings reported (each file re-read at most once).

Suppressions (`statekeeper.io/ignore: "SK103: <reason>"` on the object a finding is about, or
on its pod template) are applied here, never in reporters; an ignore without a reason is not
honoured and is itself a finding (SK001).
"""

from __future__ import annotations

import dataclasses
import gc
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from typing import BinaryIO

from statekeeper.findings import Finding, Note, Report, Severity, Suppressed
from statekeeper.inventory.build import build_inventory
from statekeeper.inventory.detect import ANNOTATION_IGNORE
from statekeeper.inventory.model import FieldPath, Inventory
from statekeeper.manifests.lines import field_line, patch_location
from statekeeper.manifests.resource import Resource
from statekeeper.policy.model import Policy
from statekeeper.rules.annotations import IgnoreEntry, parse_ignore, subject_annotations
from statekeeper.rules.base import Rule, Subject, Violation, all_rules, select_rules

_CLUSTER_SCOPED_FINDING_KINDS = frozenset({"Namespace", "StorageClass", "PersistentVolume"})
_UNSUPPRESSIBLE = frozenset({"SK001"})


def enabled_rules(policy: Policy, only: Collection[str] | None = None) -> list[Rule]:
    """The rules `only` names (ids or slugs, see `select_rules`: an unknown one is an
    InputError; None = every rule, an empty collection = none) that the policy's `rules:`
    settings leave enabled."""
    if only is not None and not any(key.strip() for key in only):
        return []
    return [rule for rule in select_rules(only) if policy.rule_settings(rule.id, rule.slug).enabled]


def evaluate(
    inventory: Inventory, policy: Policy, *, only: Collection[str] | None = None
) -> Report:
    """Run the rules over the inventory; apply severity overrides and suppressions.

    `Report.apps` maps every app seen (workloads, claims, findings) to the environments it was
    seen in; an app whose environment is unknown maps to an empty set (findings about it have
    `environment=None`). Findings are sorted by app, environment, rule, namespace, name.
    """
    report = Report(notes=list(inventory.notes), resources=len(inventory.resources))
    rules = all_rules()
    known = {r.id for r in rules} | {r.slug for r in rules}
    ignores = _IgnoreIndex(inventory, known)
    kept: list[_Located] = []
    silenced: list[_Located] = []
    reasons: list[str] = []
    for rule in enabled_rules(policy, only):
        override = policy.rule_settings(rule.id, rule.slug).severity
        for group in _groups(rule, rule.check(inventory, policy)):
            finding = _finding(rule, group, inventory)
            if override is not None:
                finding = dataclasses.replace(finding, severity=Severity(override))
            where = (finding, _document(group[0].subject), _first_path(group))
            reason = None if rule.id in _UNSUPPRESSIBLE else ignores.reason(finding)
            if reason is None:
                kept.append(where)
            else:
                silenced.append(where)
                reasons.append(reason)
    located = resolve_lines([*kept, *silenced])
    # Two roots of one environment that render the same base (or a root and a raw copy) find
    # the same thing at the same line: reported once.
    report.findings = list(dict.fromkeys(located[: len(kept)]))
    report.suppressed = list(
        dict.fromkeys(Suppressed(f, r) for f, r in zip(located[len(kept) :], reasons, strict=True))
    )
    report.notes.extend(ignores.notes)
    report.findings.sort(key=_order)
    report.suppressed.sort(key=lambda s: _order(s.finding))
    for name, app in inventory.apps.items():
        report.apps.setdefault(name, set()).update(app.environments)
    for finding in [*report.findings, *(s.finding for s in report.suppressed)]:
        if finding.app:
            envs = report.apps.setdefault(finding.app, set())
            if finding.environment:
                envs.add(finding.environment)
    return report


# A finding, the document its subject is in, and the field its line is looked up by.
_Located = tuple[Finding, Resource | None, FieldPath | None]


def _groups(rule: Rule, violations: Iterable[Violation]) -> Iterator[list[Violation]]:
    """The violations that make one finding each: every violation alone, or, for a rule that
    joins them, each run of consecutive violations about the same subject with the same topic."""
    group: list[Violation] = []
    for violation in violations:
        if group and not (
            rule.joins_violations
            and violation.subject is group[0].subject
            and violation.topic == group[0].topic
        ):
            yield group
            group = []
        group.append(violation)
    if group:
        yield group


def _finding(rule: Rule, group: list[Violation], inventory: Inventory) -> Finding:
    """The finding of one violation, or of a joined run (messages in order after the topic,
    the most severe of their severities)."""
    first = group[0]
    message = "; ".join(v.message for v in group)
    if first.topic:
        message = f"{first.topic}: {message}"
    severity = max((v.severity or rule.severity for v in group), key=lambda s: s.rank)
    subject = first.subject
    if isinstance(subject, Subject):  # its own app and environment, None included
        app, environment = subject.app, subject.environment
    else:
        app, environment = inventory.app(subject), inventory.environment(subject)
    return Finding(
        rule=rule.id,
        slug=rule.slug,
        severity=severity,
        message=message,
        remediation=rule.remediation,
        kind=subject.kind,
        name=subject.name,
        namespace=subject.namespace,
        app=app,
        environment=environment,
        file=subject.origin.file,
        line=subject.origin.line,
    )


def _document(subject: Resource | Subject) -> Resource | None:
    """The document a violation's path is looked up in (None: no document holds the subject)."""
    if isinstance(subject, Subject):
        return subject.at if isinstance(subject.at, Resource) else None
    return subject


def _first_path(group: list[Violation]) -> FieldPath | None:
    return next((v.path for v in group if v.path is not None), None)


def resolve_lines(findings: list[_Located]) -> list[Finding]:
    """Findings with the exact line of their field, visiting files in order so each file is
    re-read at most once (the loader's line cache holds a few files)."""
    order = sorted(range(len(findings)), key=lambda i: findings[i][0].file or "")
    result: list[Finding] = [finding for finding, _, _ in findings]
    for index in order:
        finding, resource, path = findings[index]
        if resource is None or path is None:
            continue
        patched = _patch_location(resource, path)
        if patched is not None and patched != (finding.file, finding.line):
            result[index] = dataclasses.replace(finding, file=patched[0], line=patched[1])
            continue
        line = _field_line(resource, path)
        if line != finding.line:
            result[index] = dataclasses.replace(finding, line=line)
    return result


def _field_line(resource: Resource, path: FieldPath) -> int:
    """The line of `path` in the resource's file, else the document's first line."""
    try:
        line = field_line(resource, path)
    except Exception:  # a locator problem must never hide a finding
        line = None
    return line or resource.origin.line


def _patch_location(resource: Resource, path: FieldPath) -> tuple[str, int] | None:
    """(file, line) of the kustomize patch that set `path` in a rendered resource, if one did."""
    if not resource.origin.patched_in:
        return None
    try:
        return patch_location(resource, path)
    except Exception:  # a locator problem must never hide a finding
        return None


def _order(finding: Finding) -> tuple[str, str, str, str, str, str]:
    return (
        finding.app or "~",
        finding.environment or "~",
        finding.rule,
        finding.namespace or "",
        finding.name,
        finding.message,
    )


class _IgnoreIndex:
    """Parsed ignore annotations per (kind, namespace, name, environment), built lazily."""

    def __init__(self, inventory: Inventory, known: set[str]) -> None:
        self.inventory = inventory
        self.known = known
        self.notes: list[Note] = []
        self._parsed: dict[Resource, list[IgnoreEntry]] = {}
        self._warned: set[tuple[Resource, str]] = set()

    def reason(self, finding: Finding) -> str | None:
        """The reason of an ignore entry matching the finding, if the subject has one."""
        namespace = "" if finding.kind in _CLUSTER_SCOPED_FINDING_KINDS else finding.namespace
        subjects = self.inventory.by_key.get((finding.kind, namespace or "", finding.name), [])
        for resource in subjects:
            if self.inventory.environment(resource) != finding.environment and len(subjects) > 1:
                continue
            for entry in self._entries(resource):
                if entry.reason and entry.rule in (finding.rule, finding.slug):
                    return entry.reason
        return None

    def _entries(self, resource: Resource) -> list[IgnoreEntry]:
        if resource not in self._parsed:
            value = subject_annotations(resource).get(ANNOTATION_IGNORE)
            entries = parse_ignore(value)[0] if value else []
            self._parsed[resource] = entries
            for entry in entries:
                if entry.rule not in self.known and (resource, entry.rule) not in self._warned:
                    self._warned.add((resource, entry.rule))
                    self.notes.append(
                        Note(
                            f"{ANNOTATION_IGNORE} on {resource.kind} {resource.name} names "
                            f"unknown rule {entry.rule!r}",
                            resource.origin.file,
                            resource.origin.line,
                        )
                    )
        return self._parsed[resource]


def run_audit(
    paths: Sequence[str],
    *,
    policy: Policy,
    env: str | None = None,
    render: bool = True,
    stdin: BinaryIO | None = None,
    only: Collection[str] | None = None,
    strict_inputs: bool = False,
    quiet: bool = False,
    exclude: Callable[[str], bool] | None = None,
    helm_repo_config: str | None = None,
    on_inventory: Callable[[Inventory], None] | None = None,
) -> Report:
    """Load the sources (files, dirs, `-`, kustomization roots), build the inventory, evaluate.

    Inputs that cannot be read or rendered become findings (SK002/SK003); `strict_inputs`
    makes the first of them an InputError instead. `quiet` hides the rendering progress bar.
    `exclude(file)` true drops what was read from that file (objects, notes, input problems)
    before anything judges it (a config file's `exclude` globs). `helm_repo_config` is the
    helm repositories.yaml charts are fetched with (default: helm's own). `on_inventory` is
    shown the inventory before it is evaluated (`fix` reads the databases it detected)."""
    from statekeeper.manifests.helmoptions import HelmOptions
    from statekeeper.manifests.load import load_sources

    # The audit allocates many long-lived containers and frees nothing until it ends: the cyclic
    # collector would only re-scan them (measured: ~20 % of a 10 000-document run).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        loaded = load_sources(
            paths,
            render=render,
            env=env,
            overlay_envs=policy.overlay_environments(),
            env_paths=policy.environment_paths(),
            stdin=stdin,
            strict=strict_inputs,
            quiet=quiet,
            # Without rendering, app-template values are still interpreted (no helm runs).
            helm=HelmOptions(render=render, repository_config=helm_repo_config),
        )
        if exclude is not None:
            loaded.resources = [r for r in loaded.resources if not exclude(r.origin.file)]
            loaded.other = [r for r in loaded.other if not exclude(r.origin.file)]
            loaded.notes = [n for n in loaded.notes if not (n.file and exclude(n.file))]
            loaded.problems = [p for p in loaded.problems if not exclude(p.file)]
        inventory = build_inventory(loaded.resources, loaded.other, policy, env=env)
        inventory.input_problems = list(loaded.problems)
        if on_inventory is not None:
            on_inventory(inventory)
        report = evaluate(inventory, policy, only=only)
    finally:
        if gc_was_enabled:
            gc.enable()
    report.notes = [*loaded.notes, *report.notes]
    report.sources = list(loaded.sources)
    report.resources = len(loaded.resources)
    return report
