"""SK101 storage-class-for-environment: A claim uses its environment's StorageClass.

The rule's docs page is docs/rules/SK101-storage-class-for-environment.md, its test cases
tests/rules/cases/SK101.yaml.
"""

from __future__ import annotations

from collections.abc import Iterable

from statekeeper.findings import Severity
from statekeeper.inventory.model import Inventory
from statekeeper.policy.model import Policy
from statekeeper.rules.base import FixedBy, Rule, Violation, register
from statekeeper.rules.storage import STORAGE_CLASS_TABLE, claim_violation


@register
class StorageClassForEnvironment(Rule):
    id = "SK101"
    slug = "storage-class-for-environment"
    severity = Severity.ERROR
    title = "A claim uses its environment's StorageClass"
    rationale = (
        '"We use different StorageClasses based on the environment to balance data safety and '
        'cluster cleanliness." (Strategy §1)\n\n' + STORAGE_CLASS_TABLE + "\n\n"
        "A production claim on the Delete class loses its data with the claim; a development "
        "claim on the Retain class leaves volumes behind after every test."
    )
    remediation = (
        "Set `spec.storageClassName` to the class of the claim's environment (production: "
        "`synelia-iscsi-retain`, development: `synelia-iscsi-delete`); use `nfs-storage` only "
        "for shared (ReadWriteMany) access. In kustomize, patch the class per overlay."
    )
    bad_example = """\
# overlays/prod
kind: PersistentVolumeClaim
metadata: {name: mealie-data-pvc}
spec:
  storageClassName: synelia-iscsi-delete
"""
    good_example = """\
# overlays/prod
kind: PersistentVolumeClaim
metadata: {name: mealie-data-pvc}
spec:
  storageClassName: synelia-iscsi-retain
"""
    details = (
        "Judges claims (PVCs and StatefulSet volumeClaimTemplates) that name a class "
        "explicitly and whose environment is known; a claim without `storageClassName` is "
        "SK106's, and an empty class (`\"\"`, static binding) is left to SK102's check of the "
        "PersistentVolume. A claim on the shared environment's class is accepted in any "
        "environment when it asks for shared access (`shared_storage.access_modes`)."
    )
    fix = FixedBy("statekeeper.fix.storage_class:fix", step=2)

    def check(self, inventory: Inventory, policy: Policy) -> Iterable[Violation]:
        shared = policy.environments.get(policy.shared_storage.environment)
        for claim in inventory.claims:
            actual = claim.storage_class
            env = policy.environments.get(claim.environment or "")
            if not actual or env is None or actual == env.storage_class:
                continue
            if (
                shared is not None
                and actual == shared.storage_class
                and set(claim.access_modes) & set(policy.shared_storage.access_modes)
            ):
                continue
            yield claim_violation(
                claim,
                f"storageClassName {actual!r} in {claim.environment}; the strategy requires "
                f"{env.storage_class!r} ({env.reclaim_policy})",
                "storageClassName",
            )
