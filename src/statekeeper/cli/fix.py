"""CLI: `statekeeper fix PATH` — edit the sources so the audit's fixable findings go away.

`fix` writes; `fix --diff` (alias `--dry-run`) only prints the unified diff, like `ruff --diff`.
Exit codes: 0 nothing left that fix can fix, 1 findings remain that need a person (listed with the
reason), 2 usage or input error (nothing written).
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

from statekeeper.cli.options import PolicyOption, RuleOption, StrictInputsOption
from statekeeper.errors import EXIT_FINDINGS, EXIT_OK

if TYPE_CHECKING:
    from statekeeper.fix.engine import FixResult


class FixStyle(StrEnum):
    agent = "agent"
    litestream = "litestream"


# Typer keeps the help's line breaks and wraps each line at the terminal's width: one logical
# line per paragraph, so it reflows cleanly at any width.
HELP = (
    "Fix the audit's findings in the source files, keeping comments, key order and quoting.\n\n"
    "Only the lines that change differ. Fixable rules: SK101/SK106 (the environment's "
    "StorageClass, set where that environment decides it), SK102 (reclaim policy), SK103 (a "
    "well-named claim), SK104 (grow a claim to its category's minimum; never shrink). A claim "
    "whose name or class must change is a migration: a new claim beside the old one, references"
    " moved, the data-copy commands in a note. SK201-SK204 and SK301 (add the backup: "
    "statekeeper's agent, or with --style litestream the strategy's Litestream + rclone "
    "pattern; fix the Fail-Safe Integrity order and config mounts), SK401 (a daily Velero "
    "schedule of every namespace, written once where Velero is configured, else at "
    "--cluster-dir). Anything else, or anything unsafe to edit, is listed with the reason.\n\n"
    "Every edit is verified before anything is written: the edited tree is rendered again and "
    "an edit is kept only if it removes its finding and adds none. Files are written all at "
    "once or not at all (temporary file + rename; a file changed since the audit read it stops "
    "the run). --diff only shows the changes. Exit codes: 0 nothing left that fix can fix, 1 "
    "findings remain that need a person, 2 usage or input error. See docs/fix.md.\n"
)


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
    from statekeeper.errors import InputError
    from statekeeper.fix.audit import audit_tree
    from statekeeper.fix.engine import fix_tree
    from statekeeper.fix.secrets import mask, secret_values
    from statekeeper.fix.workspace import fingerprint
    from statekeeper.generate.strategy import load_strategy

    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    from statekeeper.rules.base import all_rules

    # Ids or slugs, as `audit --rule` takes them.
    slugs = {r.slug: r.id for r in all_rules()}
    keys = [r.strip() for value in rule or [] for r in value.split(",") if r.strip()]
    rules = [slugs.get(key.lower(), key) for key in keys]
    strategy = load_strategy(policy)
    audited = fingerprint(path)
    outcome = audit_tree(path, strategy.policy, strict_inputs=strict_inputs)
    result = fix_tree(
        path,
        outcome.findings,
        strategy,
        lambda paths: audit_tree(paths, strategy.policy, quiet=True).findings,
        rules=rules or None,
        style=style.value,
        detected=outcome.detected,
        audited=audited,
        cluster_dir=cluster_dir,
    )
    if diff:
        # Context lines may show an inline S3 key next to an edit: never print it.
        texts = [t for old, new in result.workspace.changes().values() for t in (old, new)]
        sys.stdout.write(mask(result.workspace.diff(), secret_values(texts, strategy.policy)))
    written = [] if diff else result.workspace.commit()
    report = sys.stderr if diff else sys.stdout
    _summary(result, written, diff, report)
    raise typer.Exit(EXIT_FINDINGS if result.cannot else EXIT_OK)


def _summary(result: FixResult, written: list[Path], dry_run: bool, out: TextIO) -> None:
    ws = result.workspace
    for item in result.fixed:
        out.write(f"fixed {item.rule} {item.subject}: {item.what}\n")
    for refused in result.cannot:
        out.write(f"cannot fix {refused.rule} {refused.subject}: {refused.reason}\n")
    for note in result.notes:
        out.write(f"note: {note}\n")
    changes = ws.changes()
    if dry_run and changes:
        out.write(f"--diff: {len(changes)} file(s) would change, nothing written\n")
    elif written:
        out.write(f"wrote {len(written)} file(s): {', '.join(ws.display(p) for p in written)}\n")
    elif not result.fixed and not result.cannot:
        out.write("nothing to fix\n")
    else:  # only findings that cannot be fixed (e.g. a second run): say that nothing moved
        out.write("no file changed\n")


def register(app: typer.Typer) -> None:
    """Add `fix` to the root app."""
    app.command("fix", help=HELP)(fix_command)
