"""`statekeeper audit` itself, without Typer: options → config → policy → audit → baseline →
reporters → exit code.

Both front doors call `run`: the Typer command (`statekeeper.cli.audit`, help, completion,
usage errors) and the fast path (`statekeeper.fastpath`), which parses plain command lines
with argparse so that pre-commit's per-commit runs do not pay for importing Typer.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from statekeeper.errors import EXIT_FINDINGS, EXIT_OK, StatekeeperError

if TYPE_CHECKING:
    from statekeeper.config import Config
    from statekeeper.findings import Report
    from statekeeper.policy.model import Policy
    from statekeeper.report import ReportContext
    from statekeeper.report.sarif import RuleInfo

# Width of the terminal report when stdout is not a terminal (pipes, files, CI logs).
PIPE_WIDTH = 100


@dataclass
class AuditOptions:
    """The audit's command line, as plain values (None / empty: not given)."""

    paths: list[str] = field(default_factory=list)
    config: Path | None = None
    policy: Path | None = None
    env: str | None = None
    no_render: bool = False
    formats: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    fail_on: str | None = None
    rules: list[str] = field(default_factory=list)
    baseline: Path | None = None
    write_baseline: Path | None = None
    srcroot: Path | None = None
    strict_inputs: bool = False
    helm_repo_config: Path | None = None
    fail_if_no_objects: bool = False
    color: str | None = None
    quiet: bool = False
    verbose: bool = False


def run(options: AuditOptions) -> int:
    """Run the audit; the exit code. Raises StatekeeperError for usage and input errors."""
    from statekeeper import ui

    ui.set_level(ui.QUIET if options.quiet else ui.VERBOSE if options.verbose else ui.NORMAL)
    settings = _settings(options.config)
    formats = options.formats or settings.formats or ["text"]
    defaults = settings.outputs if not options.formats else {}
    targets = _targets(formats, options.outputs, defaults)
    effective_policy = _policy(options.policy, settings)
    env = options.env
    if env is not None and effective_policy.canonical_environment(env) is None:
        # A typo here would silently switch off every storage-class check: refuse it.
        known = ", ".join(sorted(effective_policy.overlay_environments()))
        raise StatekeeperError(f"--env {env!r}: unknown environment (the policy knows: {known})")
    if options.helm_repo_config is not None and not options.helm_repo_config.is_file():
        raise StatekeeperError(f"--helm-repo-config {options.helm_repo_config}: no such file")
    sources = list(options.paths or _config_paths(settings) or ["."])
    report = _run(sources, effective_policy, env, options, settings)

    if report.resources == 0:
        where = ", ".join(sources)
        if options.fail_if_no_objects:
            raise StatekeeperError(f"nothing audited: no Kubernetes objects found in {where}")
        ui.warn(f"nothing audited: no Kubernetes objects found in {where}")
    report = _apply_baseline(report, options.baseline, options.write_baseline, settings)

    from statekeeper.rules.base import all_rules

    canonical_env = effective_policy.canonical_environment(env) if env else None
    context = report_context(
        all_rules(), options.srcroot, effective_policy.name, canonical_env, settings.doc_url
    )
    color = options.color or settings.color or "auto"
    for name, target in targets:
        _emit(report, name, target, context, color)
    threshold = options.fail_on or settings.fail_on or "error"
    return exit_code(report, threshold)


def _settings(config: Path | None) -> Config:
    from statekeeper import ui
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
    from statekeeper import ui
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
    sources: list[str], policy: Policy, env: str | None, options: AuditOptions, settings: Config
) -> Report:
    from statekeeper.engine import run_audit

    return run_audit(
        sources,
        policy=policy,
        env=env,
        render=not options.no_render,
        stdin=sys.stdin.buffer if "-" in sources else None,
        only=_wanted_rules(options.rules),
        strict_inputs=options.strict_inputs,
        helm_repo_config=str(options.helm_repo_config) if options.helm_repo_config else None,
        quiet=options.quiet,
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
    if write is None and baseline is None and settings.baseline is None:
        return report
    from statekeeper import ui
    from statekeeper.baseline import read_baseline, write_baseline

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
    report: Report, fmt: str, target: Path | None, context: ReportContext, color: str
) -> None:
    from statekeeper.report import render

    use_color, width = False, PIPE_WIDTH
    if fmt == "text" and target is None and color != "never":
        use_color, width = _terminal_style(force=color == "always")
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


def _wanted_rules(values: Sequence[str]) -> list[str] | None:
    """Rule ids selected by --rule (ids or slugs, comma-separated); None = every rule."""
    from statekeeper.rules.base import select_rules

    if not any(key.strip() for value in values for key in value.split(",")):
        return None
    return [rule.id for rule in select_rules(values)]


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
