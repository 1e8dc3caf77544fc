"""SK102 reclaim-policy: StorageClasses and PersistentVolumes keep the table's reclaim policy.

The rule's docs page is docs/rules/SK102-reclaim-policy.md, its test cases
tests/rules/cases/SK102.yaml.
"""

from __future__ import annotations

from collections.abc import Iterable

from statekeeper.findings import Severity
from statekeeper.inventory.model import Inventory
from statekeeper.policy.model import Policy
from statekeeper.rules.base import FixedBy, Rule, Violation, register
from statekeeper.rules.storage import STORAGE_CLASS_TABLE


@register
class ReclaimPolicy(Rule):
    id = "SK102"
    slug = "reclaim-policy"
    severity = Severity.ERROR
    title = "StorageClasses and PersistentVolumes keep the table's reclaim policy"
    rationale = (
        "The strategy pairs each StorageClass with a reclaim policy (§1):\n\n"
        + STORAGE_CLASS_TABLE
        + "\n\n"
        'Production must "Prevent data loss if PVC is accidentally deleted" (Retain); the '
        'shared class serves "media and logs" and must Retain too; development must "Ensure '
        'automatic cleanup of volumes after tests" (Delete).'
    )
    remediation = (
        "Set the StorageClass's `reclaimPolicy` (and an existing PersistentVolume's "
        "`spec.persistentVolumeReclaimPolicy`) to the value in the table. A StorageClass's "
        "reclaimPolicy cannot be changed in place: recreate the class; patch bound PVs with "
        '`kubectl patch pv <name> -p \'{"spec":{"persistentVolumeReclaimPolicy":"Retain"}}\'`.'
    )
    bad_example = """\
kind: StorageClass
metadata: {name: nfs-storage}
reclaimPolicy: Delete
"""
    good_example = """\
kind: StorageClass
metadata: {name: nfs-storage}
reclaimPolicy: Retain
"""
    details = (
        "A StorageClass named in the table is judged by its row, whatever the environment it "
        "was found in (a missing `reclaimPolicy` is Kubernetes' default, Delete). A "
        "PersistentVolume is judged by the row of its `storageClassName`, or, without a known "
        "class, by its environment's row (a missing field is the API default, Retain)."
    )
    fix = FixedBy("statekeeper.fix.claims:fix_reclaim", step=3)

    def check(self, inventory: Inventory, policy: Policy) -> Iterable[Violation]:
        for storage_class in inventory.storage_classes:
            row_env = policy.storage_class_environment(storage_class.name)
            if row_env is None:
                continue
            expected = policy.environments[row_env].reclaim_policy
            if storage_class.reclaim_policy != expected:
                yield Violation(
                    storage_class.resource,
                    f"StorageClass {storage_class.name!r} has reclaimPolicy "
                    f"{storage_class.reclaim_policy}; the {row_env} class must be {expected}",
                    ("reclaimPolicy",),
                )
        for volume in inventory.persistent_volumes:
            row_env = policy.storage_class_environment(volume.storage_class or "")
            row_env = row_env or volume.environment
            env = policy.environments.get(row_env or "")
            actual = volume.reclaim_policy or "Retain"
            if env is None or actual == env.reclaim_policy:
                continue
            why = f"class {volume.storage_class!r}" if volume.storage_class else row_env
            yield Violation(
                volume.resource,
                f"PersistentVolume {volume.resource.name!r} has persistentVolumeReclaimPolicy "
                f"{actual}; {why} requires {env.reclaim_policy}",
                ("spec", "persistentVolumeReclaimPolicy"),
            )
