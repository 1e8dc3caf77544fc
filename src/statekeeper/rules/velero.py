"""Strategy §3, Tier 3: a daily Velero schedule covers every namespace, volumes included."""

from __future__ import annotations

from collections.abc import Iterable

from statekeeper.findings import Severity
from statekeeper.inventory.cron import cron_interval
from statekeeper.inventory.model import Inventory, NamespaceInfo, VeleroSchedule
from statekeeper.policy.model import Policy, parse_duration
from statekeeper.rules.base import FixedBy, NotFixable, Rule, Subject, Violation, register


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:g}h"


@register
class VeleroDailyAllNamespaces(Rule):
    id = "SK401"
    slug = "velero-daily-all-namespaces"
    severity = Severity.ERROR
    title = "A daily Velero schedule backs up every namespace"
    rationale = (
        'Strategy §3, Tier 3 (Disaster Recovery, Velero): "**Applicability:** All Namespaces. '
        '**Requirement:** Scheduled daily snapshots of all cluster resources and PVs."\n\n'
        "A namespace left out of the schedule, or a schedule that skips volumes, is found out "
        "on the day of the disaster."
    )
    remediation = (
        "Add the namespace to the Schedule's `spec.template.includedNamespaces` (or use `*`), "
        "keep `schedule` at least daily (e.g. `0 3 * * *`), and include volumes "
        "(`snapshotVolumes: true` or `defaultVolumesToFsBackup: true`)."
    )
    bad_example = """\
kind: Schedule
spec:
  schedule: "0 3 * * 0"            # weekly
  template:
    includedNamespaces: [vaultwarden, mealie]
    snapshotVolumes: false
"""
    good_example = """\
kind: Schedule
spec:
  schedule: "0 3 * * *"
  template:
    includedNamespaces: ["*"]
    snapshotVolumes: true
    defaultVolumesToFsBackup: true
"""
    details = (
        "Schedules are Velero `Schedule` objects (velero.io/v1), and the `schedules:` of the "
        "velero Helm chart's values (a values file, a Flux HelmRelease's `spec.values`, an "
        "Argo CD Application's `helm.valuesObject`). A namespace is covered by a schedule that "
        "is not paused/disabled, fires at least every `tiers.velero.max_interval` (cron, "
        "`@daily`, `@every 24h`), includes it (`includedNamespaces` empty or `*` or naming "
        "it, not in `excludedNamespaces`). Whether it takes the volumes' data is SK402's "
        "business. Namespaces are "
        "those of the Namespace objects and of every namespaced object with an explicit "
        "`metadata.namespace`, per environment; a schedule covers its own environment (or "
        "all, when its environment is unknown). Each uncovered namespace is one finding per "
        "environment, on its Namespace object when the repo has one (else on the first object "
        "in it); the message lists what creates the namespace: Namespace objects, Flux "
        "HelmReleases with `install.createNamespace`, Argo CD Applications syncing with "
        "`CreateNamespace=true`."
    )
    # One Schedule for every namespace, written once where Velero is configured.
    fix = FixedBy("statekeeper.fix.velero:fix_all", step=8, batch="all_at_once")

    def check(self, inventory: Inventory, policy: Policy) -> Iterable[Violation]:
        max_seconds = policy.tiers.velero.max_interval
        limit = policy.tiers.velero.max_seconds
        for (env, name), info in sorted(
            inventory.namespaces.items(), key=lambda item: (item[0][0] or "", item[0][1])
        ):
            candidates = [
                s
                for s in inventory.schedules
                if s.environment is None or env is None or s.environment == env
            ]
            reasons = [self._why_not(s, name, limit) for s in candidates]
            if any(r is None for r in reasons):
                continue
            if not candidates:
                why = "no Velero Schedule backs it up"
            else:
                listed = [r for r in reasons if r]
                more = f"; and {len(listed) - 3} more schedules" if len(listed) > 3 else ""
                why = "; ".join(listed[:3]) + more
            yield Violation(
                self._subject(inventory, info),
                f"namespace {name!r} is not covered: {why} (daily = at least every "
                f"{max_seconds}){self._created_by(info)}",
            )

    @staticmethod
    def _subject(inventory: Inventory, info: NamespaceInfo) -> Subject:
        """The namespace, reported on its Namespace object (whose app it takes) or, when the
        repo has none, on the first object in it (of no app)."""
        app = inventory.app(info.resource) if info.declared else None
        return Subject("Namespace", info.name, info.resource,
                       app=app or None, environment=info.environment or None)  # fmt: skip

    @staticmethod
    def _created_by(info: NamespaceInfo) -> str:
        """The objects that create the namespace, at most two, besides the Namespace the
        finding is on (a cluster's own namespaces, `default`, `kube-system`, have none)."""
        origin = info.resource.origin
        here = f" ({origin.file}:{origin.line})"
        others = [c for c in info.creators if not (info.declared and c.endswith(here))]
        if not others:
            return "" if info.declared else "; created by no object in the repo"
        more = f" and {len(others) - 2} more" if len(others) > 2 else ""
        also = "also " if info.declared else ""
        return f"; {also}created by " + ", ".join(others[:2]) + more

    @staticmethod
    def _why_not(schedule: VeleroSchedule, namespace: str, limit: float) -> str | None:
        label = schedule.label
        if not ("*" in schedule.included or namespace in schedule.included):
            return f"{label} does not include it"
        if namespace in schedule.excluded:
            return f"{label} excludes it"
        if schedule.disabled:
            return f"{label} is paused"
        interval = cron_interval(schedule.cron) if schedule.cron else None
        if interval is None:
            return f"{label} has no readable schedule ({schedule.cron!r})"
        if interval > limit:
            return f"{label} runs every {_hours(interval)} ({schedule.cron!r}), not daily"
        return None


