"""SK002/SK003: what could not be judged is a finding, so an audit never passes by not looking.

The loader keeps going past a kustomization root that does not build or a file that cannot be
read (`Inventory.input_problems`); these rules report them, in every format, suppressible by the
policy's `rules:` settings like any rule.
"""

from __future__ import annotations

from collections.abc import Iterable

from statekeeper.findings import Severity
from statekeeper.inventory.model import Inventory
from statekeeper.manifests.resource import InputProblem, Origin
from statekeeper.policy.model import Policy
from statekeeper.rules.base import NotFixable, Rule, Subject, Violation, register


def _subject(problem: InputProblem, kind: str, name: str) -> Subject:
    """What a finding about an input is about: the kustomization or the file itself, of no
    app, in the environment the input was read for (if known)."""
    origin = Origin(problem.file, 0, problem.line or 1)
    return Subject(kind, name, origin, environment=problem.environment or None)


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
                _subject(problem, "Kustomization", directory),
                problem.reason,
                severity=Severity.WARNING if problem.remote else None,
            )


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
            yield Violation(_subject(problem, "File", problem.file), reason)
