"""SK003 unreadable-manifest: Every manifest can be read.

The rule's docs page is docs/rules/SK003-unreadable-manifest.md, its test cases
tests/rules/cases/SK003.yaml.
"""

from __future__ import annotations

from collections.abc import Iterable

from statekeeper.findings import Severity
from statekeeper.inventory.model import Inventory
from statekeeper.policy.model import Policy
from statekeeper.rules.base import NotFixable, Rule, Violation, register
from statekeeper.rules.inputs import input_subject


@register
class UnreadableManifest(Rule):
    id = "SK003"
    slug = "unreadable-manifest"
    severity = Severity.ERROR
    title = "Every manifest can be read"
    rationale = (
        "A manifest that cannot be read cannot be audited: whatever it deploys is unknown to "
        "the audit. The audit keeps going with every other file and reports this one here."
    )
    remediation = (
        "Fix the file at the line given (invalid YAML, wrong encoding), or remove it from the "
        "repository if it is not a manifest (binary files, symlink loops, huge generated "
        "files, documents with excessive aliasing or nesting are refused on purpose)."
    )
    bad_example = """\
apiVersion: v1
kind: ConfigMap
data: {a: [1, 2}
"""
    good_example = """\
apiVersion: v1
kind: ConfigMap
data: {a: [1, 2]}
"""
    details = (
        "Files below a directory argument: invalid YAML in a file that names `apiVersion` and "
        "`kind`, text that is not UTF-8, binary files, aliases expanding to more than 100 000 "
        "nodes, nesting deeper than 1000 levels, files over 16 MiB, symlink loops, broken "
        "links and unreadable files. Invalid YAML that is not a Kubernetes manifest (no "
        "`apiVersion`/`kind`) or that is a Helm template is skipped with a note instead. A file "
        "named on the command line that cannot be read, and `--strict-inputs`, end the audit "
        "with exit 2."
    )

    fix = NotFixable("the file cannot be read: fix it at the line given, or remove it")

    def check(self, inventory: Inventory, policy: Policy) -> Iterable[Violation]:
        for problem in inventory.input_problems:
            if problem.kind != "read":
                continue
            reason = problem.reason
            if problem.column is not None and "column" not in reason:
                reason = f"{reason} (column {problem.column})"
            yield Violation(input_subject(problem, "File", problem.file), reason)
