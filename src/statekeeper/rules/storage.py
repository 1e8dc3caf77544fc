"""Strategy §1 (StorageClass per environment), §2 (PVC names) and §5 (sizing, media on NFS)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from statekeeper.domain import claim_purpose, is_media_library, sizing_evidence
from statekeeper.findings import Severity
from statekeeper.inventory.model import Claim, Inventory, Workload, is_under, starts_new_pod_first
from statekeeper.manifests.flux import is_unresolved
from statekeeper.policy.model import Policy, parse_quantity
from statekeeper.rules.base import FixedBy, NotFixable, Rule, Subject, Violation, register

_TABLE = (
    "| Environment | StorageClass | Reclaim Policy |\n"
    "| Production | `synelia-iscsi-retain` | Retain |\n"
    "| Development | `synelia-iscsi-delete` | Delete |\n"
    "| Shared | `nfs-storage` | Retain |"
)


def _claim_violation(claim: Claim, message: str, field: str | None = None) -> Violation:
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


@register
class StorageClassForEnvironment(Rule):
    id = "SK101"
    slug = "storage-class-for-environment"
    severity = Severity.ERROR
    title = "A claim uses its environment's StorageClass"
    rationale = (
        '"We use different StorageClasses based on the environment to balance data safety and '
        'cluster cleanliness." (Strategy §1)\n\n' + _TABLE + "\n\n"
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
            yield _claim_violation(
                claim,
                f"storageClassName {actual!r} in {claim.environment}; the strategy requires "
                f"{env.storage_class!r} ({env.reclaim_policy})",
                "storageClassName",
            )


@register
class ReclaimPolicy(Rule):
    id = "SK102"
    slug = "reclaim-policy"
    severity = Severity.ERROR
    title = "StorageClasses and PersistentVolumes keep the table's reclaim policy"
    rationale = (
        "The strategy pairs each StorageClass with a reclaim policy (§1):\n\n" + _TABLE + "\n\n"
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


@register
class PvcName(Rule):
    id = "SK103"
    slug = "pvc-name"
    severity = Severity.WARNING
    title = "PVC names follow <app>-<purpose>-pvc"
    rationale = (
        '"To ensure clarity and maintainability, PVCs must follow this naming pattern: '
        '`<app-name>-<purpose>-pvc`" (Strategy §2), e.g. `homeassistant-config-pvc`, '
        "`postgresql-data-pvc`, `frigate-clips-pvc`."
    )
    remediation = (
        "Rename the claim to `<app>-<purpose>-pvc` (the app as in its "
        "`app.kubernetes.io/name` label, with or without dashes). Renaming a bound claim means "
        "a new claim and a data copy; for a StatefulSet, name the volumeClaimTemplate after the "
        "purpose only (`data`) and the StatefulSet after the app."
    )
    bad_example = """\
kind: PersistentVolumeClaim
metadata:
  name: mealie-data        # no -pvc suffix
"""
    good_example = """\
kind: PersistentVolumeClaim
metadata:
  name: mealie-data-pvc
