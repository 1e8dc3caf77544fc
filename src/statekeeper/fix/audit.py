"""The audit `fix` repairs: the same engine as `statekeeper audit`, plus what it detected.

The SK2xx/SK301 fixers need the SQLite databases and config directories the inventory detected
for each workload (so the agent protects exactly what the audit asked for); the rest only needs
the findings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from statekeeper.findings import Finding
from statekeeper.policy.model import Policy

Detected = dict[tuple[str, str | None, str], tuple[list[str], list[str]]]


@dataclass(slots=True)
class AuditOutcome:
    findings: list[Finding]
    detected: Detected = field(default_factory=dict)


def audit_tree(
    root: Path | Sequence[Path], policy: Policy, *, strict_inputs: bool = False, quiet: bool = False
) -> AuditOutcome:
    """Audit `root` (or several paths; rendering kustomization roots) and collect per-workload
    detections.
    Roots that do not build and unreadable files are findings (SK002/SK003) that fix cannot
    fix; `strict_inputs` makes the first of them an InputError instead."""
    from statekeeper.engine import evaluate
    from statekeeper.inventory.build import build_inventory
    from statekeeper.manifests.load import load_sources

    paths = [root] if isinstance(root, Path) else list(root)
    loaded = load_sources(
        [str(p) for p in paths],
        quiet=quiet,
        overlay_envs=policy.overlay_environments(),
        env_paths=policy.environment_paths(),
        strict=strict_inputs,
    )
    inventory = build_inventory(loaded.resources, loaded.other, policy)
    inventory.input_problems = list(loaded.problems)
    report = evaluate(inventory, policy)
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
    return AuditOutcome(findings=list(report.findings), detected=detected)
