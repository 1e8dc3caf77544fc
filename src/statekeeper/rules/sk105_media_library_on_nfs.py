"""SK105 media-library-on-nfs: Media libraries are direct NFS mounts, not PVCs.

The rule's docs page is docs/rules/SK105-media-library-on-nfs.md, its test cases
tests/rules/cases/SK105.yaml.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from statekeeper.domain import claim_purpose, is_media_library
from statekeeper.findings import Severity
from statekeeper.inventory.model import Claim, Inventory, is_under
from statekeeper.policy.model import Policy
from statekeeper.rules.base import NotFixable, Rule, Violation, register
from statekeeper.rules.storage import claim_violation


@register
class MediaLibraryOnNfs(Rule):
    id = "SK105"
    slug = "media-library-on-nfs"
    severity = Severity.WARNING
    title = "Media libraries are direct NFS mounts, not PVCs"
    rationale = (
        'Strategy §5: "**Media Library:** Direct NFS mount (No PVC)". A library is terabytes '
        "that already live on the NAS; a claim copies nothing but adds a provisioner, a "
        "reclaim policy and a way to delete it."
    )
    remediation = (
        "Mount the library with an `nfs:` volume (`server:` and `path:` of the NAS export), "
        "read-only where the app only reads it, and delete the claim."
    )
    bad_example = """\
volumes:
  - name: media
    persistentVolumeClaim: {claimName: jellyfin-media-pvc}
"""
    good_example = """\
volumes:
  - name: media
    nfs: {server: nas.home.arpa, path: /volume1/media, readOnly: true}
"""
    details = (
        "Flags a claim whose purpose is a media-library word of the policy "
        "(`media_library.purposes`, unless a sizing category claims the purpose, e.g. "
        "`media-cache`), and a container mount at or below a library path "
        "(`media_library.mount_paths`: `/media` covers `/media/movies`, not `/mediastore`) "
        "backed by anything but an `nfs:` volume."
    )

    fix = NotFixable(
        "a media library moves from a PVC to a direct NFS mount: the server and export path "
        "are yours to choose"
    )

    def check(self, inventory: Inventory, policy: Policy) -> Iterable[Violation]:
        reported: set[Claim] = set()
        for claim in inventory.claims:
            if is_media_library(claim, policy):
                reported.add(claim)
                yield claim_violation(
                    claim,
                    f"claim for media library ({claim_purpose(claim, policy)!r}); "
                    "mount the library directly from NFS instead",
                )
        yield from self._mounts(inventory, policy, reported)

    def _mounts(
        self, inventory: Inventory, policy: Policy, reported: set[Claim]
    ) -> Iterator[Violation]:
        library_paths = [path.rstrip("/") or "/" for path in policy.media_library.mount_paths]
        claims = {(c.scope, c.namespace or "", c.name): c for c in inventory.claims}
        for workload in inventory.workloads:
            for container in workload.all_containers:
                for mount in container.mounts:
                    # A library path or below it (`/media/movies` when `/media` is listed).
                    mount_path = mount.path.rstrip("/") or "/"
                    if not any(is_under(mount_path, lib) for lib in library_paths):
                        continue
                    volume = workload.volumes.get(mount.volume)
                    if volume is None or volume.source == "nfs":
                        continue
                    claim = None
                    if volume.claim_name:
                        claim = claims.get(
                            (workload.scope, workload.namespace or "", volume.claim_name)
                        )
                    if claim is not None:
                        if claim in reported:
                            continue
                        reported.add(claim)
                        yield claim_violation(
                            claim,
                            f"mounted as media library at {mount.path} in {workload.kind} "
                            f"{workload.name!r}; use a direct NFS mount",
                        )
                        continue
                    yield Violation(
                        workload.resource,
                        f"media library {mount.path} in container {container.name!r} is a "
                        f"{volume.source} volume; mount it directly from NFS",
                        (*container.path, "volumeMounts", mount.index),
                    )
