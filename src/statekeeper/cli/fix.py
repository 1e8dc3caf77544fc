"""CLI: `statekeeper fix PATH` — edit the sources so the audit's fixable findings go away.

`fix` writes; `fix --diff` (alias `--dry-run`) only prints the unified diff, like `ruff --diff`.
Exit codes: 0 nothing left that fix can fix, 1 findings remain that need a person (listed with the
reason), 2 usage or input error (nothing written).
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from statekeeper.cli.options import PolicyOption, RuleOption, StrictInputsOption


class FixStyle(StrEnum):
    agent = "agent"
    litestream = "litestream"


# Typer keeps the help's line breaks and wraps each line at the terminal's width: one logical
# line per paragraph, so it reflows cleanly at any width; the rule table's lines stay under 78
# columns. The table comes from the rules' `fix` declarations, when the help is shown: building
# it at import would load every rule for `statekeeper --version`.
HELP = (
    "Fix the audit's findings in the source files, keeping comments, key order and quoting.\n\n"
    "Only the lines that change differ. A claim whose name or class must change is a "
    "migration: a new claim beside the old one, references moved, the data-copy commands in a "
    "note. Backups are added as statekeeper's agent, or with --style litestream as the "
    "strategy's Litestream + rclone pattern (with the Fail-Safe Integrity order and config "
    "mounts fixed); the daily Velero schedule of every namespace is written once where Velero "
    "is configured, else at --cluster-dir. Anything else, or anything unsafe to edit, is "
    "listed with the reason.\n\n"
    "{rules}\n\n"
    "Every edit is verified before anything is written: the edited tree is rendered again and "
    "an edit is kept only if it removes its finding and adds none. Files are written all at "
    "once or not at all (temporary file + rename; a file changed since the audit read it stops "
    "the run). --diff only shows the changes. Exit codes: 0 nothing left that fix can fix, 1 "
    "findings remain that need a person, 2 usage or input error. See docs/fix.md.\n"
)


def fixable_rules_table(width: int = 78) -> str:
    """The fixable rules in the order their fixers run, each with its fixer's file and its
    title, from the rules' `fix = FixedBy(...)` declarations."""
    import textwrap

    from statekeeper.rules.base import FixedBy, fixable_rules

    rows = sorted(
        (rule.fix.step, rule.id, rule.fix.file.rpartition("/")[2], rule.title)
        for rule in fixable_rules()
        if isinstance(rule.fix, FixedBy)
    )
    files = max(len(file) for _, _, file, _ in rows)
    lines = ["Fixable rules, in the order their fixers (in statekeeper/fix/) run:"]
    for _, rule_id, file, title in rows:
        head = f"  {rule_id}  {file.ljust(files)}  "
        lines += textwrap.wrap(title, width, initial_indent=head, subsequent_indent=" " * len(head))
    return "\n".join(lines)


class _FixCommand(TyperCommand):
    """`fix`, whose help lists the fixable rules; read from the registry only when shown."""

    def format_help(self, ctx: Any, formatter: Any) -> None:  # Typer's own (vendored) click types
        self.help = HELP.replace("{rules}", fixable_rules_table())
        super().format_help(ctx, formatter)


def fix_command(
    path: Annotated[Path, typer.Argument(help="The repository (or directory) to fix.")] = Path(),
    rule: RuleOption = None,
    diff: Annotated[
        bool,
        typer.Option(
            "--diff", "--dry-run", help="Print the unified diff of the changes; write nothing."
        ),
    ] = False,
    policy: PolicyOption = None,
    style: Annotated[
        FixStyle, typer.Option("--style", help="How to add backups: agent or litestream.")
    ] = FixStyle.agent,
    cluster_dir: Annotated[
        Path,
        typer.Option(
            "--cluster-dir",
            help="Where a cluster-wide object (the Velero Schedule) goes when the repo has no "
            "place for it yet, relative to PATH.",
        ),
    ] = Path("cluster"),
    strict_inputs: StrictInputsOption = False,
) -> None:
    from statekeeper.fix.run import run_fix

    run = run_fix(
        path,
        policy=policy,
        rules=rule,
        style=style.value,
        cluster_dir=cluster_dir,
        strict_inputs=strict_inputs,
        dry_run=diff,
    )
    if diff:
        sys.stdout.write(run.diff)
    report = sys.stderr if diff else sys.stdout
    report.write("".join(f"{line}\n" for line in run.summary()))
    raise typer.Exit(run.exit_code)


def register(app: typer.Typer) -> None:
    """Add `fix` to the root app."""
    first = HELP.partition("\n")[0]  # the root help's one-line summary; no rule is loaded
    app.command("fix", cls=_FixCommand, help=HELP, short_help=first)(fix_command)
