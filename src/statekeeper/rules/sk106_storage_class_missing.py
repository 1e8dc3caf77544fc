"""SK106 storage-class-missing: Claims name their StorageClass.

The rule's docs page is docs/rules/SK106-storage-class-missing.md, its test cases
tests/rules/cases/SK106.yaml.
"""

from __future__ import annotations

from collections.abc import Iterable

from statekeeper.findings import Severity
from statekeeper.inventory.model import Inventory
from statekeeper.policy.model import Policy
from statekeeper.rules.base import FixedBy, Rule, Violation, register
from statekeeper.rules.storage import claim_violation


@register
class StorageClassMissing(Rule):
    id = "SK106"
    slug = "storage-class-missing"
    severity = Severity.WARNING
    title = "Claims name their StorageClass"
    rationale = (
        '"We use different StorageClasses based on the environment" (Strategy §1). A claim '
        "without `storageClassName` gets whatever the cluster default is: a silent choice of "
        "reclaim policy that nobody reviewed."
    )
    remediation = "Set `spec.storageClassName` explicitly to the class of the claim's environment."
    bad_example = """\
kind: PersistentVolumeClaim
metadata: {name: syncthing-config-pvc}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
"""
    good_example = """\
kind: PersistentVolumeClaim
metadata: {name: syncthing-config-pvc}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
  storageClassName: synelia-iscsi-retain
"""
    details = "Applies to PVCs and StatefulSet volumeClaimTemplates, in every environment."
    fix = FixedBy("statekeeper.fix.storage_class:fix", step=2)

    def check(self, inventory: Inventory, policy: Policy) -> Iterable[Violation]:
        for claim in inventory.claims:
            if claim.has_storage_class:
                continue
            env = policy.environments.get(claim.environment or "")
            hint = f" (in {claim.environment}: {env.storage_class!r})" if env else ""
            yield claim_violation(
                claim, f"no storageClassName: the cluster default class decides{hint}"
            )
