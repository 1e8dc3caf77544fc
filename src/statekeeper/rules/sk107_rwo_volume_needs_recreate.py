"""SK107 rwo-volume-needs-recreate: A Deployment mounting a ReadWriteOnce claim uses `strategy:
Recreate`.

The rule's docs page is docs/rules/SK107-rwo-volume-needs-recreate.md, its test cases
tests/rules/cases/SK107.yaml.
"""

from __future__ import annotations

from collections.abc import Iterable

from statekeeper.findings import Severity
from statekeeper.inventory.model import Inventory, Workload, starts_new_pod_first
from statekeeper.policy.model import Policy
from statekeeper.rules.base import FixedBy, Rule, Violation, register

_SINGLE_NODE_MODES = ("ReadWriteOnce", "ReadWriteOncePod")


@register
class RwoVolumeNeedsRecreate(Rule):
    id = "SK107"
    slug = "rwo-volume-needs-recreate"
    severity = Severity.WARNING
    title = "A Deployment mounting a ReadWriteOnce claim uses `strategy: Recreate`"
    rationale = (
        "Strategy §1 puts app data on iSCSI (`synelia-iscsi-*`), a ReadWriteOnce volume: one "
        "node attaches it at a time. A RollingUpdate starts the new pod before the old one "
        "stops, so the new pod waits on a multi-attach error (another node) or, on the same "
        "node, two pods write one SQLite file at once - the corruption Fail-Safe Integrity "
        "then has to repair."
    )
    remediation = (
        "Set `spec.strategy: {type: Recreate}` on the Deployment (or RollingUpdate with "
        "`maxSurge: 0`, which also stops the old pod first). `statekeeper fix` sets Recreate."
    )
    bad_example = """\
kind: Deployment
spec:
  # no strategy: RollingUpdate with 25% surge
  template:
    spec:
      volumes:
        - {name: data, persistentVolumeClaim: {claimName: vaultwarden-data-pvc}}  # RWO
"""
    good_example = """\
kind: Deployment
spec:
  strategy: {type: Recreate}
  template:
    spec:
      volumes:
        - {name: data, persistentVolumeClaim: {claimName: vaultwarden-data-pvc}}  # RWO
"""
    details = (
        "Judges Deployments (StatefulSets replace pods one at a time, old first). A claim is "
        "ReadWriteOnce when its `accessModes` hold ReadWriteOnce or ReadWriteOncePod; a claim "
        "not among the audited files is not judged (its access mode is unknown). A strategy "
        "starts the new pod first when it is absent (Kubernetes' default RollingUpdate, 25% "
        "surge) or a RollingUpdate whose `maxSurge` is above 0."
    )
    # After the backup wiring, which may set the strategy already.
    fix = FixedBy("statekeeper.fix.backup:fix_rollout", step=7)

    def check(self, inventory: Inventory, policy: Policy) -> Iterable[Violation]:
        by_workload: dict[Workload, tuple[Workload, list[str]]] = {}
        for claim in inventory.claims:
            modes = [m for m in claim.access_modes if m in _SINGLE_NODE_MODES]
            if not modes:
                continue
            for workload, _container, mount in claim.mounted_by:
                if workload.kind != "Deployment":
                    continue
                entry = by_workload.setdefault(workload, (workload, []))
                label = f"{claim.name!r} ({modes[0]}, volume {mount.volume!r})"
                if label not in entry[1]:
                    entry[1].append(label)
        for workload, labels in by_workload.values():
            spec = workload.resource.body.get("spec")
            strategy = spec.get("strategy") if isinstance(spec, dict) else None
            if not starts_new_pod_first(strategy):
                continue
            what = (
                "no strategy (RollingUpdate, 25% surge)"
                if not isinstance(strategy, dict) or not strategy
                else "strategy RollingUpdate with surge"
            )
            yield Violation(
                workload.resource,
                f"mounts claim {', '.join(labels)} with {what}: the new pod starts before the "
                "old one stops (multi-attach error, or two writers of one SQLite file); "
                "use strategy Recreate",
                ("spec", "strategy") if isinstance(strategy, dict) else None,
            )
