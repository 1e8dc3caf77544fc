"""Build the inventory from loaded resources, once, with the indexes rules need.

Environment of a resource, in order: `--env`, the overlay it was rendered from
(`Origin.environment`), the `environment` label of its Namespace, the policy's namespace
mapping. An unknown environment is never guessed: it stays None and one Note per app says so.
App of a resource: label `app.kubernetes.io/name`, label `app`, the kustomize app directory
(`Origin.source_dir`: a rendered object's source directory other than the overlay, or a
plain file's directory holding a kustomization). App of a claim: its labels, else the labels of
the workloads mounting it, else the name of a mounting workload when the claim is named
`<workload>-…` (that workload's app too, when it has none), else a directory as above. Otherwise
the app is unknown (None), never a guess such as `.` for the working directory.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from statekeeper.findings import Note
from statekeeper.inventory.annotations import (
    pod_template,
    subject_annotations,
    template_annotations,
)
from statekeeper.inventory.detect import detect_state
from statekeeper.inventory.model import (
    WORKLOAD_KINDS,
    App,
    Claim,
    Container,
    EnvVar,
    FieldPath,
    Inventory,
    Mount,
    NamespaceInfo,
    PersistentVolumeInfo,
    StorageClassInfo,
    VeleroSchedule,
    Volume,
    Workload,
)
from statekeeper.inventory.providers import classify_container, detect_providers
from statekeeper.inventory.shell import container_script
from statekeeper.manifests.load import KUSTOMIZATION_NAMES
from statekeeper.manifests.resource import Origin, Resource
from statekeeper.policy.model import STARTUP_TIERS, Policy

_CLUSTER_SCOPED = frozenset(
    {"Namespace", "StorageClass", "PersistentVolume", "ClusterRole", "ClusterRoleBinding",
     "CustomResourceDefinition", "PriorityClass", "IngressClass", "VolumeSnapshotClass"}
)  # fmt: skip
_VOLUME_SOURCES = (
    "persistentVolumeClaim", "emptyDir", "hostPath", "nfs", "configMap", "secret", "ephemeral",
    "projected", "downwardAPI", "csi", "iscsi", "cephfs", "rbd", "glusterfs", "image",
)  # fmt: skip


def build_inventory(
    resources: Sequence[Resource],
    other: Sequence[Resource],
    policy: Policy,
    *,
    env: str | None = None,
) -> Inventory:
    """Index the resources and run detection. `env` (from `--env`) overrides every resource's
    environment; `other` holds non-Kubernetes documents (e.g. velero Helm values).

    The build is a sequence of named passes, each reading what the previous ones filled."""
    inv = Inventory(resources=list(resources), other=list(other))
    _has_kustomization.cache_clear()  # a directory is looked at once per build, then cached
    forced = _forced_environment(inv, policy, env)
    _index_resources(inv, policy, forced)
    claims_by_name = _read_objects(inv)
    _read_other_documents(inv, policy, forced)
    for workload in inv.workloads:
        _detect_workload(inv, workload, policy)
    # Folders named after an environment are structure, never an app's name.
    env_folders = frozenset(policy.overlay_environments())
    _mount_claims(inv, claims_by_name, env_folders)
    _assign_apps(inv, env_folders)
    _collect_apps(inv)
    _collect_namespaces(inv)
    _unknown_environment_notes(inv)
    # One note per fact: a workload rendered in two overlays from one file says it once.
    unique = {(n.message, n.file, n.line): n for n in inv.notes}
    inv.notes = list(unique.values())
    return inv


ClaimsByName = dict[tuple[str | None, str, str], Claim]


def _forced_environment(inv: Inventory, policy: Policy, env: str | None) -> str | None:
    """The environment `--env` imposes on every resource (a name the policy does not know is
    kept, and said once)."""
    forced = _canonical(policy, env) if env else None
    if env and forced is None:
        forced = env
        inv.notes.append(
            Note(
                f"--env {env!r} is not an environment of the policy "
                f"({', '.join(sorted(policy.environments))}); storage classes not judged"
            )
        )
    return forced


def _index_resources(inv: Inventory, policy: Policy, forced: str | None) -> None:
    """Pass 1: identities, environments, ConfigMaps by name."""
    namespace_labels = _namespace_environments(inv.resources, policy)
    for resource in inv.resources:
        inv.by_key.setdefault(_identity(resource), []).append(resource)
        inv.environment_of[resource] = forced or _environment(resource, policy, namespace_labels)
        if resource.kind == "ConfigMap":
            inv.config_maps[(_scope(resource), resource.namespace or "", resource.name)] = resource
            inv.config_maps.setdefault((None, resource.namespace or "", resource.name), resource)


def _read_objects(inv: Inventory) -> ClaimsByName:
    """Pass 2: workloads, claims, StorageClasses, PVs, Velero schedules and snapshot locations
    (CRs, and the velero chart's values in HelmReleases and Argo CD Applications)."""
    claims_by_name: ClaimsByName = {}
    for resource in inv.resources:
        kind = resource.kind
        environment = inv.environment_of[resource]
        if kind in WORKLOAD_KINDS:
            workload = _workload(resource, environment)
            if workload is not None:
                workload.app = _label_app(resource) or _template_app(resource)
                inv.workloads.append(workload)
                for claim in workload.claim_templates:
                    inv.claims.append(claim)
        elif kind == "PersistentVolumeClaim":
            spec = resource.body.get("spec")
            claim = Claim(
                resource=resource,
                name=resource.name,
                namespace=resource.namespace,
                spec=spec if isinstance(spec, dict) else {},
                spec_path=("spec",),
                scope=_scope(resource),
                app=_label_app(resource),
                environment=environment,
            )
            inv.claims.append(claim)
            claims_by_name[(claim.scope, claim.namespace or "", claim.name)] = claim
        elif kind == "StorageClass":
            inv.storage_classes.append(StorageClassInfo(resource, environment))
        elif kind == "PersistentVolume":
            inv.persistent_volumes.append(PersistentVolumeInfo(resource, environment))
        elif resource.api_version.startswith("velero.io/") and kind == "Schedule":
            inv.schedules.append(_velero_cr(resource, environment))
        elif resource.api_version.startswith("velero.io/") and kind == "VolumeSnapshotLocation":
            inv.snapshot_locations.append(f"VolumeSnapshotLocation {resource.name}")
        elif kind == "HelmRelease":
            values = _dig(resource.body, "spec", "values")
            inv.schedules.extend(_velero_values(resource, values, environment))
            inv.snapshot_locations.extend(_snapshot_locations(resource, values))
        elif kind == "Application" and resource.api_version.startswith("argoproj.io/"):
            values = _dig(resource.body, "spec", "source", "helm", "valuesObject")
            inv.schedules.extend(_velero_values(resource, values, environment))
            inv.snapshot_locations.extend(_snapshot_locations(resource, values))
    return claims_by_name


def _read_other_documents(inv: Inventory, policy: Policy, forced: str | None) -> None:
    """Pass 3: non-Kubernetes documents: velero chart values files, else a note."""
    for doc in inv.other:
        found = _velero_values(doc, doc.body, _canonical(policy, doc.origin.environment) or forced)
        locations = _snapshot_locations(doc, doc.body)
        inv.snapshot_locations.extend(locations)
        if found or locations:
            inv.schedules.extend(found)
        else:
            inv.notes.append(
                Note("skipped: not a Kubernetes object", doc.origin.file, doc.origin.line)
            )


def _detect_workload(inv: Inventory, workload: Workload, policy: Policy) -> None:
    """Pass 4, per workload: what each container runs and is, the backup providers, the
    SQLite and /config state, and the notes about evidence that decided (or could not)."""
    for container in workload.all_containers:
        _add_env_from_config_maps(container, workload, inv)
        container.script = container_script(container, workload, inv.config_map)
        container.role = classify_container(container, policy)
    detect_providers(workload, policy)
    detect_state(workload, policy, inv.config_map)
    if not workload.long_running:
        return
    where = (workload.resource.origin.file, workload.resource.origin.line)
    for use in workload.providers:
        side = use.container
        if side is None or not side.native_sidecar or not use.tiers & STARTUP_TIERS:
            continue
        if "startupProbe" not in side.raw:
            inv.notes.append(
                Note(
                    f"{workload.kind} {workload.name}: {use.provider} native sidecar "
                    f"{side.name!r} restores at start but has no startupProbe: Kubernetes "
                    "starts the next container once a native sidecar has started, which "
                    "may be before its restore ends",
                    *where,
                )
            )
    if workload.server_database:
        inv.notes.append(
            Note(
                f"{workload.kind} {workload.name}: not judged as a SQLite app: "
                f"{workload.server_database}",
                *where,
            )
        )
    if workload.sqlite_unknown:
        inv.notes.append(
            Note(
                f"{workload.kind} {workload.name}: {workload.sqlite_unknown}; SQLite backup "
                "rules not applied (set statekeeper.io/sqlite to decide)",
                *where,
            )
        )


def _mount_claims(
    inv: Inventory, claims_by_name: ClaimsByName, env_folders: frozenset[str]
) -> None:
    """Pass 5: which workload container mounts which claim (PVCs of the same overlay and
    namespace, and a StatefulSet's own templates); a workload's app from its directory last."""
    for workload in inv.workloads:
        source_app = _source_app(workload.resource, env_folders)
        for container in workload.all_containers:
            for mount in container.mounts:
                volume = workload.volumes.get(mount.volume)
                if volume is None or volume.claim_name is None:
                    continue
                mounted = claims_by_name.get(
                    (workload.scope, workload.namespace or "", volume.claim_name)
                )
                if mounted is not None:
                    mounted.mounted_by.append((workload, container, mount))
        for claim in workload.claim_templates:
            for container in workload.all_containers:
                for mount in container.mounts:
                    if mount.volume == claim.name:
                        claim.mounted_by.append((workload, container, mount))
        workload.app = workload.app or source_app


def _assign_apps(inv: Inventory, env_folders: frozenset[str]) -> None:
    """Pass 6: the app of each claim (see the module docstring) and of every resource."""
    for claim in inv.claims:
        if claim.app is None:
            claim.app = _claim_app(claim, env_folders)
    for workload in inv.workloads:
        for claim in workload.claim_templates:
            claim.app = claim.app or workload.app
        inv.app_of[workload.resource] = workload.app
    for claim in inv.claims:
        inv.app_of.setdefault(claim.resource, claim.app)
    for resource in inv.resources:
        if resource not in inv.app_of:
            inv.app_of[resource] = _label_app(resource) or _source_app(resource, env_folders)


# ---------------------------------------------------------------------------------------------
# environment and app


def _canonical(policy: Policy, name: str | None) -> str | None:
    return policy.canonical_environment(name) if name else None


def _scope(resource: Resource) -> str | None:
    """Resources rendered from one overlay see each other; raw files share the None scope."""
    return resource.origin.overlay


def _identity(resource: Resource) -> tuple[str, str, str]:
    namespace = "" if resource.kind in _CLUSTER_SCOPED else (resource.namespace or "")
    return (resource.kind, namespace, resource.name)


def _namespace_environments(
    resources: Sequence[Resource], policy: Policy
) -> dict[tuple[str | None, str], str]:
    """(scope, namespace) -> environment from Namespace objects' `environment` label."""
    found: dict[tuple[str | None, str], str] = {}
    for resource in resources:
        if resource.kind != "Namespace":
            continue
        label = resource.labels.get(policy.environment_label)
        env = _canonical(policy, label)
        if env is not None:
            found[(_scope(resource), resource.name)] = env
            found.setdefault((None, resource.name), env)
    return found


def _environment(
    resource: Resource, policy: Policy, namespace_labels: dict[tuple[str | None, str], str]
) -> str | None:
    origin_env = resource.origin.environment
    if origin_env:
        return _canonical(policy, origin_env) or origin_env
    namespace = resource.name if resource.kind == "Namespace" else resource.namespace
    if namespace is None:
        return None
    labelled = namespace_labels.get((_scope(resource), namespace)) or namespace_labels.get(
        (None, namespace)
    )
    if labelled:
        return labelled
    mapped = policy.namespace_environments.get(namespace)
    return _canonical(policy, mapped) if mapped else None


_APP_LABELS = (
    "app.kubernetes.io/name",
    "app",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/part-of",
)
# Folders that organise a repository rather than name an app (environment names too).
_STRUCTURAL_WORDS = (
    "base bases overlay overlays app apps application applications component components "
    "cluster clusters environment environments env envs k8s kubernetes kube manifests deploy "
    "deployment deployments resources resource config configs pvc pvcs volumes storage "
    "templates template charts chart helm kustomize flux argocd argo gitops infra "
    "infrastructure platform system core common shared services workloads src release "
    "releases default namespaces"
)
_STRUCTURAL_FOLDERS = frozenset(_STRUCTURAL_WORDS.split())


def _label_app(resource: Resource) -> str | None:
    labels = resource.labels
    for label in _APP_LABELS:
        if labels.get(label):
            return labels[label]
    return None


def _template_app(resource: Resource) -> str | None:
    template = pod_template(resource.body, resource.kind)
    if template is None:
        return None
    labels = _dig(template[0], "metadata", "labels")
    if isinstance(labels, dict):
        for label in _APP_LABELS:
            if labels.get(label):
                return str(labels[label])
    return None


def _source_app(resource: Resource, environments: frozenset[str] = frozenset()) -> str | None:
    """The kustomize app directory's name: the directory of a rendered object's source file,
    or of a plain file when a kustomization lives there, skipping structural folder names
    (`base`, `app`, `overlays`, `pvc`, environment names, ...) upwards, never at or above the
    directory the user audited. Any other directory (`.`, `manifests`, `/tmp/x`) says nothing
    about the app. Cluster-scoped objects (StorageClasses, PVs, Namespaces) belong to no app
    through their directory."""
    source_dir = resource.origin.source_dir
    if not source_dir or resource.kind in _CLUSTER_SCOPED:
        return None
    directory = posixpath.normpath(str(source_dir).replace("\\", "/"))
    if resource.origin.overlay is None and not _has_kustomization(directory):
        return None
    tree_root = resource.origin.tree_root
    stop = posixpath.normpath(str(tree_root).replace("\\", "/")) if tree_root else None
    while directory not in ("", ".", "..", "/") and directory != stop:
        name = posixpath.basename(directory)
        if name.lower() not in _STRUCTURAL_FOLDERS and name.lower() not in environments:
            return name if name not in ("", ".", "..") else None
        if stop is None:
            return None  # no audited root known: only the folder itself may name the app
        directory = posixpath.dirname(directory)
    return None


@lru_cache(maxsize=1024)
def _has_kustomization(directory: str) -> bool:
    return any((Path(directory) / name).is_file() for name in KUSTOMIZATION_NAMES)


def _claim_app(claim: Claim, env_folders: frozenset[str]) -> str | None:
    """The app of a claim without an app label (see the module docstring for the order)."""
    mounting = [w for w, _, _ in claim.mounted_by]
    labelled = sorted(
        {a for w in mounting if (a := _label_app(w.resource) or _template_app(w.resource))}
    )
    if labelled:
        return labelled[0]
    for workload in sorted(mounting, key=lambda w: -len(w.name)):  # the longest name wins
        if claim.name.startswith(f"{workload.name}-"):
            workload.app = workload.app or workload.name
            return workload.name
    by_directory = sorted({w.app for w in mounting if w.app})
    return by_directory[0] if by_directory else _source_app(claim.resource, env_folders)


# ---------------------------------------------------------------------------------------------
# workloads


def read_workload(body: dict[str, Any], policy: Policy, file: str = "<source>") -> Workload | None:
    """One workload manifest read on its own, its containers' roles recognised as the audit
    recognises them (what ConfigMaps add, scripts and `envFrom` values, stays unknown). For
    `fix`, which edits source documents rather than the rendered objects; each `Container.raw`
    is that container's own mapping inside `body`."""
    workload = _workload(Resource(body=body, origin=Origin(file=file)), None)
    if workload is None:
        return None
    for container in workload.all_containers:
        container.script = " ".join(container.argv)
        container.role = classify_container(container, policy)
    return workload


def _workload(resource: Resource, environment: str | None) -> Workload | None:
    found = pod_template(resource.body, resource.kind)
    if found is None:
        return None
    template, template_path = found
    pod_spec = template.get("spec")
    if not isinstance(pod_spec, dict):
        return None
    pod_path = (*template_path, "spec")
    annotations = subject_annotations(resource)  # the object's, over its pod template's
    # What a downward-API fieldRef reads: the pod's own annotations (the template's).
    pod_annotations = (
        resource.annotations if resource.kind == "Pod" else template_annotations(resource)
    )

    volumes: dict[str, Volume] = {}
    raw_volumes = pod_spec.get("volumes")
    for index, raw in enumerate(raw_volumes if isinstance(raw_volumes, list) else []):
        if isinstance(raw, dict) and raw.get("name"):
            volumes[str(raw["name"])] = _volume(raw, index)

    workload = Workload(
        resource=resource,
        pod_path=pod_path,
        scope=_scope(resource),
        containers=_containers(pod_spec, "containers", pod_path, pod_annotations, init=False),
        init_containers=_containers(
            pod_spec, "initContainers", pod_path, pod_annotations, init=True
        ),
        volumes=volumes,
        annotations=annotations,
        environment=environment,
    )
    if resource.kind == "StatefulSet":
        templates = _dig(resource.body, "spec", "volumeClaimTemplates")
        for index, raw in enumerate(templates if isinstance(templates, list) else []):
            if not isinstance(raw, dict):
                continue
            name = str(_dig(raw, "metadata", "name") or "")
            spec = raw.get("spec")
            workload.claim_templates.append(
                Claim(
                    resource=resource,
                    name=name,
                    namespace=resource.namespace,
                    spec=spec if isinstance(spec, dict) else {},
                    spec_path=("spec", "volumeClaimTemplates", index, "spec"),
                    scope=workload.scope,
                    template_of=resource.name,
                    environment=environment,
                )
            )
            if name and name not in volumes:
                volumes[name] = Volume(name=name, source="volumeClaimTemplate", raw=raw)
    return workload


def _volume(raw: dict[str, Any], index: int) -> Volume:
    source = next((key for key in _VOLUME_SOURCES if key in raw), "")
    if not source:
        source = next((str(key) for key in raw if key != "name"), "unknown")
    volume = Volume(name=str(raw["name"]), source=source, raw=raw, index=index)
    if source == "persistentVolumeClaim":
        claim = _dig(raw, "persistentVolumeClaim", "claimName")
        volume.claim_name = str(claim) if claim else None
    elif source == "configMap":
        name = _dig(raw, "configMap", "name")
        volume.config_map = str(name) if name else None
    return volume


_ANNOTATION_FIELD = re.compile(r"""^metadata\.annotations\[['"](?P<key>[^'"]+)['"]\]$""")


def _containers(
    pod_spec: dict[str, Any],
    key: str,
    pod_path: FieldPath,
    pod_annotations: dict[str, str],
    *,
    init: bool,
) -> list[Container]:
    raw_list = pod_spec.get(key)
    result: list[Container] = []
    for index, raw in enumerate(raw_list if isinstance(raw_list, list) else []):
        if not isinstance(raw, dict):
            continue
        mounts: list[Mount] = []
        raw_mounts = raw.get("volumeMounts")
        for m_index, m in enumerate(raw_mounts if isinstance(raw_mounts, list) else []):
            if isinstance(m, dict) and m.get("name") and m.get("mountPath"):
                mounts.append(
                    Mount(
                        volume=str(m["name"]),
                        path=posixpath.normpath(str(m["mountPath"])),
                        sub_path=str(m.get("subPath") or ""),
                        read_only=bool(m.get("readOnly", False)),
                        index=m_index,
                    )
                )
        env: list[EnvVar] = []
        raw_env = raw.get("env")
        for e_index, var in enumerate(raw_env if isinstance(raw_env, list) else []):
            if not isinstance(var, dict) or not var.get("name"):
                continue
            value_from = var.get("valueFrom")
            field_path = _dig(value_from, "fieldRef", "fieldPath")
            annotation = _ANNOTATION_FIELD.match(str(field_path)) if field_path else None
            if annotation is not None:
                text = pod_annotations.get(annotation.group("key"), "")
                env.append(EnvVar(str(var["name"]), text, "annotation", e_index, annotation["key"]))
            elif isinstance(value_from, dict):
                source = next(
                    (k for k in ("secretKeyRef", "configMapKeyRef") if k in value_from), "other"
                )
                secret = _dig(value_from, "secretKeyRef", "name")
                env.append(EnvVar(str(var["name"]), None, source, e_index, str(secret or "")))
            else:
                value = var.get("value")
                env.append(
                    EnvVar(str(var["name"]), None if value is None else str(value), "value",
                           e_index)
                )  # fmt: skip
        env_from: list[tuple[str, str]] = []
        raw_env_from = raw.get("envFrom")
        for ref in raw_env_from if isinstance(raw_env_from, list) else []:
            if isinstance(ref, dict):
                for ref_kind in ("secretRef", "configMapRef"):
                    name = _dig(ref, ref_kind, "name")
                    if name:
                        env_from.append((ref_kind, str(name)))
        result.append(
            Container(
                name=str(raw.get("name", "")),
                image=str(raw.get("image", "")),
                command=_strings(raw.get("command")),
                args=_strings(raw.get("args")),
                env=env,
                env_from=env_from,
                mounts=mounts,
                init=init,
                native_sidecar=init and raw.get("restartPolicy") == "Always",
                index=index,
                path=(*pod_path, key, index),
                raw=raw,
            )
        )
    return result


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _add_env_from_config_maps(container: Container, workload: Workload, inv: Inventory) -> None:
    """Variables from `envFrom: configMapRef` ConfigMaps of the inventory, after `env`."""
    for ref_kind, name in container.env_from:
        if ref_kind != "configMapRef":
            continue
        config_map = inv.config_map(workload.scope, workload.namespace, name)
        data = config_map.body.get("data") if config_map is not None else None
        if isinstance(data, dict):
            for key, value in data.items():
                container.env.append(EnvVar(str(key), str(value), "configMapRef", -1))


# ---------------------------------------------------------------------------------------------
# Velero


def _velero_cr(resource: Resource, environment: str | None) -> VeleroSchedule:
    spec = resource.body.get("spec")
    spec = spec if isinstance(spec, dict) else {}
    return _schedule(resource, resource.name, "Schedule", spec, environment)


def _velero_values(
    resource: Resource, values: Any, environment: str | None
) -> list[VeleroSchedule]:
    """Schedules from the velero Helm chart's values (`schedules: {name: {schedule, template}}`)."""
    if not isinstance(values, dict):
        return []
    schedules = values.get("schedules")
    if not isinstance(schedules, dict):
        return []
    found = []
    for name, spec in schedules.items():
        if isinstance(spec, dict):
            found.append(_schedule(resource, str(name), "helm values", spec, environment))
    return found


def _schedule(
    resource: Resource, name: str, source: str, spec: dict[str, Any], environment: str | None
) -> VeleroSchedule:
    template = spec.get("template")
    template = template if isinstance(template, dict) else {}
    included = _strings(template.get("includedNamespaces")) or ["*"]
    excluded = _strings(template.get("excludedNamespaces"))
    volumes = template.get("snapshotVolumes") is not False or any(
        template.get(key) is True
        for key in ("defaultVolumesToFsBackup", "defaultVolumesToRestic", "snapshotMoveData")
    )
    resources_in = [r.lower() for r in _strings(template.get("includedResources"))]
    resources_out = [r.lower() for r in _strings(template.get("excludedResources"))]
    volume_kinds = {"persistentvolumes", "persistentvolumeclaims", "pv", "pvc"}
    if resources_in and "*" not in resources_in and not volume_kinds & set(resources_in):
        volumes = False
    if volume_kinds & set(resources_out):
        volumes = False
    cron = spec.get("schedule")
    snapshot = template.get("snapshotVolumes")
    cluster = template.get("includeClusterResources")
    ttl = template.get("ttl")
    return VeleroSchedule(
        resource=resource,
        name=name,
        source=source,
        cron=str(cron) if cron else None,
        included=included,
        excluded=excluded,
        volumes=volumes,
        disabled=bool(spec.get("paused") or spec.get("disabled")),
        environment=environment,
        scope=_scope(resource),
        snapshot_volumes=snapshot if isinstance(snapshot, bool) else None,
        fs_backup=any(
            template.get(key) is True
            for key in ("defaultVolumesToFsBackup", "defaultVolumesToRestic")
        ),
        volume_resources_excluded=bool(
            (resources_in and "*" not in resources_in and not volume_kinds & set(resources_in))
            or volume_kinds & set(resources_out)
        ),
        include_cluster_resources=cluster if isinstance(cluster, bool) else None,
        ttl=str(ttl) if ttl else None,
    )


def _snapshot_locations(resource: Resource, values: Any) -> list[str]:
    """VolumeSnapshotLocations the velero chart's values configure (none when
    `snapshotsEnabled: false`)."""
    if not isinstance(values, dict) or values.get("snapshotsEnabled") is False:
        return []
    locations = _dig(values, "configuration", "volumeSnapshotLocation")
    if isinstance(locations, dict):
        locations = [locations]
    if not isinstance(locations, list):
        return []
    return [
        f"{resource.origin.file}: {(loc.get('name') or loc.get('provider') or 'unnamed')}"
        for loc in locations
        if isinstance(loc, dict) and loc
    ]


# ---------------------------------------------------------------------------------------------
# apps, namespaces, notes


def _collect_apps(inv: Inventory) -> None:
    for workload in inv.workloads:
        if workload.app:
            app = inv.apps.setdefault(workload.app, App(workload.app))
            app.workloads.append(workload)
            if workload.environment:
                app.environments.add(workload.environment)
    for claim in inv.claims:
        if claim.app:
            app = inv.apps.setdefault(claim.app, App(claim.app))
            app.claims.append(claim)
            if claim.environment:
                app.environments.add(claim.environment)


def _collect_namespaces(inv: Inventory) -> None:
    """Every namespace named by a resource (or declared), per environment, with the objects
    that create it. A namespace whose Namespace object sits in another environment (a shared
    base, a file outside any overlay) points at that object rather than at its first user."""
    declared: dict[str, Resource] = {}
    creators: dict[tuple[str | None, str], list[str]] = {}
    for resource in inv.resources:
        env = inv.environment_of.get(resource)
        created = _created_namespace(resource)
        if created is not None:
            label = created[1].format(resource=resource)
            label += f" ({resource.origin.file}:{resource.origin.line})"
            found = creators.setdefault((env, created[0]), [])
            if label not in found:
                found.append(label)
        if resource.kind == "Namespace":
            declared.setdefault(resource.name, resource)
            inv.namespaces[(env, resource.name)] = NamespaceInfo(
                resource.name, env, resource, declared=True
            )
    for resource in inv.resources:
        namespace = resource.namespace
        if namespace is None or resource.kind in _CLUSTER_SCOPED:
            continue
        env = inv.environment_of.get(resource)
        if (env, namespace) not in inv.namespaces:
            anywhere = declared.get(namespace)
            inv.namespaces[(env, namespace)] = NamespaceInfo(
                namespace, env, anywhere or resource, declared=anywhere is not None
            )
    for (env, namespace), info in inv.namespaces.items():
        # this environment's creators, and those of no known environment (shared files)
        info.creators = list(creators.get((env, namespace), []))
        if env is not None:
            shared = creators.get((None, namespace), [])
            info.creators += [c for c in shared if c not in info.creators]


def _created_namespace(resource: Resource) -> tuple[str, str] | None:
    """The namespace `resource` creates and how to name it, if it creates one: a Namespace;
    a Flux HelmRelease with `install.createNamespace` (its targetNamespace, else its own); an
    Argo CD Application syncing with `CreateNamespace=true` (its destination namespace)."""
    spec = resource.body.get("spec")
    spec = spec if isinstance(spec, dict) else {}
    if resource.kind == "Namespace" and resource.name:
        return resource.name, "Namespace {resource.name}"
    if resource.kind == "HelmRelease" and resource.api_version.startswith(
        "helm.toolkit.fluxcd.io/"
    ):
        install = spec.get("install")
        if isinstance(install, dict) and install.get("createNamespace") is True:
            target = spec.get("targetNamespace") or resource.namespace
            if isinstance(target, str) and target:
                return target, "HelmRelease {resource.name}"
    if resource.kind == "Application" and resource.api_version.startswith("argoproj.io/"):
        sync = spec.get("syncPolicy")
        options = sync.get("syncOptions") if isinstance(sync, dict) else None
        destination = spec.get("destination")
        target = destination.get("namespace") if isinstance(destination, dict) else None
        if (
            isinstance(options, list)
            and "CreateNamespace=true" in options
            and isinstance(target, str)
            and target
        ):
            return target, "Application {resource.name}"
    return None


_JUDGED_KINDS = frozenset({*WORKLOAD_KINDS, "PersistentVolumeClaim"})


def _unknown_environment_notes(inv: Inventory) -> None:
    """One note per app (or per file for resources without an app) whose environment is
    unknown; only for the kinds whose rules depend on the environment."""
    seen: dict[str, list[Resource]] = {}
    for resource in inv.resources:
        if resource.kind not in _JUDGED_KINDS or inv.environment_of.get(resource):
            continue
        app = inv.app_of.get(resource)
        key = f"app {app}" if app else f"{resource.kind} {resource.name}"
        seen.setdefault(key, []).append(resource)
    for key, group in seen.items():
        first = group[0]
        more = f"{len(group) - 1} more resource(s)" if len(group) > 1 else ""
        # Name the first resource only when the key does not already (an app key): a key
        # without an app is that resource's own "Kind name", and saying it twice reads badly.
        if key.startswith("app "):
            detail = f" ({first.kind} {first.name}{' and ' + more if more else ''})"
        else:
            detail = f" (and {more})" if more else ""
        inv.notes.append(
            Note(
                f"environment unknown for {key}{detail}: "
                "storage class and reclaim policy not judged; pass --env, render an overlay, "
                "label the namespace `environment`, or map the namespace in the policy",
                first.origin.file,
                first.origin.line,
            )
        )


def _dig(data: Any, *path: str | int) -> Any:
    for key in path:
        if isinstance(data, dict):
            data = data.get(key)
        elif isinstance(data, list) and isinstance(key, int) and 0 <= key < len(data):
            data = data[key]
        else:
            return None
    return data