@register
class VeleroScheduleCapturesVolumes(Rule):
    id = "SK402"
    slug = "velero-schedule-captures-volumes"
    severity = Severity.ERROR
    joins_violations = True
    title = "A Velero schedule takes volume data, keeps cluster resources, outlives its interval"
    rationale = (
        'Strategy §3, Tier 3 (Disaster Recovery, Velero): "Scheduled daily snapshots of all '
        'cluster resources and PVs."\n\nA schedule can cover every namespace and still restore '
        "empty volumes: with `snapshotVolumes: false`, or with snapshots asked for but no "
        "VolumeSnapshotLocation to take them, and no file-system backup, only the PVC objects "
        "are saved. Excluding a namespace from an all-namespaces schedule makes it a "
        "namespace-scoped backup, which silently drops cluster-scoped resources (StorageClasses, "
        "PersistentVolumes, CRDs). A TTL shorter than the interval lets every backup expire "
        "before the next one is taken: some days there is none."
    )
    remediation = (
        "Take the volumes' data: `defaultVolumesToFsBackup: true` (file-system backup, works "
        "on any storage), or `snapshotVolumes: true` with a VolumeSnapshotLocation. On an "
        "all-namespaces schedule with `excludedNamespaces`, set `includeClusterResources: "
        "true`. Keep `ttl` longer than the interval (e.g. `720h` for a daily schedule)."
    )
    bad_example = """\
kind: Schedule
spec:
  schedule: "0 3 * * *"
  template:
    includedNamespaces: ["*"]
    excludedNamespaces: [kube-system]
    snapshotVolumes: false
    ttl: 12h
"""
    good_example = """\
kind: Schedule
spec:
  schedule: "0 3 * * *"
  template:
    includedNamespaces: ["*"]
    excludedNamespaces: [kube-system]
    includeClusterResources: true
    defaultVolumesToFsBackup: true
    ttl: 720h
"""
    details = (
        "Judges every schedule that is not paused: Velero `Schedule` objects and the velero "
        "chart's `schedules:` values (values files, Flux HelmRelease `spec.values`, Argo CD "
        "`helm.valuesObject`). Volume data: `defaultVolumesToFsBackup` (or "
        "`defaultVolumesToRestic`) true, or `snapshotVolumes: true`, or `snapshotVolumes` unset "
        "with a VolumeSnapshotLocation in the audited files (a `velero.io` "
        "VolumeSnapshotLocation, or the chart's `configuration.volumeSnapshotLocation` without "
        "`snapshotsEnabled: false`); a resource filter that leaves PersistentVolumes/Claims "
        "out takes none either. Cluster resources: an all-namespaces schedule (`*` or no "
        "list) with `excludedNamespaces` needs `includeClusterResources: true`. TTL: a `ttl` "
        "shorter than the longest gap of the cron schedule. One finding per schedule."
    )
    fix = NotFixable(
        "how a schedule takes volume data (file-system backup or snapshots with a "
        "VolumeSnapshotLocation) and how long it keeps backups are choices for your storage"
    )

    def check(self, inventory: Inventory, policy: Policy) -> Iterable[Violation]:
        for schedule in inventory.schedules:
            if schedule.disabled:
                continue
            # A schedule from chart values is named as the Schedule it becomes; of no app.
            subject = Subject("Schedule", schedule.name, schedule.resource,
                              schedule.resource.namespace,
                              environment=schedule.environment or None)  # fmt: skip
            for problem in self._problems(schedule, inventory):
                yield Violation(subject, problem, topic=schedule.label)

    @staticmethod
    def _problems(schedule: VeleroSchedule, inventory: Inventory) -> Iterable[str]:
        if schedule.volume_resources_excluded:
            yield "its resource filter leaves PersistentVolumes/Claims out: no volume data"
        elif not schedule.fs_backup:
            if schedule.snapshot_volumes is False:
                yield (
                    "snapshotVolumes: false and no defaultVolumesToFsBackup: the PVCs are "
                    "saved, not their data"
                )
            elif schedule.snapshot_volumes is None and not inventory.snapshot_locations:
                yield (
                    "snapshotVolumes unset, no VolumeSnapshotLocation among the audited files "
                    "and no defaultVolumesToFsBackup: no volume data is taken"
                )
        if (
            schedule.all_namespaces
            and schedule.excluded
            and schedule.include_cluster_resources is not True
        ):
            yield (
                f"excludedNamespaces {', '.join(schedule.excluded)} on an all-namespaces "
                "schedule drops cluster-scoped resources; set includeClusterResources: true"
            )
        interval = cron_interval(schedule.cron) if schedule.cron else None
        ttl = parse_duration(schedule.ttl) if schedule.ttl else None
        if interval is not None and ttl is not None and ttl < interval:
            yield (
                f"ttl {schedule.ttl} is shorter than its interval ({_hours(interval)}, "
                f"{schedule.cron!r}): each backup expires before the next is taken"
            )
