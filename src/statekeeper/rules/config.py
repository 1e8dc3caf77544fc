"""Strategy §3, Tier 2: an rclone sidecar syncs /config to S3 every 5-15 minutes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from statekeeper.findings import Severity
from statekeeper.inventory.cron import cron_interval
from statekeeper.inventory.model import Container, Inventory, Workload, is_under
from statekeeper.inventory.rclone import RcloneSync, rclone_syncs, remote_type, sync_interval
from statekeeper.policy.model import Policy
from statekeeper.rules.base import FixedBy, NotFixable, Rule, Violation, cached, distinct, register

NOT_S3 = (None, "s3")  # remote types that count as S3 (None: not said, trusted)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g} min"


@register
class ConfigNeedsRcloneSidecar(Rule):
    id = "SK301"
    slug = "config-needs-rclone-sidecar"
    severity = Severity.ERROR
    joins_violations = True
    title = "/config is synced to S3 by an rclone sidecar or a backup provider"
    rationale = (
        'Strategy §3, Tier 2 (Configuration Backup, Rclone): "**Applicability:** Applications '
        "with files in `/config`. **Requirement:** An `rclone` sidecar must perform periodic "
        'sync (every 5-15 min) to S3."\n\nA shorter period hammers the store; a longer one '
        "loses more than a quarter of an hour of settings when the volume goes."
    )
    remediation = (
        "Add a sidecar that loops `rclone sync /config <remote>:<bucket>/<app>` with a "
        "`sleep` of 300-900 seconds (remote configured as `s3` through `RCLONE_CONFIG_*` "
        "variables and keys from a Secret), mounting the /config volume; or use statekeeper's "
        "agent (`STATEKEEPER_CONFIG_PATHS=/config`, `STATEKEEPER_RCLONE_INTERVAL` 5m-15m)."
    )
    bad_example = """\
containers:
  - name: syncthing
    image: lscr.io/linuxserver/syncthing:1.27.12
    volumeMounts: [{name: config, mountPath: /config}]
"""
    good_example = """\
containers:
  - name: syncthing
    image: lscr.io/linuxserver/syncthing:1.27.12
    volumeMounts: [{name: config, mountPath: /config}]
  - name: rclone
    image: rclone/rclone:1.68.1
    command: [/bin/sh, -c]
    args: ["while true; do rclone sync /config minio:backups/syncthing; sleep 600; done"]
    env:
      - {name: RCLONE_CONFIG_MINIO_TYPE, value: s3}
      - name: RCLONE_CONFIG_MINIO_ACCESS_KEY_ID
        valueFrom: {secretKeyRef: {name: rclone-s3, key: access-key-id}}
    volumeMounts: [{name: config, mountPath: /config, readOnly: true}]
"""
    details = (
        "`/config` state: an app container mounting a volume (not a ConfigMap/Secret, not an "
        "emptyDir: that lives only as long as the pod) at a path of `tiers.config.paths`, or "
        "the paths of the `statekeeper.io/config-path` annotation. A sync is one of: `rclone "
        "sync|copy|bisync SRC DST` in a sidecar or native sidecar (command, args or a script "
        "mounted from a ConfigMap) whose source is the config volume (or a directory "
        "containing it) and whose destination is a remote (not a local path; when "
        "`RCLONE_CONFIG_<NAME>_TYPE` is set it must be `s3`); the same in a CronJob mounting "
        "the same claim; a backup provider of the policy with the `file-sync` tier listing "
        "the path (statekeeper's agent: `STATEKEEPER_CONFIG_PATHS`; DataAngel: "
        "`DATA_GUARD_FS_PATHS`, usually the `dataangel.io/fs-paths` annotation). How often it "
        "runs is SK302's business. Applies to long-running workloads (not Jobs/CronJobs)."
    )
    fix = FixedBy("statekeeper.fix.backup:fix_workload", step=6, batch="per_workload")

    def check(self, inventory: Inventory, policy: Policy) -> Iterable[Violation]:
        for workload, syncs in config_syncs(inventory, policy):
            yield from distinct(
                Violation(workload.resource, problem)
                for path, found in syncs.items()
                for problem in _unsynced(path, found)
            )


@register
class ConfigSyncInterval(Rule):
    id = "SK302"
    slug = "config-sync-interval"
    severity = Severity.ERROR
    joins_violations = True
    title = "/config is synced every 5-15 minutes"
    rationale = (
        'Strategy §3, Tier 2 (Configuration Backup, Rclone): "An `rclone` sidecar must perform '
        'periodic sync (every 5-15 min) to S3."\n\nA longer period loses more than a quarter '
        "of an hour of settings when the volume goes (error); a shorter one only costs S3 "
        "requests the strategy does not ask for (info)."
    )
    remediation = (
        "Set the sync period inside the policy's range (`tiers.config.min_interval` - "
        "`max_interval`): `sleep 600` in an rclone loop, `STATEKEEPER_RCLONE_INTERVAL=10m`, "
        "`dataangel.io/rclone-interval: 600s` (read through `DATA_GUARD_RCLONE_INTERVAL`), or "
        "a CronJob schedule such as `*/10 * * * *`."
    )
    bad_example = """\
