"""The terminal report (rich): findings grouped by app, then environment, then a summary.

Layout, top to bottom: a one-line header; one section per app with findings (cluster-wide
objects under "(cluster)", last), each finding as severity, rule id and slug, object, file:line,
message and remediation; suppressed findings with their reasons; notes; a summary with counts per
severity and the compliance score of every app in every environment (see
`statekeeper.report.summary` for the formula).

The output is the same text with or without colour: colour only adds styles, so piped output is
plain, stable and readable (tests assert on it).
"""

from __future__ import annotations

import io

from rich import box
from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from statekeeper.findings import Finding, Note, Report, Severity, Suppressed
from statekeeper.report.summary import (
    SEVERITY_WEIGHTS,
    Summary,
    app_of,
    env_of,
    finding_sort_key,
    note_sort_key,
    plural,
    sorted_findings,
    summarize,
)

DEFAULT_WIDTH = 100

_SEVERITY_STYLE: dict[Severity, str] = {
    Severity.ERROR: "bold red",
    Severity.WARNING: "bold yellow",
    Severity.INFO: "bold blue",
}


def _score_style(value: int) -> str:
    if value >= 90:
        return "green"
    if value >= 70:
        return "yellow"
    return "red"


def _object(finding: Finding) -> str:
    where = f"{finding.namespace}/" if finding.namespace else ""
    return f"{finding.kind} {where}{finding.name}"


def _location(file: str | None, line: int | None) -> str:
    if not file:
        return ""
    return f"{file}:{line}" if line else file


def _finding_row(finding: Finding, fix_shown: bool) -> tuple[Text, Text]:
    severity = Text(finding.severity.value, style=_SEVERITY_STYLE[finding.severity])
    body = Text()
    body.append(finding.rule, style="bold")
    body.append(f" {finding.slug}", style="bold")
    body.append("  ")
    body.append(_object(finding), style="cyan")
    location = _location(finding.file, finding.line)
    if location:
        body.append(f"\n{location}", style="dim")
    body.append(f"\n{finding.message}")
    body.append("\nfix: ", style="green")
    # The same rule's remediation, once per app section, is enough.
    body.append(f"as above ({finding.rule})" if fix_shown else finding.remediation)
    return severity, body


def _findings_table(findings: list[Finding], fixes_shown: set[str]) -> Table:
    table = Table.grid(padding=(0, 2, 0, 0))
    table.add_column("severity", width=7, no_wrap=True)
    table.add_column("finding", overflow="fold")
    for i, finding in enumerate(findings):
        if i:
            table.add_row("", "")  # a blank line between findings
        fix = f"{finding.rule}\0{finding.remediation}"
        table.add_row(*_finding_row(finding, fix in fixes_shown))
        fixes_shown.add(fix)
    return table


def _section_rule(title: str) -> Rule:
    return Rule(Text(title, style="bold"), align="left", style="dim")


def _app_section(app: str, findings: list[Finding], summary: Summary) -> list[RenderableType]:
    scores = {s.environment: s.score for s in summary.app_scores if s.app == app}
    parts: list[RenderableType] = [_section_rule(app)]
    fixes_shown: set[str] = set()
    by_env: dict[str, list[Finding]] = {}
    for finding in findings:
        by_env.setdefault(env_of(finding), []).append(finding)
    for env, env_findings in by_env.items():
        heading = Text("  ")
        heading.append(env, style="bold")
        heading.append(f" · {plural(len(env_findings), 'finding')} · score ")
        heading.append(str(scores.get(env, 100)), style=_score_style(scores.get(env, 100)))
        parts.append(heading)
        parts.append(Padding(_findings_table(env_findings, fixes_shown), (0, 0, 1, 4)))
    return parts


def _suppressed_section(items: list[Suppressed]) -> list[RenderableType]:
    table = Table.grid(padding=(0, 2, 0, 0))
    table.add_column("rule", no_wrap=True)
    table.add_column("what", overflow="fold")
    for item in sorted(items, key=lambda s: finding_sort_key(s.finding)):
        f = item.finding
        what = Text(_object(f), style="cyan")
        what.append(f" [{env_of(f)}]", style="dim")
        what.append(f"\nreason: {item.reason}")
        table.add_row(Text(f.rule, style="bold"), what)
    return [_section_rule(f"suppressed ({len(items)})"), Padding(table, (0, 0, 1, 2))]


