"""What the claim rules SK101-SK107 share: strategy §1 (StorageClass per environment), §2 (PVC
names) and §5 (sizing, media on NFS). The domain words (purpose, sizing category, media
library) are in statekeeper/domain.py; each rule is in its own sk1##_*.py file."""

from __future__ import annotations

from statekeeper.inventory.model import Claim
from statekeeper.rules.base import Subject, Violation

STORAGE_CLASS_TABLE = (
    "| Environment | StorageClass | Reclaim Policy |\n"
    "| Production | `synelia-iscsi-retain` | Retain |\n"
    "| Development | `synelia-iscsi-delete` | Delete |\n"
    "| Shared | `nfs-storage` | Retain |"
)


def claim_violation(claim: Claim, message: str, field: str | None = None) -> Violation:
    """A violation about a claim, at its spec (or the spec's `field`). A volumeClaimTemplate is
    reported on its StatefulSet, with the claim's app, its message saying which template."""
    path = (*claim.spec_path, field) if field else claim.spec_path
    if not claim.template_of:
        return Violation(claim.resource, message, path)
    return Violation(
        _template_subject(claim), f"volumeClaimTemplate {claim.name!r}: {message}", path
    )


def _template_subject(claim: Claim) -> Subject:
    return Subject(claim.kind, claim.subject_name, claim.resource, claim.namespace,
                   claim.app, claim.environment)  # fmt: skip
