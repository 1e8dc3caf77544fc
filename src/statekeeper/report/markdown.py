"""`--format markdown`: GitHub-flavoured Markdown for job summaries and pull-request comments.

A heading with the counts, one table row per rule, file and line (its environments in one cell;
rule ids link to their pages through the doc-url template), suppressed findings and notes in
collapsed sections, then the compliance score per app and environment.
"""

from __future__ import annotations

from collections.abc import Sequence

from statekeeper.findings import Finding, Report, Severity
from statekeeper.report import ReportContext, doc_url
from statekeeper.report.locations import display_path
from statekeeper.report.summary import (
    environments_of,
    finding_sort_key,
    group_by_location,
    note_sort_key,
    plural,
    sorted_findings,
    summarize,
)


def _cell(text: str) -> str:
    """Table-cell safe: no pipes or line breaks, no HTML."""
    return (
        text.replace("|", "\\|")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("\r", "")
        .replace("\n", "<br>")
    )


def _object(finding: Finding) -> str:
    where = f"{finding.namespace}/" if finding.namespace else ""
    return f"{finding.kind} {where}{finding.name}"


def _where(finding: Finding, context: ReportContext) -> str:
    path = display_path(finding.file, context.srcroot, context.cwd)
    if not path:
        return ""
    return f"`{path}:{finding.line}`" if finding.line else f"`{path}`"


def _rows(groups: Sequence[list[Finding]], context: ReportContext) -> list[str]:
    rows = []
    for group in groups:
        f = group[0]
        severity = max((g.severity for g in group), key=lambda s: s.rank)
        link = f"[{f.rule}]({doc_url(context.doc_url, f.rule, f.slug)})"
        messages = list(dict.fromkeys(g.message for g in group))
        rows.append(
            f"| {severity.value} | {link} {f.slug} | {_cell(_object(f))} | "
            f"{', '.join(environments_of(group))} | {_where(f, context)} | "
            f"{_cell(' / '.join(messages))} |"
        )
    return rows


def render_markdown(report: Report, context: ReportContext) -> str:
    """The report as Markdown ending in a newline."""
    summary = summarize(report)
    counts = ", ".join(
        f"{n} {sev.value if sev is Severity.INFO or n == 1 else sev.value + 's'}"
        for sev, n in summary.by_severity.items()
    )
    lines = [f"## statekeeper audit: {plural(summary.total, 'finding')} ({counts})", ""]
    lines.append(
        f"{plural(summary.resources, 'resource')} audited · {summary.suppressed} suppressed · "
        f"{plural(summary.notes, 'note')}"
    )
    lines.append("")
    if summary.total:
        lines += [
            "| severity | rule | object | environments | location | message |",
            "| --- | --- | --- | --- | --- | --- |",
            *_rows(group_by_location(sorted_findings(report.findings)), context),
            "",
        ]
    elif summary.resources == 0:
        lines += ["**Nothing audited:** no Kubernetes objects found.", ""]
    else:
        lines += ["No findings: every audited object follows the strategy.", ""]
    if report.suppressed:
        lines += [f"<details><summary>{summary.suppressed} suppressed</summary>", ""]
        for item in sorted(report.suppressed, key=lambda s: finding_sort_key(s.finding)):
            f = item.finding
            lines.append(
                f"- {f.rule} {_cell(_object(f))} ({environments_of([f])[0]}): {_cell(item.reason)}"
            )
        lines += ["", "</details>", ""]
    if report.notes:
        lines += [f"<details><summary>{plural(summary.notes, 'note')}</summary>", ""]
        for note in sorted(report.notes, key=note_sort_key):
            where = display_path(note.file, context.srcroot, context.cwd)
            prefix = f"`{where}{':' + str(note.line) if note.line else ''}`: " if where else ""
            lines.append(f"- {prefix}{_cell(note.message)}")
        lines += ["", "</details>", ""]
    if summary.app_scores:
        lines += [
            "| app | " + " | ".join(summary.environments) + " |",
            "| --- |" + " ---: |" * len(summary.environments),
        ]
        cells = {(s.app, s.environment): s.score for s in summary.app_scores}
        for app in summary.apps:
            values = [cells.get((app, env)) for env in summary.environments]
            shown = " | ".join("–" if v is None else str(v) for v in values)
            lines.append(f"| {_cell(app)} | {shown} |")
        lines.append("")
    return "\n".join(lines)
