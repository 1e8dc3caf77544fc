"""What every reporter shows the same way: finding order, counts and compliance scores.

The compliance score of an app in an environment is

    score = max(0, 100 − 10 × errors − 3 × warnings − 1 × info)

counting that app's unsuppressed findings in that environment. An environment's score is the
mean of the scores of its apps (rounded to an integer), cluster-wide objects included as the
pseudo-app `(cluster)`. A score is a reading aid, not a gate: the exit code depends on `--fail-on`
only. Why weights, not "share of checks passed": a check count depends on how rules split their
work, a weighted count does not, and one missing backup tier weighs the same in a small app as in
a big one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from statekeeper.findings import Finding, Note, Report, Severity

# Severity → points taken off an app's score of 100.
SEVERITY_WEIGHTS: dict[Severity, int] = {Severity.ERROR: 10, Severity.WARNING: 3, Severity.INFO: 1}
# Group of findings about objects that belong to no app (StorageClasses, Velero, namespaces).
CLUSTER_GROUP = "(cluster)"
# Group of findings about an app's kind of object (a claim, a workload) whose app is unknown:
# "(cluster)" would wrongly call a stray PVC cluster-wide.
NO_APP_GROUP = "(no app)"
APP_SCOPED_KINDS = frozenset(
    {"PersistentVolumeClaim", "Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job", "Pod"}
)
# Environment label of findings whose environment is unknown (a note says why).
UNKNOWN_ENV = "(unknown)"
# Severities from most to least severe: the order of every listing.
SEVERITIES_DESC: tuple[Severity, ...] = (Severity.ERROR, Severity.WARNING, Severity.INFO)


def app_of(finding: Finding) -> str:
    """The group a finding is shown under."""
    if finding.app:
        return finding.app
    return NO_APP_GROUP if finding.kind in APP_SCOPED_KINDS else CLUSTER_GROUP


def env_of(finding: Finding) -> str:
    return finding.environment or UNKNOWN_ENV


def _group_order(name: str) -> tuple[int, str]:
    # Placeholder groups such as "(cluster)" sort after the real ones.
    return (1 if name.startswith("(") else 0, name)


def finding_sort_key(finding: Finding) -> tuple[object, ...]:
    """Stable order: app, environment, most severe first, rule, object, file, line."""
    return (
        _group_order(app_of(finding)),
        _group_order(env_of(finding)),
        -finding.severity.rank,
        finding.rule,
        finding.kind,
        finding.namespace or "",
        finding.name,
        finding.file or "",
        finding.line or 0,
        finding.message,
    )


def sorted_findings(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=finding_sort_key)


def group_by_location(findings: Iterable[Finding]) -> list[list[Finding]]:
    """Findings of one rule at one file and line (one base manifest judged in several
    environments) as one group, in first-seen order; findings without a file stay alone."""
    groups: dict[tuple[str, str, int], list[Finding]] = {}
    loose: list[list[Finding]] = []
    for f in findings:
        if not f.file:
            loose.append([f])
            continue
        groups.setdefault((f.rule, f.file, f.line or 1), []).append(f)
    return [*groups.values(), *loose]


def environments_of(findings: Iterable[Finding]) -> list[str]:
    """The distinct environments of some findings, sorted, "(unknown)" last."""
    return sorted({env_of(f) for f in findings}, key=_group_order)


def note_sort_key(note: Note) -> tuple[str, int, str]:
    return (note.file or "", note.line or 0, note.message)


def score(counts: dict[Severity, int]) -> int:
    """100 minus the weighted findings, never below 0."""
    lost = sum(SEVERITY_WEIGHTS[sev] * n for sev, n in counts.items())
    return max(0, 100 - lost)


@dataclass(frozen=True, slots=True)
class AppScore:
    """The score of one app in one environment, with the counts it comes from."""

    app: str
    environment: str
    score: int
    errors: int
    warnings: int
    infos: int


@dataclass(frozen=True, slots=True)
class Summary:
    """Counts and scores of one report; every field is deterministic for a given report."""

    total: int
    by_severity: dict[Severity, int]  # all three severities, most severe first
    by_rule: dict[str, int]  # sorted by rule id
    suppressed: int
    notes: int
    resources: int
    apps: list[str]  # sorted, "(cluster)" last
    environments: list[str]  # sorted, "(unknown)" last
    app_scores: list[AppScore]  # sorted by app, then environment
    environment_scores: dict[str, int]  # environment -> mean app score


def summarize(report: Report) -> Summary:
    """Count the report's findings and score every app in every environment it was seen in."""
    findings = report.findings
    by_severity = Counter(f.severity for f in findings)
    per_group: dict[tuple[str, str], Counter[Severity]] = {}
    for app, envs in report.apps.items():
        for env in envs or {UNKNOWN_ENV}:
            per_group.setdefault((app, env or UNKNOWN_ENV), Counter())
    for f in findings:
        per_group.setdefault((app_of(f), env_of(f)), Counter())[f.severity] += 1
    # Every environment has cluster-wide objects: once one is judged, score them everywhere.
    if any(app == CLUSTER_GROUP for app, _ in per_group):
        for env in {env for _, env in per_group if env != UNKNOWN_ENV}:
            per_group.setdefault((CLUSTER_GROUP, env), Counter())

    app_scores = [
        AppScore(
            app=app,
            environment=env,
            score=score(dict(counts)),
            errors=counts[Severity.ERROR],
            warnings=counts[Severity.WARNING],
            infos=counts[Severity.INFO],
        )
        for (app, env), counts in sorted(
            per_group.items(), key=lambda kv: (_group_order(kv[0][0]), _group_order(kv[0][1]))
        )
    ]
    environments = sorted({s.environment for s in app_scores}, key=_group_order)
    environment_scores: dict[str, int] = {}
    for env in environments:
        scores = [s.score for s in app_scores if s.environment == env]
        environment_scores[env] = round(sum(scores) / len(scores))
    return Summary(
        total=len(findings),
        by_severity={sev: by_severity.get(sev, 0) for sev in SEVERITIES_DESC},
        by_rule=dict(sorted(Counter(f.rule for f in findings).items())),
        suppressed=len(report.suppressed),
        notes=len(report.notes),
        resources=report.resources,
        apps=sorted({s.app for s in app_scores}, key=_group_order),
        environments=environments,
        app_scores=app_scores,
        environment_scores=environment_scores,
    )


def plural(n: int, word: str, many: str | None = None) -> str:
    """`1 error`, `2 errors`."""
    return f"{n} {word if n == 1 else (many or word + 's')}"
