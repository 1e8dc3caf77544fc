"""`statekeeper generate app`: base + one overlay per environment for a new, compliant app.

Layout written under OUTPUT (default: the current directory)::

    <app>/base/kustomization.yaml      namespace, resources, common labels
    <app>/base/pvc.yaml                <app>-<purpose>-pvc, no StorageClass (set per environment)
    <app>/base/deployment.yaml         the app + statekeeper restore init container + native sidecar
    <app>/overlays/<env>/kustomization.yaml
                                       the environment's StorageClass (a JSON patch on the PVC) and
                                       the agent's ConfigMap (bucket, endpoint, per-env prefix)

The S3 keys are never written: both agent containers read them from a Secret by reference.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from statekeeper import defaults
from statekeeper.errors import InputError
from statekeeper.generate.strategy import Strategy, parse_quantity
from statekeeper.generate.wiring import (
    AGENT_IMAGE,
    AGENT_TERMINATION_GRACE_SECONDS,
    BackupSpec,
    Mount,
    agent_containers,
    agent_init_containers,
    agent_rollout_strategy,
    scrape_annotations,
)
from statekeeper.generate.yamlout import dump_documents, literal

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
STATE_VOLUME = "state"
DEFAULT_SIZE = "1Gi"  # when no sizing category of the policy matches the purpose


@dataclass(frozen=True, slots=True)
class AppSpec:
    """Everything `generate app` needs to know about the new app."""

    name: str
    environments: tuple[str, ...]
    sqlite_paths: tuple[str, ...] = ()
    config_paths: tuple[str, ...] = ()
    size: str | None = None
    purpose: str = "config"
    namespace: str | None = None
    image: str | None = None
    bucket: str = defaults.S3_BUCKET
    s3_endpoint: str = defaults.S3_ENDPOINT
    s3_secret: str = defaults.S3_SECRET
    agent_image: str = AGENT_IMAGE
    extra_labels: dict[str, str] = field(default_factory=dict)

    @property
    def pvc_name(self) -> str:
        return f"{self.name}-{self.purpose}-pvc"

    @property
    def config_map(self) -> str:
        return f"{self.name}-statekeeper"


def _check_name(what: str, value: str) -> None:
    if not _DNS_LABEL.match(value) or len(value) > 63:
        raise InputError(
            f"{what} {value!r} is not a valid Kubernetes name "
            "(lower-case letters, digits and '-', at most 63 characters)"
        )


def _check_path(what: str, value: str) -> None:
    if not value.startswith("/") or value.rstrip("/") == "" or ".." in value.split("/"):
        raise InputError(f"{what} {value!r} must be an absolute path inside the container")


def validate(spec: AppSpec, strategy: Strategy) -> str:
    """Check the spec against the policy; returns the PVC size to write."""
    _check_name("app name", spec.name)
    _check_name("purpose", spec.purpose)
    _check_name("PVC name", spec.pvc_name)
    if spec.namespace:
        _check_name("namespace", spec.namespace)
    if not spec.environments:
        raise InputError("at least one environment is needed (--env dev,prod)")
    seen: set[str] = set()
    for env in spec.environments:
        _check_name("environment", env)
        canonical = strategy.environment(env).name
        if canonical in seen:
            raise InputError(f"environment {env!r} given twice")
        seen.add(canonical)
    for path in spec.sqlite_paths:
        _check_path("SQLite path", path)
        if path.endswith("/"):
            raise InputError(f"SQLite path {path!r} names a directory, expected a database file")
    for path in spec.config_paths:
        _check_path("config path", path)
    images = (spec.image,) if spec.image else ()
    allowed = strategy.category_for(spec.name, spec.purpose, images, bool(spec.sqlite_paths))
    size = spec.size or (allowed.min if allowed else DEFAULT_SIZE)
    parse_quantity(size)  # raises on nonsense
    if allowed and not allowed.contains(size):
        raise InputError(
            f"size {size} is outside the policy's {allowed.name} range "
            f"{allowed.min}-{allowed.max} for purpose {spec.purpose!r}: "
            "choose a --size in that range, or another --purpose"
        )
    return size


def mount_plan(spec: AppSpec) -> tuple[Mount, ...]:
    """Mount points for the state volume: each config directory, and the directory of each
    database that is not already inside one. One mount uses the whole volume; several share it
    through sub-paths so one PVC holds all the app's state."""
    dirs: list[str] = [p.rstrip("/") for p in spec.config_paths]
    for db in spec.sqlite_paths:
        parent = posixpath.dirname(db) or "/"
        if not any(parent == d or parent.startswith(d + "/") for d in dirs):
            dirs.append(parent)
    # Drop directories nested in another one (mounting both would shadow files).
    dirs = sorted(set(dirs))
    dirs = [d for d in dirs if not any(d != o and d.startswith(o + "/") for o in dirs)]
    if not dirs:
        dirs = ["/data"]
    if len(dirs) == 1:
        return (Mount(STATE_VOLUME, dirs[0]),)
    return tuple(Mount(STATE_VOLUME, d, sub_path=d.strip("/").replace("/", "-")) for d in dirs)


