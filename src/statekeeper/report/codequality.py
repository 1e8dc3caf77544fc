"""`--format codequality`: GitLab's Code Quality report (a JSON array of issues).

Each finding is one issue: `description`, `check_name` (the rule id), `fingerprint` (stable across
line moves: rule, object, environment and file), `severity` (error → major, warning → minor,
info → info) and `location.path` relative to the repository root with `lines.begin`. GitLab
shows new and fixed issues in merge requests by comparing fingerprints.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from statekeeper.findings import Finding, Report, Severity
from statekeeper.report import ReportContext
from statekeeper.report.locations import display_path
from statekeeper.report.summary import env_of, sorted_findings

_SEVERITIES = {Severity.ERROR: "major", Severity.WARNING: "minor", Severity.INFO: "info"}


def _fingerprint(finding: Finding, path: str) -> str:
    parts = (
        finding.rule,
        finding.kind,
        finding.namespace or "",
        finding.name,
        env_of(finding),
        path,
    )
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _issue(finding: Finding, context: ReportContext) -> dict[str, Any]:
    path = display_path(finding.file, context.srcroot, context.cwd) or "."
    return {
        "type": "issue",
        "description": f"{finding.rule} [{env_of(finding)}] {finding.message}",
        "check_name": finding.rule,
        "categories": ["Bug Risk"],
        "fingerprint": _fingerprint(finding, path),
        "severity": _SEVERITIES[finding.severity],
        "location": {"path": path, "lines": {"begin": max(1, finding.line or 1)}},
    }


def render_codequality(report: Report, context: ReportContext) -> str:
    """The report as a GitLab Code Quality JSON array ending in a newline."""
    issues = [_issue(f, context) for f in sorted_findings(report.findings)]
    return json.dumps(issues, indent=2) + "\n"
