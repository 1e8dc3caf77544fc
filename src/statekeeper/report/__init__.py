"""Reporters: pure functions from a `Report` to the text of one output format.

    render(report, fmt, color=..., width=..., context=ReportContext(...)) -> str

No reporter reads files, the environment or the clock: the same report and context give the same
text. What a reporter needs beyond the report (rule metadata, the repository root the paths are
made relative to, the doc-url template, the policy's name) comes in a `ReportContext` the CLI
builds. Formats are imported lazily so that picking one never imports the others (rich is only
needed for the terminal text).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

from statekeeper.findings import Report

if TYPE_CHECKING:
    from statekeeper.report.sarif import RuleInfo

Format = Literal["text", "json", "sarif", "junit", "markdown", "github", "codequality"]
FORMATS: tuple[str, ...] = get_args(Format)

PROJECT_URI = "https://github.com/statekeeper/statekeeper"
# Where a rule's page lives. `{page}` is the page's file name (SK101-storage-class-for-
# environment.md), `{id}` the rule id, `{slug}` its slug. A config file's `doc-url` replaces it.
DEFAULT_DOC_URL = f"{PROJECT_URI}/blob/main/docs/rules/{{page}}"


@dataclass(frozen=True, slots=True)
class ReportContext:
    """What reporters know besides the report itself.

    `srcroot` (absolute, POSIX) is the repository root file URIs are made relative to; `cwd`
    (absolute) is the directory the findings' relative paths are relative to. Without them,
    paths are used as they are.
    """

    rules: Sequence[RuleInfo] = ()
    doc_url: str = DEFAULT_DOC_URL
    srcroot: str | None = None
    cwd: str | None = None
    policy: str = "elite"
    environment: str | None = None


def doc_page(rule_id: str, slug: str) -> str:
    """File name of a rule's page in docs/rules/ (as `statekeeper.rules.docs` writes it)."""
    return f"{rule_id}-{slug}.md"


def doc_url(template: str, rule_id: str, slug: str) -> str:
    """A rule's documentation URL from a doc-url template."""
    return (
        template.replace("{page}", doc_page(rule_id, slug))
        .replace("{id}", rule_id)
        .replace("{slug}", slug)
    )


def render(
    report: Report,
    fmt: str,
    *,
    color: bool = False,
    width: int = 100,
    rules: Sequence[RuleInfo] = (),
    context: ReportContext | None = None,
) -> str:
    """Render `report` in format `fmt`.

    `color` and `width` apply to the terminal text only; `rules` (or `context.rules`: id, slug,
    severity, title, rationale, remediation) feeds SARIF's `tool.driver.rules` and the JUnit
    test names. Raises ValueError for an unknown format.
    """
    if context is None:
        context = ReportContext(rules=rules)
    elif rules and not context.rules:
        context = ReportContext(
            rules=rules,
            doc_url=context.doc_url,
            srcroot=context.srcroot,
            cwd=context.cwd,
            policy=context.policy,
            environment=context.environment,
        )
    if fmt == "text":
        from statekeeper.report.text import render_text

        return render_text(report, color=color, width=width)
    if fmt == "json":
        from statekeeper.report.json import render_json

        return render_json(report)
    if fmt == "sarif":
        from statekeeper.report.sarif import render_sarif

        return render_sarif(report, context=context)
    if fmt == "junit":
        from statekeeper.report.junit import render_junit

        return render_junit(report, context)
    if fmt == "markdown":
        from statekeeper.report.markdown import render_markdown

        return render_markdown(report, context)
    if fmt == "github":
        from statekeeper.report.github import render_github

        return render_github(report, context)
    if fmt == "codequality":
        from statekeeper.report.codequality import render_codequality

        return render_codequality(report, context)
    raise ValueError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")


__all__ = ["DEFAULT_DOC_URL", "FORMATS", "Format", "ReportContext", "doc_url", "render"]
