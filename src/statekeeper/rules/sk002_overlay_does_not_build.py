"""SK002 overlay-does-not-build: Every kustomization root builds.

The rule's docs page is docs/rules/SK002-overlay-does-not-build.md, its test cases
tests/rules/cases/SK002.yaml.
"""

from __future__ import annotations

from collections.abc import Iterable

from statekeeper.findings import Severity
from statekeeper.inventory.model import Inventory
from statekeeper.policy.model import Policy
from statekeeper.rules.base import NotFixable, Rule, Violation, register
from statekeeper.rules.inputs import input_subject


@register
class OverlayDoesNotBuild(Rule):
    id = "SK002"
    slug = "overlay-does-not-build"
    severity = Severity.ERROR
    title = "Every kustomization root builds"
    rationale = (
        "What a kustomization root deploys is only known once kustomize has built it; a root "
        "that does not build cannot be audited, and its storage and backups are unknown. The "
        "audit keeps going with everything else and reports the root here, with kustomize's "
        "own error, instead of stopping or silently skipping it."
    )
    remediation = (
        "Run `kubectl kustomize <dir>` and fix the error it prints (a missing file, an unknown "
        "field, a stale overlay), or delete the overlay if nothing deploys it. A root that "
        "only fails because a remote base cannot be fetched is a warning: audit where the "
        "network is reachable, or vendor the base."
    )
    bad_example = """\
# overlays/staging/kustomization.yaml
resources: [../../base, missing.yaml]
"""
    good_example = """\
# overlays/staging/kustomization.yaml
resources: [../../base]
"""
    details = (
        "A root is a folder holding a kustomization file that no other kustomization of the "
        "audited tree references. The finding is on the root's kustomization file; its files "
        "are not judged. Severity is warning when the build failed fetching a remote base "
        "(`github.com/...` in `resources:`). `--strict-inputs` stops the audit at the first "
        "such root instead (exit 2)."
    )

    fix = NotFixable(
        "only you know how the root should build: run `kubectl kustomize` on it and fix the "
        "error it prints, or remove the stale overlay"
    )

    def check(self, inventory: Inventory, policy: Policy) -> Iterable[Violation]:
        for problem in inventory.input_problems:
            if problem.kind != "build":
                continue
            directory = problem.file.rsplit("/", 1)[0] if "/" in problem.file else "."
            yield Violation(
                input_subject(problem, "Kustomization", directory),
                problem.reason,
                severity=Severity.WARNING if problem.remote else None,
            )
