"""SK104 pvc-size: PVC sizes follow the sizing guidelines.

The rule's docs page is docs/rules/SK104-pvc-size.md, its test cases
tests/rules/cases/SK104.yaml.
"""

from __future__ import annotations

from collections.abc import Iterable

from statekeeper.domain import sizing_evidence
from statekeeper.findings import Severity
from statekeeper.inventory.model import Inventory
from statekeeper.policy.model import Policy, parse_quantity
from statekeeper.rules.base import FixedBy, Rule, Violation, register
from statekeeper.rules.storage import claim_violation


@register
class PvcSize(Rule):
    id = "SK104"
    slug = "pvc-size"
    severity = Severity.WARNING
    title = "PVC sizes follow the sizing guidelines"
    rationale = (
        'Strategy §5, Storage Sizing Guidelines: "**Config-only:** 1Gi - 2Gi; **Databases:** '
        '10Gi - 20Gi (Shared PG uses 50Gi); **Media Cache:** 50Gi - 100Gi". An undersized '
        "claim fills up and stops the app; an oversized one wastes the iSCSI pool."
    )
    remediation = (
        "Request a size inside the category's range, or, when the app really needs more, keep "
        'the size and say why: `statekeeper.io/ignore: "SK104: <measured need>"`.'
    )
    bad_example = """\
kind: PersistentVolumeClaim
metadata: {name: jellyfin-cache-pvc}
spec:
  resources: {requests: {storage: 20Gi}}   # media cache: 50-100Gi
"""
    good_example = """\
kind: PersistentVolumeClaim
metadata: {name: jellyfin-cache-pvc}
spec:
  resources: {requests: {storage: 50Gi}}
"""
    details = (
        "The category comes from the policy's `sizing` list: first by the claim's purpose "
        "(`config` → config-only, `cache` → media cache, `db` → database; the shared "
        "PostgreSQL by its app name), else by what mounts it (a database image, or a detected "
        "SQLite database on the volume → database). A category's `mount_paths` count like "
        "purpose words (`/cache`, `/transcode` → media cache); the media cache also needs a "
        "media server's image among the containers mounting the claim (`needs_image`), so a "
        "`home-assistant-cache` claim is not one. The message names the evidence (purpose, "
        "mount path and image). Claims of no category are not judged."
    )
    fix = FixedBy("statekeeper.fix.claims:fix_size", step=4)

    def check(self, inventory: Inventory, policy: Policy) -> Iterable[Violation]:
        for claim in inventory.claims:
            size = parse_quantity(claim.request)
            if size is None:
                continue
            category, evidence = sizing_evidence(claim, policy)
            if category is None or category.min_bytes <= size <= category.max_bytes:
                continue
            wanted = (
                category.min if category.min == category.max else f"{category.min}–{category.max}"
            )
            label = category.description or category.name
            yield claim_violation(
                claim,
                f"requests {claim.request}; {label} ({category.name}: {evidence}) needs {wanted}",
                "resources",
            )
