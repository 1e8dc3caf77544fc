"""CLI: `statekeeper audit` — judge manifests and kustomize overlays against the strategy.

Arguments → `load_policy` → `run_audit` (only the `--rule` rules) → a reporter → stdout or
`--output`, then the exit code from `--fail-on`. Heavy modules (engine, rules, rich, PyYAML) are
imported inside the command so `statekeeper --version` and `--help` stay fast.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from statekeeper.errors import EXIT_FINDINGS, EXIT_OK, StatekeeperError

if TYPE_CHECKING:
    from statekeeper.findings import Report

# Width of the terminal report when stdout is not a terminal (pipes, files, CI logs).
PIPE_WIDTH = 100


class OutputFormat(StrEnum):
    text = "text"
    json = "json"
    sarif = "sarif"


class FailOn(StrEnum):
    error = "error"
    warning = "warning"
    info = "info"
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
    "Formats (--format):\n"
    "  text   a report for people: findings grouped by app and environment,\n"
    "         a summary with counts per severity and a compliance score per\n"
    "         app and environment (colour only on a terminal; NO_COLOR: none)\n"
    '  json   versioned JSON: {"version": 1, "tool", "findings",\n'
    '         "suppressed", "notes", "summary"}\n'
    "  sarif  SARIF 2.1.0 for code scanning (GitHub, GitLab), file/line locations\n\n"
    "Exit codes:\n"
    "  0  no finding at or above --fail-on (or --fail-on never)\n"
    "  1  findings at or above --fail-on\n"
    "  2  usage error (bad flag, missing path, bad policy), a file named\n"
    "     on the command line that cannot be read, or any unreadable\n"
    "     input with --strict-inputs\n\n"
    'Silence one finding with the annotation `statekeeper.io/ignore: "SK103: <reason>"` on the '
    "object. The user guide is docs/audit.md; each rule has a page in docs/rules/.\n"
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
            help="Files, directories or - (stdin). Default: the current directory.",
            show_default=False,
        ),
    ] = None,
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy",
            help="Policy file that overrides or extends the built-in `elite` policy.",
            dir_okay=False,
        ),
    ] = None,
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
        OutputFormat,
        typer.Option("--format", "-f", help="Output format: text, json or sarif."),
    ] = OutputFormat.text,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the report to this file instead of stdout."),
    ] = None,
    fail_on: Annotated[
        FailOn,
        typer.Option(
            "--fail-on",
            help="Exit 1 when a finding is at least this severe (never: always exit 0).",
        ),
    ] = FailOn.error,
    rule: Annotated[
        list[str] | None,
        typer.Option(
            "--rule",
            "-r",
            help="Only report these rules: ids or slugs, comma-separated or repeated "
            "(e.g. --rule SK101,SK203).",
        ),
    ] = None,
    strict_inputs: Annotated[
        bool,
        typer.Option(
            "--strict-inputs",
            help="Stop at the first root that does not build or file that cannot be read "
            "(exit 2) instead of reporting it as a finding (SK002/SK003) and going on.",
        ),
    ] = False,
) -> None:
    from statekeeper.engine import run_audit
    from statekeeper.policy.load import load_policy
    from statekeeper.report import render
    from statekeeper.rules.base import all_rules

    wanted = _wanted_rules(rule or [])
    sources = list(paths or ["."])
    effective_policy = load_policy(policy)
    if env is not None and effective_policy.canonical_environment(env) is None:
        # A typo here would silently switch off every storage-class check: refuse it.
        known = ", ".join(sorted(effective_policy.overlay_environments()))
        raise StatekeeperError(f"--env {env!r}: unknown environment (the policy knows: {known})")
    if helm_repo_config is not None and not helm_repo_config.is_file():
        raise StatekeeperError(f"--helm-repo-config {helm_repo_config}: no such file")
    report = run_audit(
        sources,
        policy=effective_policy,
        env=env,
        render=not no_render,
        stdin=sys.stdin.buffer if "-" in sources else None,
        only=wanted,
        strict_inputs=strict_inputs,
        helm_repo_config=str(helm_repo_config) if helm_repo_config is not None else None,
    )

    color, width = False, PIPE_WIDTH
    if output is None and fmt is OutputFormat.text:
        color, width = _terminal_style()
    text = render(report, fmt.value, color=color, width=width, rules=all_rules())
    if output is None:
        _print(text)
    else:
        _write(output, text)
    raise typer.Exit(exit_code(report, fail_on.value))


def exit_code(report: Report, fail_on: str) -> int:
    """1 when a finding is at least as severe as `fail_on` (error, warning, info), else 0."""
    from statekeeper.findings import Severity

    if fail_on == "never":
        return EXIT_OK
    threshold = Severity(fail_on)
    failing = any(f.severity.at_least(threshold) for f in report.findings)
    return EXIT_FINDINGS if failing else EXIT_OK


def _wanted_rules(values: Sequence[str]) -> set[str] | None:
    """Rule ids selected by --rule (ids or slugs, comma-separated); None = every rule."""
    from statekeeper.rules.base import all_rules

    keys = [key.strip() for value in values for key in value.split(",") if key.strip()]
    if not keys:
        return None
    known = {r.id.lower(): r.id for r in all_rules()} | {r.slug: r.id for r in all_rules()}
    wanted: set[str] = set()
    for key in keys:
        rule_id = known.get(key.lower())
        if rule_id is None:
            choices = ", ".join(sorted(set(known.values())))
            raise StatekeeperError(f"--rule: unknown rule {key!r}; known rules: {choices}")
        wanted.add(rule_id)
    return wanted


def _terminal_style() -> tuple[bool, int]:
    """(colour?, width) for stdout, as rich's Console sees it: colour only on a terminal, never
    with NO_COLOR; FORCE_COLOR forces it; the terminal's width, or PIPE_WIDTH when piped."""
    from rich.console import Console

    console = Console(file=sys.stdout)
    color = console.is_terminal and console.color_system is not None and not console.no_color
    return color, (console.width if console.is_terminal else PIPE_WIDTH)


def _print(text: str) -> None:
    """Write to stdout; a reader that went away (`| head`) is not an error."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        import os

        # Point stdout at /dev/null so the interpreter's final flush cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise StatekeeperError(f"cannot write the report to {path}: {exc.strerror}") from None
