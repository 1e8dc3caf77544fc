"""Suppressions (`statekeeper.io/ignore`) and SK001: every exemption needs a reason."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import pairwise

from statekeeper.findings import Severity
from statekeeper.inventory.annotations import ANNOTATION_BACKUP, ANNOTATION_IGNORE
from statekeeper.inventory.annotations import subject_annotations as subject_annotations
from statekeeper.inventory.model import Inventory
from statekeeper.policy.model import Policy
from statekeeper.rules.base import NotFixable, Rule, Violation, register

# An entry starts with a rule id or slug; entries are separated by commas or newlines that are
# followed by the next id/slug and a colon (so reasons may contain commas).
_ENTRY_START = re.compile(
    r"(?:^|[,\n])\s*(?=SK\d{3}\s*(?::|,|$|\n)|[a-z0-9]+(?:-[a-z0-9]+)+\s*:)", re.IGNORECASE
)
_ENTRY = re.compile(
    r"^\s*(?P<rule>SK\d{3}|[a-z0-9]+(?:-[a-z0-9]+)+)\s*(?::\s*(?P<reason>.*))?$",
    re.DOTALL | re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class IgnoreEntry:
    """One `<rule>: <reason>` entry of an ignore annotation (`reason` empty if missing)."""

    rule: str  # id (upper case) or slug, as written
    reason: str


def parse_ignore(value: str) -> tuple[list[IgnoreEntry], list[str]]:
    """Parse an ignore annotation: (entries, unparsable pieces)."""
    entries: list[IgnoreEntry] = []
    bad: list[str] = []
    starts = [m.end() for m in _ENTRY_START.finditer(value)]
    if not starts:
        return [], [value.strip()] if value.strip() else []
    if value[: starts[0]].strip(" ,\n"):
        bad.append(value[: starts[0]].strip(" ,\n"))
    for start, end in pairwise([*starts, len(value)]):
        piece = value[start:end].strip(" ,\n")
        match = _ENTRY.match(piece)
        if match is None:
            bad.append(piece)
            continue
        rule = match.group("rule")
        entries.append(IgnoreEntry(rule.upper() if rule.lower().startswith("sk") else rule,
                                   (match.group("reason") or "").strip()))  # fmt: skip
    return entries, bad


@register
class IgnoreNeedsReason(Rule):
    id = "SK001"
    slug = "ignore-needs-reason"
    severity = Severity.WARNING
    joins_violations = True
    title = "An exemption must give its reason"
    rationale = (
        'The strategy says "All applications with persistent state must implement the '
        'following backup tiers". An exception to it is a decision someone made; without the '
        "reason next to it, nobody can tell a deliberate exception from a forgotten one. Like "
        "kube-linter and Polaris, statekeeper honours an exemption only when it says why."
    )
    remediation = (
        'Write the reason after the rule id: `statekeeper.io/ignore: "SK104: <why>"` or '
        '`statekeeper.io/backup: "none: <why>"`. Until then the exemption is not honoured.'
    )
    bad_example = """\
metadata:
  name: esphome-config-pvc
  annotations:
    statekeeper.io/ignore: SK104
"""
    good_example = """\
metadata:
  name: esphome-config-pvc
  annotations:
    statekeeper.io/ignore: "SK104: PlatformIO toolchains live in /config/.esphome; 5Gi measured"
"""
    details = (
        "Checked on every object's annotations and on pod template annotations: each entry of "
        "`statekeeper.io/ignore` (several entries are separated by commas or newlines, each "
        "`<rule id or slug>: <reason>`) and `statekeeper.io/backup: none`. An exemption without "
        "a reason does not suppress anything. This rule itself cannot be suppressed."
    )

    fix = NotFixable("an ignore annotation needs a reason only a person can give")

    def check(self, inventory: Inventory, policy: Policy) -> Iterable[Violation]:
        for resource in inventory.resources:
            annotations = subject_annotations(resource)
            if ANNOTATION_IGNORE not in annotations and ANNOTATION_BACKUP not in annotations:
                continue
            for problem in self._problems(annotations):
                yield Violation(resource, problem, path=("metadata", "annotations"))

    @staticmethod
    def _problems(annotations: dict[str, str]) -> Iterator[str]:
        if ANNOTATION_IGNORE in annotations:
            entries, bad = parse_ignore(annotations[ANNOTATION_IGNORE])
            missing = [e.rule for e in entries if not e.reason]
            if missing:
                yield (
                    f"{ANNOTATION_IGNORE} exempts {', '.join(missing)} without a reason; "
                    "the exemption is not honoured"
                )
            if bad:
                yield f"{ANNOTATION_IGNORE} entry {bad[0]!r} is not `<rule>: <reason>`"
        backup = annotations.get(ANNOTATION_BACKUP)
        if backup is not None:
            kind, _, reason = backup.partition(":")
            if kind.strip().lower() != "none":
                yield f'{ANNOTATION_BACKUP} must be "none: <reason>", not {backup!r}'
            elif not reason.strip():
                yield f'{ANNOTATION_BACKUP}: "none" without a reason; the workload is still judged'
