"""What SK301 and SK302 share: strategy §3, Tier 2, an rclone sidecar syncs /config to S3
every 5-15 minutes. `config_syncs` finds every sync, once per inventory."""

from __future__ import annotations

from dataclasses import dataclass

from statekeeper.inventory.cron import cron_interval
from statekeeper.inventory.model import Container, Inventory, Workload, is_under
from statekeeper.inventory.rclone import RcloneSync, rclone_syncs, remote_type, sync_interval
from statekeeper.policy.model import Policy
from statekeeper.rules.base import cached

NOT_S3 = (None, "s3")  # remote types that count as S3 (None: not said, trusted)


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
