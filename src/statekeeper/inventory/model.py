"""The inventory's data model. Built once by `build.build_inventory`; rules only read it.

Every object keeps the `Resource` it came from (for file/line and annotations) and the path of
the relevant field inside it (for `field_line`), so findings point at the exact place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from statekeeper.findings import Note
from statekeeper.manifests.resource import InputProblem, Resource

FieldPath = tuple[str | int, ...]

# Volume sources whose content does not outlive the pod or is not state at all.
EPHEMERAL_SOURCES = frozenset({"emptyDir", "ephemeral"})
NON_STATE_SOURCES = frozenset({"configMap", "secret", "downwardAPI", "projected"})
WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job", "Pod"})
# Workloads that run all the time: the backup tiers (SK2xx, SK3xx) apply to these.
LONG_RUNNING_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "Pod"})

UNSET: Any = object()  # an env var set through valueFrom: "set, value unknown"


@dataclass(slots=True)
class Mount:
    """One volumeMount of a container."""

    volume: str
    path: str  # mountPath without a trailing slash
    sub_path: str = ""
    read_only: bool = False
    index: int = 0


@dataclass(slots=True)
class EnvVar:
    """One `env` entry: `source` is "value", "secretKeyRef", "configMapKeyRef", "other",
    "annotation" for a `fieldRef` to `metadata.annotations['…']` of the pod template (the value is
    the annotation's, "" when the template lacks it), or "configMapRef" for a variable that comes
    from an `envFrom` ConfigMap found in the inventory (appended after `env`, which wins, as in
    Kubernetes)."""

    name: str
    value: str | None
    source: str
    index: int
    ref: str = ""  # the annotation an "annotation" variable reads, the Secret of a secretKeyRef


@dataclass(slots=True, eq=False)  # one object per thing seen: compared and hashed by identity
class Container:
    """A container or init container of a pod template.

    `role` is what statekeeper recognised it as: "app", "litestream", "rclone", "integrity"
    (an init container checking SQLite integrity), "agent-restore", "agent-run".
    `script` is command + args joined, plus the text of any script it runs from a mounted
    ConfigMap, so command parsers see what actually runs.
    """

    name: str
    image: str
    command: list[str]
    args: list[str]
    env: list[EnvVar]
    env_from: list[tuple[str, str]]  # ("secretRef" | "configMapRef", name)
    mounts: list[Mount]
    init: bool
    native_sidecar: bool
    index: int
    path: FieldPath
    raw: dict[str, Any]
    role: str = "app"
    script: str = ""

    @property
    def argv(self) -> list[str]:
        return [*self.command, *self.args]

    @property
    def long_running(self) -> bool:
        """Runs alongside the app: a regular container or a native sidecar."""
        return not self.init or self.native_sidecar

    @property
    def runs_before_app(self) -> bool:
        """A regular init container (runs to completion before the app starts)."""
        return self.init and not self.native_sidecar

    def env_value(self, name: str) -> Any:
        """The plain value of env var `name`; UNSET if set through valueFrom; None if absent."""
        for var in self.env:
            if var.name == name:
                if var.source in ("value", "configMapRef", "annotation"):
                    return var.value
                return UNSET
        return None

    def mount_for(self, path: str) -> Mount | None:
        """The mount holding `path` in this container (the longest mountPath prefix)."""
        best: Mount | None = None
        for mount in self.mounts:
            if is_under(path, mount.path) and (best is None or len(mount.path) > len(best.path)):
                best = mount
        return best


@dataclass(slots=True)
class Volume:
    """A pod volume; `source` is its type key (persistentVolumeClaim, emptyDir, nfs, …)."""

    name: str
    source: str
    raw: dict[str, Any]
    claim_name: str | None = None
    config_map: str | None = None
    index: int = 0

    @property
    def ephemeral(self) -> bool:
        return self.source in EPHEMERAL_SOURCES

    @property
    def holds_state(self) -> bool:
        """False for ConfigMap/Secret/downward API volumes: read-only inputs, not state."""
        return self.source not in NON_STATE_SOURCES


@dataclass(slots=True)
class SqliteDb:
    """A SQLite database the app writes, as the app container sees it."""

    path: str
    reason: str  # how it was detected, for messages
    container: str


@dataclass(slots=True)
class LitestreamDb:
    path: str
    s3: bool  # at least one replica goes to S3


@dataclass(slots=True)
class LitestreamConfig:
    """A litestream.yml found in a ConfigMap."""

    resource: Resource
    key: str
    dbs: list[LitestreamDb]
    inline_credentials: list[str]  # credential keys written in the file (names only)
    error: str | None = None


@dataclass(slots=True)
class ProviderUse:
    """One backup provider protecting a workload: a container (or an admission-injected
    provider, `container` None) and what it covers. Paths are as the container sees them;
    None means "set, but through a reference statekeeper cannot read" (trusted)."""

    provider: str
    container: Container | None
    tiers: frozenset[str]
    evidence: str  # how it was spotted, for messages
    sqlite_paths: list[str] | None = None
    sqlite_source: str = ""
    file_paths: list[str] | None = None
    file_source: str = ""
    interval: float | None = None
    interval_source: str = ""

    @property
    def label(self) -> str:
        if self.container is None:
            return f"{self.provider} (injected)"
        return f"{self.provider} container {self.container.name!r}"


@dataclass(slots=True, eq=False)  # one object per thing seen: compared and hashed by identity
class Claim:
    """A PersistentVolumeClaim, or a StatefulSet volumeClaimTemplate (`template_of` set)."""

    resource: Resource
    name: str
    namespace: str | None
    spec: dict[str, Any]
    spec_path: FieldPath
    scope: str | None
    template_of: str | None = None  # the StatefulSet's name for a volumeClaimTemplate
    app: str | None = None
    environment: str | None = None
    mounted_by: list[tuple[Workload, Container, Mount]] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return "StatefulSet" if self.template_of else "PersistentVolumeClaim"

    @property
    def subject_name(self) -> str:
        """The object a finding names: the PVC, or the StatefulSet for a template."""
        return self.template_of or self.name

    @property
    def has_storage_class(self) -> bool:
        return "storageClassName" in self.spec

    @property
    def storage_class(self) -> str | None:
        value = self.spec.get("storageClassName")
        return str(value) if value is not None else None

    @property
    def request(self) -> Any:
        resources = self.spec.get("resources")
        requests = resources.get("requests") if isinstance(resources, dict) else None
        return requests.get("storage") if isinstance(requests, dict) else None

    @property
    def access_modes(self) -> list[str]:
        modes = self.spec.get("accessModes")
        return [str(m) for m in modes] if isinstance(modes, list) else []


@dataclass(slots=True, eq=False)  # one object per thing seen: compared and hashed by identity
class Workload:
    """A Deployment, StatefulSet, DaemonSet, CronJob, Job or Pod and what runs in its pods."""

    resource: Resource
    pod_path: FieldPath  # path of the pod spec inside the resource
    scope: str | None
    containers: list[Container]
    init_containers: list[Container]
    volumes: dict[str, Volume]
    annotations: dict[str, str]  # the object's, over its pod template's
    app: str | None = None
    environment: str | None = None
    claim_templates: list[Claim] = field(default_factory=list)
    # Filled by detection:
    sqlite: bool = False
    sqlite_reason: str = ""
    sqlite_dbs: list[SqliteDb] = field(default_factory=list)
    sqlite_explicit: bool = False  # paths from the statekeeper.io/sqlite annotation
    server_database: str = ""  # evidence that the app uses a database server, not SQLite
    sqlite_unknown: str = ""  # why SQLite use cannot be decided (a note, not a finding)
    providers: list[ProviderUse] = field(default_factory=list)
    config_paths: list[str] = field(default_factory=list)
    backup_exempt: str | None = None  # reason from `statekeeper.io/backup: "none: <reason>"`
    litestream_configs: list[tuple[Container, LitestreamConfig | None, str]] = field(
        default_factory=list
    )  # (container, config or None when not in the inventory, config path)

    @property
    def kind(self) -> str:
        return self.resource.kind

    @property
    def name(self) -> str:
        return self.resource.name

    @property
    def namespace(self) -> str | None:
        return self.resource.namespace

    @property
    def long_running(self) -> bool:
        return self.kind in LONG_RUNNING_KINDS

    @property
    def cron_schedule(self) -> str | None:
        """A CronJob's `spec.schedule`."""
        spec = self.resource.body.get("spec") if self.kind == "CronJob" else None
        value = spec.get("schedule") if isinstance(spec, dict) else None
        return str(value) if value else None

    @property
    def all_containers(self) -> list[Container]:
        return [*self.init_containers, *self.containers]

    @property
    def app_containers(self) -> list[Container]:
        """The app's own long-running containers (not backup tooling)."""
        return [c for c in self.containers if c.role == "app"]

    def containers_with_role(self, *roles: str) -> list[Container]:
        return [c for c in self.all_containers if c.role in roles]

    def locate(self, container: Container, path: str) -> tuple[str, str] | None:
        """`path` as seen by `container` -> (volume name, path inside the volume)."""
        mount = container.mount_for(path)
        if mount is None:
            return None
        rel = path[len(mount.path) :].strip("/")
        inner = "/".join(part for part in (mount.sub_path.strip("/"), rel) if part)
        return (mount.volume, inner)


@dataclass(slots=True)
class StorageClassInfo:
    resource: Resource
    environment: str | None

    @property
    def name(self) -> str:
        return self.resource.name

    @property
    def reclaim_policy(self) -> str:
        """Kubernetes' default is Delete when the field is absent."""
        return str(self.resource.body.get("reclaimPolicy") or "Delete")


@dataclass(slots=True)
class PersistentVolumeInfo:
    resource: Resource
    environment: str | None

    @property
    def spec(self) -> dict[str, Any]:
        spec = self.resource.body.get("spec")
        return spec if isinstance(spec, dict) else {}

    @property
    def storage_class(self) -> str | None:
        value = self.spec.get("storageClassName")
        return str(value) if value else None

    @property
    def reclaim_policy(self) -> str | None:
        value = self.spec.get("persistentVolumeReclaimPolicy")
        return str(value) if value else None


@dataclass(slots=True)
class VeleroSchedule:
    """A Velero Schedule CR, or one entry of the velero Helm chart's `schedules:` values."""

    resource: Resource
    name: str
    source: str  # "Schedule" or "helm values"
    cron: str | None
    included: list[str]
    excluded: list[str]
    volumes: bool
    disabled: bool
    environment: str | None
    scope: str | None
    snapshot_volumes: bool | None = None  # template.snapshotVolumes (None: unset)
    fs_backup: bool = False  # defaultVolumesToFsBackup (or the older defaultVolumesToRestic)
    volume_resources_excluded: bool = False  # a resource filter leaves PVs/PVCs out
    include_cluster_resources: bool | None = None
    ttl: str | None = None

    @property
    def all_namespaces(self) -> bool:
        return "*" in self.included

    @property
    def label(self) -> str:
        if self.source == "Schedule":
            return f"Schedule {self.resource.namespace or '-'}/{self.name}"
        return f"{self.source} schedule {self.name!r} ({self.resource.origin.file})"


@dataclass(slots=True)
class NamespaceInfo:
    """A namespace seen in one environment: its Namespace object if any, else its first user."""

    name: str
    environment: str | None
    resource: Resource  # the Namespace object, or the first resource in the namespace
    declared: bool  # a Namespace object exists
    # What creates it: "Namespace media (base/ns.yaml:1)", a HelmRelease/Application that
    # creates its target namespace (install.createNamespace, CreateNamespace=true)
    creators: list[str] = field(default_factory=list)


@dataclass(slots=True)
class App:
    name: str
    environments: set[str] = field(default_factory=set)
    workloads: list[Workload] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)


