"""CLI: `statekeeper audit` — judge manifests and kustomize overlays against the strategy.

The Typer front door (options, help, completion, usage errors); the work is in
`statekeeper.auditcmd`, which plain command lines also reach without Typer through
`statekeeper.fastpath`. Heavy modules (engine, rules, rich, PyYAML) are imported inside the
command so `statekeeper --version` and `--help` stay fast.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from statekeeper.cli.options import PolicyOption, RuleOption, StrictInputsOption

if TYPE_CHECKING:
    from statekeeper.findings import Report


class OutputFormat(StrEnum):
    text = "text"
    json = "json"
    sarif = "sarif"
    junit = "junit"
    markdown = "markdown"
    github = "github"
    codequality = "codequality"


class FailOn(StrEnum):
    error = "error"
    warning = "warning"
    info = "info"
    never = "never"


class Color(StrEnum):
    auto = "auto"
    always = "always"
    never = "never"


# Typer keeps the help's line breaks and wraps each line at the terminal's width: a paragraph
# is one logical line (so it reflows cleanly), the tables' lines stay under 78 columns.
HELP = (
    "Audit Kubernetes manifests against the storage & backup strategy.\n\n"
    "PATHS are files, directories (read recursively) or `-` for YAML on stdin (default: `.`). "
    "Below a directory, every kustomization root (a kustomization no other one references) is "
    "rendered with `kustomize build` or `kubectl kustomize` (whichever is on PATH), in its "
    "environment (`overlays/<env>`, `clusters/<env>`, `<app>/<env>`, the policy's "
    "`environments.<name>.paths`); the files it reads are judged only as rendered. "
    "`--no-render` reads the YAML files as they are instead. A root that does not build "
    "(SK002) or a file that cannot be read (SK003) is a finding and the audit goes on.\n\n"
    "Settings come from flags, else from `.statekeeper.yaml` (found from the working directory "
    "up to the git root, or --config; `statekeeper init` writes one), else the defaults.\n\n"
    "Formats (--format, repeatable; pair each with its own --output):\n"
    "  text         a report for people: findings grouped by app and\n"
    "               environment, a summary with counts per severity and a\n"
    "               compliance score per app and environment\n"
    '  json         versioned JSON: {"version": 1, "tool", "findings",\n'
    '               "suppressed", "notes", "summary"}\n'
    "  sarif        SARIF 2.1.0 for code scanning (GitHub, GitLab), one\n"
    "               result per rule, file and line\n"
    "  junit        JUnit XML, one testcase per rule and object\n"
    "  markdown     a table for job summaries and pull-request comments\n"
    "  github       GitHub Actions annotations (::error file=...)\n"
    "  codequality  GitLab Code Quality JSON\n\n"
    "Example: `-f text -f sarif -o report.sarif` prints the text and writes the SARIF (outputs "
    "go to the last formats; `-o sarif=report.sarif` names the format).\n\n"
    "Exit codes:\n"
    "  0  no finding at or above --fail-on (or --fail-on never)\n"
    "  1  findings at or above --fail-on\n"
    "  2  usage error (bad flag, missing path, bad policy or config), a\n"
    "     file named on the command line that cannot be read, any\n"
    "     unreadable input with --strict-inputs, nothing audited with\n"
    "     --fail-if-no-objects\n\n"
    'Silence one finding with the annotation `statekeeper.io/ignore: "SK103: <reason>"` on the '
    "object; adopt the tool on a repository with old findings with --write-baseline, then "
    "--baseline. The user guide is docs/audit.md; each rule has a page in docs/rules/.\n"
)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command(
        "audit",
        help=HELP,
        short_help="Audit manifests and kustomize overlays against the strategy.",
        rich_help_panel=None,
    )(audit)


def audit(
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            help="Files, directories or - (stdin). Default: the config's paths, else the "
            "current directory.",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="Config file (default: .statekeeper.yaml from here up to the git root).",
            dir_okay=False,
        ),
    ] = None,
    policy: PolicyOption = None,
    env: Annotated[
        str | None,
        typer.Option(
            "--env",
            help="Environment of every resource (production, development, ...): wins over "
            "overlay names and namespace labels.",
        ),
    ] = None,
    no_render: Annotated[
        bool,
        typer.Option(
            "--no-render",
            help="Do not render kustomize overlays or Helm charts; read files as-is "
            "(app-template values are still interpreted).",
        ),
    ] = False,
    helm_repo_config: Annotated[
        Path | None,
        typer.Option(
            "--helm-repo-config",
            help="helm repositories.yaml to fetch charts with (default: helm's own, the "
            "user's); charts that cannot be fetched are listed in notes.",
        ),
    ] = None,
    fmt: Annotated[
        list[OutputFormat] | None,
        typer.Option(
            "--format",
            "-f",
            help="Output format (repeatable): text, json, sarif, junit, markdown, github, "
            "codequality.",
            show_default="text",
        ),
    ] = None,
    output: Annotated[
        list[str] | None,
        typer.Option(
            "--output",
            "-o",
            help="Write a format's report to this file (repeatable; FORMAT=FILE names the "
            "format) instead of stdout.",
            metavar="FILE",
        ),
    ] = None,
    fail_on: Annotated[
        FailOn | None,
        typer.Option(
            "--fail-on",
            help="Exit 1 when a finding is at least this severe (never: always exit 0).",
            show_default="error",
        ),
    ] = None,
    rule: RuleOption = None,
    baseline: Annotated[
        Path | None,
        typer.Option(
            "--baseline",
            help="Report only findings not recorded in this baseline file.",
            dir_okay=False,
        ),
    ] = None,
    write_baseline: Annotated[
        Path | None,
        typer.Option(
            "--write-baseline",
            help="Record every current finding in this file (replacing it), then report as "
            "if they were all known.",
            dir_okay=False,
        ),
    ] = None,
    srcroot: Annotated[
        Path | None,
        typer.Option(
            "--srcroot",
            help="Repository root that report paths are relative to (default: the git root "
            "of the working directory, else the working directory).",
            file_okay=False,
        ),
    ] = None,
    strict_inputs: StrictInputsOption = False,
    fail_if_no_objects: Annotated[
        bool,
        typer.Option(
            "--fail-if-no-objects",
            help="Exit 2 when no Kubernetes object was found (a wrong path, say).",
        ),
    ] = False,
    color: Annotated[
        Color | None,
        typer.Option(
            "--color",
            help="Colour the text report: auto (on a terminal, unless NO_COLOR is set), "
            "always, never.",
            show_default="auto",
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print no warnings or progress on stderr.")
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", "-v", help="Say on stderr which config, policy and baseline are used."
        ),
    ] = False,
) -> None:
    from statekeeper.auditcmd import AuditOptions, run

    options = AuditOptions(
        paths=list(paths or []),
        config=config,
        policy=policy,
        env=env,
        no_render=no_render,
        formats=[f.value for f in fmt or []],
        outputs=list(output or []),
        fail_on=fail_on.value if fail_on else None,
        rules=list(rule or []),
        baseline=baseline,
        write_baseline=write_baseline,
        srcroot=srcroot,
        strict_inputs=strict_inputs,
        helm_repo_config=helm_repo_config,
        fail_if_no_objects=fail_if_no_objects,
        color=color.value if color else None,
        quiet=quiet,
        verbose=verbose,
    )
    raise typer.Exit(run(options))


def exit_code(report: Report, fail_on: str) -> int:
    """1 when a finding is at least as severe as `fail_on` (error, warning, info), else 0."""
    from statekeeper.auditcmd import exit_code as code

    return code(report, fail_on)
