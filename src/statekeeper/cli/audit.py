"""CLI: `statekeeper audit` — judge manifests and kustomize overlays against the strategy.

Arguments (else `.statekeeper.yaml`, else defaults) → the policy → `run_audit` (only the
`--rule` rules) → the baseline → one reporter per `--format` → stdout or its `--output`, then
the exit code from `--fail-on`. Heavy modules (engine, rules, rich, PyYAML) are
imported inside the command so `statekeeper --version` and `--help` stay fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from statekeeper.errors import EXIT_FINDINGS, EXIT_OK, StatekeeperError

if TYPE_CHECKING:
    from statekeeper.config import Config
    from statekeeper.findings import Report
    from statekeeper.policy.model import Policy
    from statekeeper.report import ReportContext
    from statekeeper.report.sarif import RuleInfo

# Width of the terminal report when stdout is not a terminal (pipes, files, CI logs).
PIPE_WIDTH = 100


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
    "Below a directory, every `overlays/<env>/kustomization.yaml` is rendered with "
    "`kustomize build` or `kubectl kustomize` (whichever is on PATH) and audited as environment "
    "<env>; `--no-render` reads the YAML files as they are instead.\n\n"
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
    "  2  usage or input error (bad flag, unreadable path, bad YAML,\n"
    "     kustomize failure, bad policy or config, nothing audited\n"
    "     with --fail-if-no-objects)\n\n"
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
        typer.Option("--no-render", help="Do not render kustomize overlays; read files as-is."),
    ] = False,
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
    rule: Annotated[
        list[str] | None,
        typer.Option(
            "--rule",
            "-r",
            help="Only report these rules: ids or slugs, comma-separated or repeated "
            "(e.g. --rule SK101,SK203).",
        ),
    ] = None,
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
    from statekeeper.cli import ui

    ui.set_level(ui.QUIET if quiet else ui.VERBOSE if verbose else ui.NORMAL)
    settings = _settings(config)
    formats = [f.value for f in fmt] if fmt else (settings.formats or ["text"])
    targets = _targets(formats, output or [], settings.outputs if not fmt else {})
    effective_policy = _policy(policy, settings)
    if env is not None and effective_policy.canonical_environment(env) is None:
        # A typo here would silently switch off every storage-class check: refuse it.
        known = ", ".join(sorted(effective_policy.overlay_environments()))
        raise StatekeeperError(f"--env {env!r}: unknown environment (the policy knows: {known})")
    sources = list(paths or _config_paths(settings) or ["."])
    report = _run(sources, effective_policy, env, no_render, rule or [], settings)

    if report.resources == 0:
        where = ", ".join(sources)
        if fail_if_no_objects:
            raise StatekeeperError(f"nothing audited: no Kubernetes objects found in {where}")
        ui.warn(f"nothing audited: no Kubernetes objects found in {where}")
    report = _apply_baseline(report, baseline, write_baseline, settings)

    from statekeeper.rules.base import all_rules

    canonical_env = effective_policy.canonical_environment(env) if env else None
    context = report_context(
        all_rules(), srcroot, effective_policy.name, canonical_env, settings.doc_url
    )
    mode = Color(color or settings.color or "auto")
    for name, target in targets:
        _emit(report, name, target, context, mode)
    threshold = (fail_on.value if fail_on else None) or settings.fail_on or "error"
    raise typer.Exit(exit_code(report, threshold))


def _settings(config: Path | None) -> Config:
    from statekeeper.cli import ui
    from statekeeper.config import load_config

    settings = load_config(config, Path.cwd())
    if settings.path is not None:
        ui.info(f"config: {settings.path}")
    return settings


def _config_paths(settings: Config) -> list[str]:
    """The config's `paths`, relative to the working directory when below it."""
    import os

    cwd = Path.cwd()
    shown = []
    for path in settings.paths:
        if path == "-":
            shown.append(path)
            continue
        relative = os.path.relpath(path, cwd)
        shown.append(path if relative.startswith("..") else relative)
    return shown


def _policy(policy: Path | None, settings: Config) -> Policy:
    """The policy file (flag, else config) merged with the config's settings."""
    from statekeeper.cli import ui
    from statekeeper.policy.load import load_policy, policy_from_override, read_policy_file

    if policy is None and not settings.changes_policy:
        return load_policy(None)
    path = policy or settings.policy_file
    if path is not None:
        override, source = read_policy_file(path), str(path)
    else:
        override, source = dict(settings.policy), str(settings.path)
    ui.info(f"policy: {source}")
    return policy_from_override(
        override,
        source,
        settings.policy_overrides(),
        settings.environment_aliases(),
    )