@dataclass(slots=True)
class Inventory:
    """Everything the rules read, with the indexes they need (built once)."""

    resources: list[Resource]
    other: list[Resource]
    workloads: list[Workload] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)  # PVCs and volumeClaimTemplates
    storage_classes: list[StorageClassInfo] = field(default_factory=list)
    persistent_volumes: list[PersistentVolumeInfo] = field(default_factory=list)
    config_maps: dict[tuple[str | None, str, str], Resource] = field(default_factory=dict)
    schedules: list[VeleroSchedule] = field(default_factory=list)
    # Velero VolumeSnapshotLocations: CRs and the chart's `configuration.volumeSnapshotLocation`
    snapshot_locations: list[str] = field(default_factory=list)
    namespaces: dict[tuple[str | None, str], NamespaceInfo] = field(default_factory=dict)
    apps: dict[str, App] = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)
    # Roots that did not build and files that could not be read (SK002/SK003)
    input_problems: list[InputProblem] = field(default_factory=list)
    # resource -> its environment / app, for any resource of the inventory
    environment_of: dict[Resource, str | None] = field(default_factory=dict)
    app_of: dict[Resource, str | None] = field(default_factory=dict)
    # (kind, namespace or "", name) -> resources with that identity (all environments)
    by_key: dict[tuple[str, str, str], list[Resource]] = field(default_factory=dict)
    # Analyses shared by several rules, computed once (rules.base.cached)
    cache: dict[str, Any] = field(default_factory=dict)

    def environment(self, resource: Resource) -> str | None:
        return self.environment_of.get(resource)

    def app(self, resource: Resource) -> str | None:
        return self.app_of.get(resource)

    def config_map(self, scope: str | None, namespace: str | None, name: str) -> Resource | None:
        """A ConfigMap by name in the same overlay (falling back to any overlay)."""
        found = self.config_maps.get((scope, namespace or "", name))
        if found is None and scope is not None:
            found = self.config_maps.get((None, namespace or "", name))
        return found


def is_under(path: str, parent: str) -> bool:
    """True if `path` is `parent` or inside it (both absolute, no trailing slash needed)."""
    parent = parent.rstrip("/")
    return path == parent or path.startswith(parent + "/") or parent == ""


def starts_new_pod_first(strategy: Any) -> bool:
    """True when a Deployment `strategy` starts the new pod before the old one stops: none set
    (the default is RollingUpdate with 25% surge, which rounds up to 1 pod) or RollingUpdate
    whose maxSurge is above 0. An explicit Recreate, or RollingUpdate with maxSurge 0, stops the
    old pod first."""
    if not isinstance(strategy, dict) or not strategy:
        return True
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return False
    rolling = strategy.get("rollingUpdate")
    max_surge = rolling.get("maxSurge") if isinstance(rolling, dict) else None
    if max_surge is None:
        return True
    text = str(max_surge).strip()
    try:
        return float(text.removesuffix("%")) > 0
    except ValueError:
        return True  # unreadable: assume the default behaviour (surge)