def _notes_section(notes: list[Note]) -> list[RenderableType]:
    table = Table.grid(padding=(0, 1, 0, 0))
    table.add_column("bullet", no_wrap=True)
    table.add_column("note", overflow="fold")
    for note in sorted(notes, key=note_sort_key):
        line = Text()
        location = _location(note.file, note.line)
        if location:
            line.append(location, style="dim")
            line.append(": ")
        line.append(note.message)
        table.add_row("-", line)
    return [_section_rule(f"notes ({len(notes)})"), Padding(table, (0, 0, 1, 2))]


def _counts_line(summary: Summary) -> Text:
    line = Text("  ")
    line.append(plural(summary.total, "finding"), style="bold")
    line.append(": ")
    for i, (sev, n) in enumerate(summary.by_severity.items()):
        if i:
            line.append(" · ")
        word = "info" if sev is Severity.INFO else plural(n, sev.value).split(" ", 1)[1]
        line.append(f"{n} {word}", style=_SEVERITY_STYLE[sev] if n else "dim")
    line.append(f" · {summary.suppressed} suppressed · {plural(summary.notes, 'note')}")
    return line


def _score_table(summary: Summary) -> Table:
    table = Table(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    table.add_column("app", no_wrap=True)
    for env in summary.environments:
        table.add_column(env, justify="right", no_wrap=True)
    cells = {(s.app, s.environment): s.score for s in summary.app_scores}
    for app in summary.apps:
        row: list[Text] = [Text(app)]
        for env in summary.environments:
            value = cells.get((app, env))
            row.append(
                Text("–", style="dim")
                if value is None
                else Text(str(value), style=_score_style(value))
            )
        table.add_row(*row)
    if summary.environments:
        table.add_section()
        table.add_row(
            Text("all apps", style="bold"),
            *(
                Text(str(v), style="bold " + _score_style(v))
                for v in summary.environment_scores.values()
            ),
        )
    return table


def _header(report: Report, summary: Summary) -> Text:
    header = Text("statekeeper audit", style="bold")
    envs = [e for e in summary.environments if not e.startswith("(")]
    header.append(
        f" · {plural(summary.resources, 'resource')}"
        f" · {plural(len([a for a in summary.apps if not a.startswith('(')]), 'app')}"
        f" · {plural(len(envs), 'environment')}"
    )
    if envs:
        header.append(f" ({', '.join(envs)})")
    return header


def build(report: Report) -> Group:
    """The report as one rich renderable (for callers that print to their own Console)."""
    summary = summarize(report)
    parts: list[RenderableType] = [_header(report, summary), Text()]
    grouped: dict[str, list[Finding]] = {}
    for finding in sorted_findings(report.findings):
        grouped.setdefault(app_of(finding), []).append(finding)
    if not grouped and summary.resources == 0:
        # Likely a wrong path or unrendered templates: "all compliant" would be a false comfort.
        where = ", ".join(report.sources) if report.sources else "the given paths"
        if len(report.sources) > 3:
            where = f"{len(report.sources)} files"
        parts += [Text(f"Nothing audited: no Kubernetes objects found in {where}.", "yellow")]
        parts += [Text()]
    elif not grouped:
        parts += [Text("No findings: every audited object follows the strategy.", "green"), Text()]
    for app, findings in grouped.items():
        parts += _app_section(app, findings, summary)
    if report.suppressed:
        parts += _suppressed_section(report.suppressed)
    if report.notes:
        parts += _notes_section(report.notes)
    parts.append(_section_rule("summary"))
    parts.append(_counts_line(summary))
    if summary.app_scores:
        weights = " − ".join(f"{w}×{sev.value}" for sev, w in SEVERITY_WEIGHTS.items())
        parts.append(Text(f"  compliance score per app: 100 − {weights}, at least 0", "italic"))
        parts.append(Padding(_score_table(summary), (1, 0, 0, 2)))
    return Group(*parts)


def render_text(report: Report, *, color: bool = False, width: int = DEFAULT_WIDTH) -> str:
    """The terminal report as a string: ANSI styles when `color`, plain text otherwise."""
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=width,
        force_terminal=color,
        color_system="auto" if color else None,
        no_color=not color,
        highlight=False,
        emoji=False,
        markup=False,
        legacy_windows=False,
    )
    console.print(build(report))
    # rich pads lines to the width; trailing spaces only make diffs noisy.
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"