"""
    details = (
        "The app of a claim is its `app.kubernetes.io/name` (or `app`) label, else the label "
        "of the workload mounting it, else the name of a mounting workload when the claim is "
        "named `<workload>-...`, else its kustomize app directory (a plain file's directory "
        "counts only when a kustomization lives there). Without an app, any "
        "`<name>-<purpose>-pvc` passes: the rule never judges against a guessed app.\n\n"
        "**StatefulSet volumeClaimTemplates.** Kubernetes names those claims "
        "`<template>-<statefulset>-<ordinal>`, so `<app>-<purpose>-pvc` cannot hold literally. "
        "statekeeper judges the template instead: it complies when the template name is a bare "
        "`<purpose>` (e.g. `data`) and the StatefulSet's name is the app or starts with "
        "`<app>-` (claims then read `data-postgresql-0`: purpose and app, in Kubernetes' "
        "order). A template literally named `<app>-<purpose>-pvc` is accepted too."
    )
    # Renames run first, so that the StorageClass patches (SK101, SK106) target the new names.
    fix = FixedBy("statekeeper.fix.pvc_name:fix", step=1)

    def check(self, inventory: Inventory, policy: Policy) -> Iterable[Violation]:
        naming = policy.pvc_naming
        template_re = re.compile(naming.template_regex)
        for claim in inventory.claims:
            if not claim.name:
                continue
            if claim.template_of:
                ok_literal = naming.name_regex(claim.app).match(claim.name) is not None
                sts = claim.template_of
                app = claim.app
                sts_ok = (
                    app is None
                    or sts in (app, app.replace("-", ""))
                    or sts.startswith((app + "-", app.replace("-", "") + "-"))
                )
                purpose_ok = template_re.match(claim.name) is not None and not (
                    claim.name.endswith("-pvc")
                )
                if ok_literal or (sts_ok and purpose_ok):
                    continue
                problem = (
                    f"StatefulSet {sts!r} is not named after app {app!r}"
                    if not sts_ok
                    else f"template name {claim.name!r} is not a bare <purpose>"
                )
                yield _claim_violation(
                    claim,
                    f"claims will be named {claim.name}-{sts}-<n>: {problem} "
                    f"(see the rule page for how templates are judged)",
                )
                continue
            if naming.name_regex(claim.app).match(claim.name):
                continue
            yield Violation(claim.resource, _pvc_name_message(claim, policy), ("metadata", "name"))


def _pvc_name_message(claim: Claim, policy: Policy) -> str:
    """Why a PVC name fails the pattern, with an example name built from the policy's pattern.

    Without an app the example keeps the `<app>` placeholder: a name made up from the claim's
    own name (`<app>-mealie-data-pvc`) would invent an app that may not exist."""
    naming = policy.pvc_naming
    if is_unresolved(claim.name) or (claim.app and is_unresolved(claim.app)):
        # `${APP}` left by Flux postBuild: a name built from it would be wrong either way.
        return (
            f"PVC name {claim.name!r} does not match {naming.pattern} (it holds a Flux "
            "variable that is not resolved in this repo; no name suggested)"
        )
    if claim.app:
        purpose = claim_purpose(claim, policy) or "data"
        example = naming.pattern.replace("<app>", claim.app).replace("<purpose>", purpose)
        return (
            f"PVC name {claim.name!r} does not match {naming.pattern} "
            f"(app {claim.app!r}, e.g. {example})"
        )
    # The last word of the name is the likeliest purpose (`mealie-data` -> `data`).
    purpose = claim.name.removesuffix("-pvc").rsplit("-", 1)[-1] or "data"
    example = naming.pattern.replace("<purpose>", purpose)
    where = " where <app> is the app's name" if "<app>" in example else ""
    return f"PVC name {claim.name!r} does not match {naming.pattern}; e.g. {example}{where}"


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
            yield _claim_violation(
                claim,
                f"requests {claim.request}; {label} ({category.name}: {evidence}) needs {wanted}",
                "resources",
            )


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
        reported: set[int] = set()
        for claim in inventory.claims:
            if is_media_library(claim, policy):
                reported.add(id(claim))
                yield _claim_violation(
                    claim,
                    f"claim for media library ({claim_purpose(claim, policy)!r}); "
                    "mount the library directly from NFS instead",
                )
        yield from self._mounts(inventory, policy, reported)

    def _mounts(
        self, inventory: Inventory, policy: Policy, reported: set[int]
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
                        if id(claim) in reported:
                            continue
                        reported.add(id(claim))
                        yield _claim_violation(
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
            yield _claim_violation(
                claim, f"no storageClassName: the cluster default class decides{hint}"
            )


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
        by_workload: dict[int, tuple[Workload, list[str]]] = {}
        for claim in inventory.claims:
            modes = [m for m in claim.access_modes if m in _SINGLE_NODE_MODES]
            if not modes:
                continue
            for workload, _container, mount in claim.mounted_by:
                if workload.kind != "Deployment":
                    continue
                entry = by_workload.setdefault(id(workload), (workload, []))
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