def render_app(spec: AppSpec, strategy: Strategy) -> dict[Path, str]:
    """The files of the new app, relative to the output directory (nothing is written here).

    An image the policy knows as a SQLite app (Vaultwarden, the *arr apps, …) also gets its
    usual database paths protected: the audit expects them whenever they are on a volume."""
    if spec.image:
        known = strategy.known_sqlite_paths(spec.image)
        missing = tuple(p for p in known if p not in spec.sqlite_paths)
        if missing:
            spec = replace(spec, sqlite_paths=(*spec.sqlite_paths, *missing))
    # A mount at a config directory of the policy (/config) is backed up as one, or the audit
    # would ask for it (SK301).
    extra = tuple(
        m.path
        for m in mount_plan(spec)
        if m.path in strategy.config_dirs and m.path not in spec.config_paths
    )
    if extra:
        spec = replace(spec, config_paths=(*spec.config_paths, *extra))
    size = validate(spec, strategy)
    labels = {"app.kubernetes.io/name": spec.name, **spec.extra_labels}
    mounts = mount_plan(spec)
    backup = BackupSpec(
        app=spec.name,
        sqlite_paths=spec.sqlite_paths,
        config_paths=tuple(p.rstrip("/") for p in spec.config_paths),
        mounts=mounts,
        config_map=spec.config_map,
        secret=spec.s3_secret,
        rclone_interval=strategy.rclone_interval,
        image=spec.agent_image,
        native_sidecars=strategy.native_sidecars,
    )
    has_state = bool(spec.sqlite_paths or spec.config_paths)
    pvc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": spec.pvc_name, "labels": dict(labels)},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": size}},
        },
    }
    pod_spec: dict[str, Any] = {}
    if has_state:
        # Time for the agent's final flush on shutdown (Kubernetes' default 30 s is too short).
        pod_spec["terminationGracePeriodSeconds"] = AGENT_TERMINATION_GRACE_SECONDS
        pod_spec["initContainers"] = agent_init_containers(backup)
    pod_spec["containers"] = [
        {
            "name": spec.name,
            "image": spec.image or f"{spec.name}:latest",
            "volumeMounts": [m.as_k8s() for m in mounts],
        },
        *(agent_containers(backup) if has_state else []),
    ]
    pod_spec["volumes"] = [
        {"name": STATE_VOLUME, "persistentVolumeClaim": {"claimName": spec.pvc_name}}
    ]
    template_meta: dict[str, Any] = {"labels": dict(labels)}
    if has_state:
        template_meta["annotations"] = scrape_annotations()
    deployment: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": spec.name, "labels": dict(labels)},
        "spec": {
            "replicas": 1,
            # One writer per volume: the old pod stops (and flushes) before the new one starts;
            # a surging RollingUpdate would deadlock on the agent's lease (see wiring).
            "strategy": agent_rollout_strategy(),
            "selector": {"matchLabels": dict(labels)},
            "template": {"metadata": template_meta, "spec": pod_spec},
        },
    }
    base_kustomization: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": spec.namespace or spec.name,
        "resources": ["pvc.yaml", "deployment.yaml"],
    }
    header = "Generated by `statekeeper generate app`; edit freely."
    root = Path(spec.name)
    files: dict[Path, str] = {
        root / "base" / "kustomization.yaml": dump_documents([base_kustomization], header),
        root / "base" / "pvc.yaml": dump_documents([pvc], header),
        root / "base" / "deployment.yaml": dump_documents([deployment], header),
    }
    for env_name in spec.environments:
        env = strategy.environment(env_name)
        overlay: dict[str, Any] = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            # Repeated here so the generated ConfigMap shares the namespace and kustomize rewrites
            # the agent's configMapRef to its hashed name.
            "namespace": spec.namespace or spec.name,
            "resources": ["../../base"],
            "patches": [storage_class_patch(spec.pvc_name, env.storage_class)],
        }
        if has_state:
            overlay["configMapGenerator"] = [
                {
                    "name": spec.config_map,
                    "literals": [
                        f"STATEKEEPER_BUCKET={spec.bucket}",
                        f"STATEKEEPER_S3_ENDPOINT={spec.s3_endpoint}",
                        f"STATEKEEPER_PREFIX={env_name}/{spec.name}",
                    ],
                }
            ]
        files[root / "overlays" / env_name / "kustomization.yaml"] = dump_documents(
            [overlay], f"{header}\nEnvironment: {env.name} (StorageClass {env.storage_class})."
        )
    return files


def storage_class_patch(pvc_name: str, storage_class: str) -> dict[str, Any]:
    """A kustomize patch setting one PVC's StorageClass (adds or replaces the field)."""
    return {
        "target": {"kind": "PersistentVolumeClaim", "name": pvc_name},
        "patch": literal(f"- op: add\n  path: /spec/storageClassName\n  value: {storage_class}\n"),
    }
