"""SK402 velero-schedule-captures-volumes: A Velero schedule takes volume data, keeps cluster
resources, outlives its interval.

The rule's docs page is docs/rules/SK402-velero-schedule-captures-volumes.md, its test cases
tests/rules/cases/SK402.yaml.
"""

from __future__ import annotations

from collections.abc import Iterable

from statekeeper.findings import Severity
from statekeeper.inventory.cron import cron_interval
from statekeeper.inventory.model import Inventory, VeleroSchedule
from statekeeper.policy.model import Policy, parse_duration
from statekeeper.rules.base import NotFixable, Rule, Subject, Violation, register
from statekeeper.rules.velero import hours_text


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
                f"ttl {schedule.ttl} is shorter than its interval ({hours_text(interval)}, "
                f"{schedule.cron!r}): each backup expires before the next is taken"
            )