def _targets(
    formats: Sequence[str], outputs: Sequence[str], defaults: dict[str, Path]
) -> list[tuple[str, Path | None]]:
    """(format, file or None for stdout) per format. `-o FORMAT=FILE` names its format; plain
    outputs go, in order, to the last formats without one (`-f text -f sarif -o x.sarif`)."""
    from statekeeper.report import FORMATS

    named: dict[str, Path] = dict(defaults)
    plain: list[Path] = []
    for value in outputs:
        head, sep, tail = value.partition("=")
        if sep and head in FORMATS:
            if head not in formats:
                raise StatekeeperError(f"--output {value}: format {head} is not among --format")
            named[head] = Path(tail)
        else:
            plain.append(Path(value))
    unnamed = [f for f in formats if f not in named]
    if len(plain) > len(unnamed):
        raise StatekeeperError(
            f"{len(plain)} --output files for {len(unnamed)} --format(s) without one: "
            "give one --format per --output"
        )
    for fmt, path in zip(unnamed[len(unnamed) - len(plain) :], plain, strict=True):
        named[fmt] = path
    targets = [(fmt, named.get(fmt)) for fmt in dict.fromkeys(formats)]
    on_stdout = [fmt for fmt, path in targets if path is None]
    if len(on_stdout) > 1:
        raise StatekeeperError(
            f"formats {', '.join(on_stdout)} would all go to stdout: give all but one an --output"
        )
    return targets


def _run(
    sources: list[str],
    policy: Policy,
    env: str | None,
    no_render: bool,
    rule: list[str],
    settings: Config,
) -> Report:
    from statekeeper.engine import run_audit

    return run_audit(
        sources,
        policy=policy,
        env=env,
        render=not no_render,
        stdin=sys.stdin.buffer if "-" in sources else None,
        only=_wanted_rules(rule),
        exclude=_excluder(settings),
    )


def _excluder(settings: Config) -> Callable[[str], bool] | None:
    """A test for the config's `exclude` globs (relative to the config file's directory)."""
    if not settings.exclude or settings.directory is None:
        return None
    import fnmatch
    import os

    base = settings.directory
    patterns = [p.rstrip("/") for p in settings.exclude]

    def excluded(file: str) -> bool:
        if "://" in file or file.startswith("<"):
            return False
        relative = Path(os.path.relpath(Path(file).absolute(), base)).as_posix()
        return any(fnmatch.fnmatch(relative, p) or relative.startswith(p + "/") for p in patterns)

    return excluded


def _apply_baseline(
    report: Report, baseline: Path | None, write: Path | None, settings: Config
) -> Report:
    from statekeeper.baseline import read_baseline, write_baseline
    from statekeeper.cli import ui

    if write is not None:
        count = write_baseline(write, report)
        ui.warn(f"wrote the baseline {write}: {count} findings recorded")
        baseline = write
    path, from_config = baseline, False
    if path is None and settings.baseline is not None:
        path, from_config = settings.baseline, True
    if path is None:
        return report
    ui.info(f"baseline: {path}")
    return read_baseline(path, missing_ok=from_config).filter(report)


def _emit(
    report: Report, fmt: str, target: Path | None, context: ReportContext, color: Color
) -> None:
    from statekeeper.report import render

    use_color, width = False, PIPE_WIDTH
    if fmt == "text" and target is None and color is not Color.never:
        use_color, width = _terminal_style(force=color is Color.always)
    text = render(report, fmt, color=use_color, width=width, context=context)
    if target is None:
        _print(text)
    else:
        _write(target, text)


def report_context(
    rules: Sequence[RuleInfo],
    srcroot: Path | None,
    policy: str,
    env: str | None,
    doc_url: str | None = None,
) -> ReportContext:
    """What the reporters need besides the report: rules, repository root, doc links."""
    from statekeeper.repo import git_root
    from statekeeper.report import DEFAULT_DOC_URL, ReportContext

    cwd = Path.cwd()
    root = srcroot.resolve() if srcroot is not None else (git_root(cwd) or cwd)
    return ReportContext(
        rules=rules,
        doc_url=doc_url or DEFAULT_DOC_URL,
        srcroot=root.as_posix(),
        cwd=cwd.resolve().as_posix(),
        policy=policy,
        environment=env,
    )


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


def _terminal_style(force: bool = False) -> tuple[bool, int]:
    """(colour?, width) for stdout, as rich's Console sees it: colour only on a terminal, never
    with NO_COLOR; FORCE_COLOR forces it; the terminal's width, or PIPE_WIDTH when piped.
    `force` (--color always) colours whatever stdout is."""
    from rich.console import Console

    console = Console(file=sys.stdout)
    color = console.is_terminal and console.color_system is not None and not console.no_color
    return color or force, (console.width if console.is_terminal else PIPE_WIDTH)


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
