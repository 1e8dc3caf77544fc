"""The audit `fix` repairs: the same engine as `statekeeper audit`, plus what it detected.

The SK2xx/SK301 fixers need the SQLite databases and config directories the inventory detected
for each workload (so the agent protects exactly what the audit asked for), and SK104's the size
each claim requests per environment and the sizing category the audit judged it by; the rest
only needs the findings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from statekeeper.findings import Finding
from statekeeper.policy.model import Policy

if TYPE_CHECKING:
    from statekeeper.inventory.model import Inventory

Detected = dict[tuple[str, str | None, str], tuple[list[str], list[str]]]


class JudgedSize(NamedTuple):
    """A PVC as SK104 judged it in one environment."""

    environment: str | None
    request: str  # spec.resources.requests.storage as rendered there
    category: str | None  # the sizing category it was judged by (purpose, mounts, image)


# (namespace, name) of a PVC -> how it was judged in each environment it was seen in.
ClaimSizes = dict[tuple[str | None, str], list[JudgedSize]]


@dataclass(slots=True)
class AuditOutcome:
    findings: list[Finding]
    detected: Detected = field(default_factory=dict)
    claim_sizes: ClaimSizes = field(default_factory=dict)


def audit_tree(
    root: Path | Sequence[Path], policy: Policy, *, strict_inputs: bool = False, quiet: bool = False
) -> AuditOutcome:
    """Audit `root` (or several paths; rendering kustomization roots) with `run_audit` and
    collect what the fixers need from its inventory (workload detections, claim sizes).
    Roots that do not build and unreadable files are findings (SK002/SK003) that fix cannot
    fix; `strict_inputs` makes the first of them an InputError instead."""
    from statekeeper.engine import run_audit

    paths = [root] if isinstance(root, Path) else list(root)
    outcome = AuditOutcome(findings=[])

    def keep(inventory: Inventory) -> None:
        outcome.detected.update(detections(inventory))
        outcome.claim_sizes.update(judged_sizes(inventory, policy))

    report = run_audit(
        [str(p) for p in paths],
        policy=policy,
        strict_inputs=strict_inputs,
        quiet=quiet,
        on_inventory=keep,
    )
    outcome.findings = list(report.findings)
    return outcome


def audit_findings(paths: Sequence[Path], policy: Policy) -> list[Finding]:
    """The findings alone, quietly: how `fix` re-audits its scratch copy to verify edits (the
    fixers' inventory details are not needed there)."""
    from statekeeper.engine import run_audit

    return list(run_audit([str(p) for p in paths], policy=policy, quiet=True).findings)


def judged_sizes(inventory: Inventory, policy: Policy) -> ClaimSizes:
    """Each PVC's requested size and sizing category per environment, as SK104 sees them."""
    from statekeeper.domain import sizing_evidence

    sizes: ClaimSizes = {}
    for claim in inventory.claims:
        if claim.template_of or not claim.request:
            continue  # a volumeClaimTemplate is resized by hand (claims exist per pod)
        category = sizing_evidence(claim, policy)[0]
        judged = JudgedSize(
            claim.environment, str(claim.request), category.name if category else None
        )
        sizes.setdefault((claim.namespace, claim.name), []).append(judged)
    return sizes


def detections(inventory: Inventory) -> Detected:
    """(kind, namespace, name) of each workload -> (its SQLite paths, its config paths)."""
    detected: Detected = {}
    for workload in inventory.workloads:
        key = (workload.kind, workload.namespace, workload.name)
        dbs, configs = detected.setdefault(key, ([], []))
        for db in workload.sqlite_dbs:
            if db.path not in dbs:
                dbs.append(db.path)
        for path in workload.config_paths:
            if path not in configs:
                configs.append(path)
    return detected