containers:
  - name: rclone
    image: rclone/rclone:1.68.1
    command: [/bin/sh, -c]
    args: ["while true; do rclone sync /config minio:backups/app; sleep 3600; done"]
"""
    good_example = """\
containers:
  - name: rclone
    image: rclone/rclone:1.68.1
    command: [/bin/sh, -c]
    args: ["while true; do rclone sync /config minio:backups/app; sleep 600; done"]
"""
    details = (
        "Judges every sync SK301 accepts. The period is read from, in order: the policy's "
        "`tiers.config.interval_env` variables, its `cron_env` variables (a cron schedule), "
        "`--interval`, a `sleep` in the loop (`sleep 600`, `sleep 10m`, `sleep $VAR`); for a "
        "backup provider, from its `interval` sources, else its `default_interval` "
        "(statekeeper's agent: `STATEKEEPER_RCLONE_INTERVAL`, default 10m; DataAngel: "
        "`DATA_GUARD_RCLONE_INTERVAL`, default 60s); for a CronJob, the longest gap of its "
        "schedule (read with croniter). A path synced within the range by one sync passes. "
        "Longer than the range, or no readable period: error. Shorter: info (the finding's "
        "severity is lowered)."
    )
    fix = NotFixable(
        "the period lives where the sync is configured (a sleep in a script, a provider's "
        "variable or annotation, a CronJob schedule): set it there, inside the policy's range"
    )

    def check(self, inventory: Inventory, policy: Policy) -> Iterable[Violation]:
        tier = policy.tiers.config
        wanted = f"{_minutes(tier.min_seconds)}-{_minutes(tier.max_seconds)}"
        for workload, syncs in config_syncs(inventory, policy):
            yield from distinct(
                Violation(workload.resource, message, severity=severity)
                for path, found in syncs.items()
                for message, severity in self._problems(path, found, wanted, policy)
            )

    @staticmethod
    def _problems(
        path: str, found: list[Sync], wanted: str, policy: Policy
    ) -> Iterator[tuple[str, Severity | None]]:
        """Each sync of `path` outside the range, when none is inside it: too rarely or
        unreadable is an error, too often only info (more S3 requests than needed)."""
        tier = policy.tiers.config
        good = [s for s in found if not s.problem]
        if not good:
            return  # SK301's
        if any(
            s.seconds is not None and tier.min_seconds <= s.seconds <= tier.max_seconds
            for s in good
        ):
            return
        for sync in good:
            if sync.seconds is None:
                how, severity = f"but its period cannot be read ({sync.source})", None
            else:
                how = f"every {_minutes(sync.seconds)} ({sync.source})"
                severity = Severity.INFO if sync.seconds < tier.min_seconds else None
            message = f"{sync.label} syncs {path} {how}; the strategy asks for every {wanted}"
            yield message + (" (more S3 requests than needed)" if severity else ""), severity


def _unsynced(path: str, found: list[Sync]) -> Iterator[str]:
    good = [s for s in found if not s.problem]
    if good:
        return
    if found:
        yield found[0].problem
    else:
        yield f"mounts {path} but no rclone sidecar or backup provider syncs it to S3"


@dataclass(slots=True)
class Sync:
    """One sync of a config path: by an rclone container, a declared provider or a CronJob."""

    label: str  # e.g. "sidecar 'rclone'", "dataangel native sidecar 'dataangel'"
    seconds: float | None
    source: str  # where the period was read
    problem: str = ""  # why it does not count (a non-S3 remote)


ConfigSyncs = list[tuple[Workload, dict[str, list[Sync]]]]
CronSyncs = dict[tuple[str | None, str, str], list[tuple[Workload, Container, RcloneSync]]]


def config_syncs(inventory: Inventory, policy: Policy) -> ConfigSyncs:
    """Long-running, non-exempt workloads with /config state: path -> the syncs covering it."""
    return cached(inventory, "config-syncs", lambda: _all_syncs(inventory, policy))


def _all_syncs(inventory: Inventory, policy: Policy) -> ConfigSyncs:
    cron_syncs = _cronjob_syncs(inventory, policy)
    result = []
    for workload in inventory.workloads:
        if not workload.config_paths or not workload.long_running:
            continue
        if workload.backup_exempt is not None:
            continue
        result.append(
            (workload, {p: _syncs(workload, p, policy, cron_syncs) for p in workload.config_paths})
        )
    return result


def _syncs(
    workload: Workload, path: str, policy: Policy,
    cron_syncs: CronSyncs,
) -> list[Sync]:  # fmt: skip
    app = next((c for c in workload.app_containers if c.mount_for(path)), None)
    target = workload.locate(app, path) if app is not None else None
    found: list[Sync] = []
    for use in workload.providers:
        if "file-sync" not in use.tiers:
            continue
        paths = use.file_paths
        container = use.container
        if paths is None or any(_same(workload, container, p, path, target) for p in paths):
            found.append(Sync(use.label, use.interval, use.interval_source))
    for container in workload.all_containers:
        if not container.long_running or container.role != "rclone":
            continue
        for sync in rclone_syncs(container, policy):
            if not _same(workload, container, sync.source, path, target):
                continue
            seconds, source = sync_interval(container, policy)
            form = "native sidecar" if container.native_sidecar else "sidecar"
            label = f"{form} {container.name!r}"
            kind = remote_type(container, sync.destination)
            problem = f"syncs {path} to a {kind} remote, not S3" if kind not in NOT_S3 else ""
            found.append(Sync(label, seconds, source, problem))
    # A CronJob running rclone on the same claim (ReadWriteMany, or scheduled on the same node).
    volume = workload.volumes.get(target[0]) if target is not None else None
    if target is not None and volume is not None and volume.claim_name:
        key = (workload.scope, workload.namespace or "", volume.claim_name)
        for cron, container, sync in cron_syncs.get(key, []):
            located = cron.locate(container, sync.source.rstrip("/") or "/")
            if located is None or (located[1] and not is_under(target[1], located[1])):
                continue
            seconds = cron_interval(cron.cron_schedule) if cron.cron_schedule else None
            kind = remote_type(container, sync.destination)
            problem = f"syncs {path} to a {kind} remote, not S3" if kind not in NOT_S3 else ""
            found.append(Sync(f"CronJob {cron.name!r}", seconds,
                              f"schedule {cron.cron_schedule!r}", problem))  # fmt: skip
    return found


def _cronjob_syncs(inventory: Inventory, policy: Policy) -> CronSyncs:
    """(scope, namespace, claim) -> the rclone syncs of CronJobs mounting that claim."""
    found: CronSyncs = {}
    for cron in inventory.workloads:
        if cron.kind != "CronJob":
            continue
        for container in cron.all_containers:
            if container.role != "rclone":
                continue
            for sync in rclone_syncs(container, policy):
                mount = container.mount_for(sync.source.rstrip("/") or "/")
                volume = cron.volumes.get(mount.volume) if mount is not None else None
                if volume is not None and volume.claim_name:
                    key = (cron.scope, cron.namespace or "", volume.claim_name)
                    found.setdefault(key, []).append((cron, container, sync))
    return found


def _same(
    workload: Workload,
    container: Container | None,
    source: str,
    path: str,
    target: tuple[str, str] | None,
) -> bool:
    """Does `source` (in the sidecar) cover config `path` (in the app)?"""
    if not source.startswith("/"):
        return False
    located = (
        workload.locate(container, source.rstrip("/") or "/") if container is not None else None
    )
    if target is not None and located is not None:
        volume, inner = located
        return (
            volume == target[0] and is_under(target[1], inner) if inner else (volume == target[0])
        )
    return is_under(path, source.rstrip("/"))
