"""SK001 ignore-needs-reason: An exemption must give its reason.

The rule's docs page is docs/rules/SK001-ignore-needs-reason.md, its test cases
tests/rules/cases/SK001.yaml.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from statekeeper.findings import Severity
from statekeeper.inventory.annotations import (
    ANNOTATION_BACKUP,
    ANNOTATION_IGNORE,
    subject_annotations,
)
from statekeeper.inventory.model import Inventory
from statekeeper.policy.model import Policy
from statekeeper.rules.annotations import parse_ignore
from statekeeper.rules.base import NotFixable, Rule, Violation, register


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
