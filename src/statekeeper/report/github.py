"""`--format github`: GitHub Actions workflow commands, one annotation per rule, file and line.

    ::error file=base/mealie/pvc.yaml,line=8,title=SK101 storage-class-for-environment::<message>

Severity error → `::error`, warning → `::warning`, info → `::notice`. Paths are relative to the
repository root (the workspace GitHub checks out); messages escape `%`, CR and LF, properties
also `:` and `,`, as GitHub's workflow-command syntax requires.
"""

from __future__ import annotations

from statekeeper.findings import Report, Severity
from statekeeper.report import ReportContext
from statekeeper.report.locations import display_path
from statekeeper.report.summary import environments_of, group_by_location, sorted_findings

_COMMANDS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(report: Report, context: ReportContext) -> str:
    """One workflow command per line; empty when there is nothing to report."""
    lines = []
    for group in group_by_location(sorted_findings(report.findings)):
        f = group[0]
        severity = max((g.severity for g in group), key=lambda s: s.rank)
        props = []
        path = display_path(f.file, context.srcroot, context.cwd)
        if path:
            props.append(f"file={escape_property(path)}")
            props.append(f"line={max(1, f.line or 1)}")
        props.append(f"title={escape_property(f'{f.rule} {f.slug}')}")
        messages = list(dict.fromkeys(g.message for g in group))
        envs = ", ".join(environments_of(group))
        text = f"{' / '.join(messages)} ({envs})\nFix: {f.remediation}"
        lines.append(f"::{_COMMANDS[severity]} {','.join(props)}::{escape_data(text)}")
    return "".join(line + "\n" for line in lines)
