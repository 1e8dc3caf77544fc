"""SK202 sqlite-needs-integrity-init: An integrity-check init container runs before the restore.

The rule's docs page is docs/rules/SK202-sqlite-needs-integrity-init.md, its test cases
tests/rules/cases/SK202.yaml.
"""

from __future__ import annotations

from collections.abc import Iterable

from statekeeper.findings import Severity
from statekeeper.inventory.model import Inventory
from statekeeper.policy.model import Policy
from statekeeper.rules.base import FixedBy, Rule, Violation, register
from statekeeper.rules.sqlite import (
    AGENT_HINT,
    TIER1,
    describe_app,
    provider_gaps,
    sqlite_workloads,
    workload_violations,
)


@register
class SqliteNeedsIntegrityInit(Rule):
    id = "SK202"
    slug = "sqlite-needs-integrity-init"
    severity = Severity.ERROR
    joins_violations = True
    title = "An integrity-check init container runs before the restore"
    rationale = (
        TIER1 + "\n\nFail-Safe Integrity: before the app starts, an init container checks "
        "the database (`PRAGMA integrity_check`) and moves a corrupt file aside, so that the "
        "restore init container (which only restores when no database exists) brings back the "
        "last good replica. Run after the restore, the check finds corruption too late: the "
        "corrupt file has already been kept."
    )
    remediation = (
        "Add an init container that runs `sqlite3 <db> 'PRAGMA integrity_check'` on each "
        "database and moves a failing file aside (never deletes it), placed in "
        "`initContainers` before the litestream restore; or use statekeeper's agent, whose "
        "`agent restore` does both."
    )
    bad_example = """\
initContainers:
  - name: litestream-restore
    image: litestream/litestream:0.5.2
    args: [restore, -if-db-not-exists, -if-replica-exists, /app/data/kuma.db]
  - name: integrity-check        # too late
    command: [sh, -c, "sqlite3 /app/data/kuma.db 'PRAGMA integrity_check'"]
"""
    good_example = """\
initContainers:
  - name: integrity-check
    command: [sh, -c, "sqlite3 /app/data/kuma.db 'PRAGMA integrity_check' | grep -qx ok || mv ..."]
  - name: litestream-restore
    image: litestream/litestream:0.5.2
    args: [restore, -if-db-not-exists, -if-replica-exists, /app/data/kuma.db]
"""
    details = (
        "An integrity-check init container is a regular init container whose command or "
        "script contains a marker of the policy (`tiers.sqlite.integrity_markers`: "
        "`integrity_check`, `quick_check`, …). One init container doing both, check first "
        "then `litestream restore`, also passes. " + AGENT_HINT
    )
    fix = FixedBy("statekeeper.fix.backup:fix_workload", step=6, batch="per_workload")

    def check(self, inventory: Inventory, policy: Policy) -> Iterable[Violation]:
        markers = policy.tiers.sqlite.integrity_markers
        for analysis in sqlite_workloads(inventory, policy):
            workload = analysis.workload
            covered, gaps = provider_gaps(analysis, "integrity-check")
            if covered:
                continue
            first_restore = min((c.index for c, _ in analysis.restore_inits), default=None)
            combined = [
                c for c, _ in analysis.restore_inits if _checks_before_restore(c.script, markers)
            ]
            if combined:
                continue
            if not analysis.integrity_inits:
                yield from workload_violations(
                    workload,
                    gaps or [f"{describe_app(workload)} has no integrity-check init container "
                             "for Fail-Safe Integrity"],
                )  # fmt: skip
                continue
            check = min(analysis.integrity_inits, key=lambda c: c.index)
            if first_restore is not None and check.index > first_restore:
                restore = next(c for c, _ in analysis.restore_inits if c.index == first_restore)
                yield Violation(
                    workload.resource,
                    f"init container {check.name!r} checks integrity AFTER {restore.name!r} "
                    "restores: a corrupt database is kept instead of restored; move the check "
                    "before the restore",
                    check.path,
                )


def _checks_before_restore(script: str, markers: list[str]) -> bool:
    restore_at = script.find("restore")
    positions = [script.find(m) for m in markers if m in script]
    return bool(positions) and restore_at >= 0 and min(positions) < restore_at
