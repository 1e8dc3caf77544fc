"""`statekeeper fix` itself, without Typer: policy → audit → plan → verify → write.

`run_fix` is the library entry point the CLI (`statekeeper.cli.fix`) calls: it fingerprints the
files, audits them with `run_audit` (the engine `statekeeper audit` runs), plans and verifies the
edits (`fix_tree`) and, unless `dry_run`, writes them all or none. The caller prints `FixRun.diff`
and `FixRun.summary()` and exits with `FixRun.exit_code`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from statekeeper.errors import EXIT_FINDINGS, EXIT_OK, InputError
from statekeeper.fix.audit import audit_findings, audit_tree
from statekeeper.fix.context import Style
from statekeeper.fix.engine import FixResult, fix_tree
from statekeeper.fix.secrets import mask, secret_values
from statekeeper.fix.workspace import fingerprint
from statekeeper.generate.strategy import load_strategy
from statekeeper.rules.base import select_rules


@dataclass(slots=True)
class FixRun:
    """A fix run: its plan (`result`), what it wrote, and the diff it shows."""

    result: FixResult
    dry_run: bool
    written: list[Path] = field(default_factory=list)
    diff: str = ""  # the unified diff of every change, inline S3 keys masked

    @property
    def exit_code(self) -> int:
        """1 when findings remain that need a person (listed with the reason), else 0."""
        return EXIT_FINDINGS if self.result.cannot else EXIT_OK

    def summary(self) -> list[str]:
        """What was fixed, what could not be and why, the notes, and what was written."""
        result, ws = self.result, self.result.workspace
        lines = [f"fixed {item.rule} {item.subject}: {item.what}" for item in result.fixed]
        lines += [f"cannot fix {c.rule} {c.subject}: {c.reason}" for c in result.cannot]
        lines += [f"note: {note}" for note in result.notes]
        changes = ws.changes()
        if self.dry_run and changes:
            lines.append(f"--diff: {len(changes)} file(s) would change, nothing written")
        elif self.written:
            shown = ", ".join(ws.display(p) for p in self.written)
            lines.append(f"wrote {len(self.written)} file(s): {shown}")
        elif not result.fixed and not result.cannot:
            lines.append("nothing to fix")
        else:  # only findings that cannot be fixed (e.g. a second run): say that nothing moved
            lines.append("no file changed")
        return lines


def run_fix(
    path: Path,
    *,
    policy: Path | None = None,
    rules: Sequence[str] | None = None,
    style: Style = "agent",
    cluster_dir: Path = Path("cluster"),
    strict_inputs: bool = False,
    dry_run: bool = False,
) -> FixRun:
    """Fix the audit's findings below `path` (a repository, directory or file).

    `policy` is a policy file (default: the built-in `elite`); `rules` limits the fix to these
    rules (ids or slugs, see `select_rules`); `style` is how backups are added (`agent` or
    `litestream`); `cluster_dir` is where a cluster-wide object goes when the repository has no
    place for it yet. Every edit is verified by auditing the edited tree again; then every file
    is written, or (`dry_run`) none. Raises StatekeeperError for usage and input errors, before
    anything is written."""
    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    if rules:
        select_rules(rules, fixable=True)  # an unknown --rule fails before the audit
    strategy = load_strategy(policy)
    audited = fingerprint(path)
    outcome = audit_tree(path, strategy.policy, strict_inputs=strict_inputs)
    result = fix_tree(
        path,
        outcome.findings,
        strategy,
        lambda paths: audit_findings(paths, strategy.policy),
        rules=rules or None,
        style=style,
        detected=outcome.detected,
        claim_sizes=outcome.claim_sizes,
        audited=audited,
        cluster_dir=cluster_dir,
    )
    run = FixRun(result=result, dry_run=dry_run)
    if dry_run:
        # Context lines may show an inline S3 key next to an edit: never print it.
        texts = [t for old, new in result.workspace.changes().values() for t in (old, new)]
        run.diff = mask(result.workspace.diff(), secret_values(texts, strategy.policy))
    else:
        run.written = result.workspace.commit()
    return run
