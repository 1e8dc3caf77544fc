"""`statekeeper fix`: edit the sources so the audit's findings go away, changing only the lines
that must change, and writing every file or none.

Public API:
  run_fix(path, *, policy=None, rules=None, style="agent", cluster_dir=Path("cluster"),
          strict_inputs=False, dry_run=False) -> FixRun
                                             the whole command: audit, plan, verify, write;
                                             run.result, run.diff, run.summary(), run.exit_code
  plan_fixes(root, findings, strategy, *, rules=None, style="agent", detected=None,
             audited=None) -> FixResult   edits in memory; result.workspace.diff() / .commit()
  audit_tree(root, policy) -> AuditOutcome  the audit's findings + per-workload detections
  fingerprint(root) -> dict[Path, str]      SHA-256 of the YAML files, taken before the audit
  FIXABLE                                    the rules with a fixer (declared on each rule:
                                             `fix = FixedBy("statekeeper.fix.<module>:<function>")`)
"""

from __future__ import annotations

from statekeeper.fix.audit import AuditOutcome, audit_tree
from statekeeper.fix.engine import FIXABLE, FixResult, plan_fixes
from statekeeper.fix.run import FixRun, run_fix
from statekeeper.fix.workspace import ChangedOnDisk, Workspace, fingerprint

__all__ = [
    "FIXABLE",
    "AuditOutcome",
    "ChangedOnDisk",
    "FixResult",
    "FixRun",
    "Workspace",
    "audit_tree",
    "fingerprint",
    "plan_fixes",
    "run_fix",
]
