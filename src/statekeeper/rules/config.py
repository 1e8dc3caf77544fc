"""Strategy §3, Tier 2: an rclone sidecar syncs /config to S3 every 5-15 minutes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from statekeeper.findings import Finding, Severity
from statekeeper.inventory.detect import rclone_syncs, remote_type, split_list, sync_interval
from statekeeper.inventory.model import UNSET, Container, Inventory, Workload, is_under
from statekeeper.policy.model import Policy
from statekeeper.rules.base import Rule, register


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g} min"


@register
class ConfigNeedsRcloneSidecar(Rule):
    id = "SK301"
    slug = "config-needs-rclone-sidecar"
    severity = Severity.ERROR
    title = "/config is synced to S3 every 5-15 minutes by an rclone sidecar"
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
        "`/config` state: an app container mounting a volume (not a ConfigMap/Secret) at a "
        "path of `tiers.config.paths`, or the paths of the `statekeeper.io/config-path` "
        "annotation. A sync is `rclone sync|copy|bisync SRC DST` (in the command, args or a "
        "script mounted from a ConfigMap) whose source is the config volume (or a directory "
        "containing it) and whose destination is a remote (not a local path; when "
        "`RCLONE_CONFIG_<NAME>_TYPE` is set it must be `s3`). The period is read from, in "
        "order: the policy's `interval_env` variables, its `cron_env` variables (a cron "
        "schedule), `--interval`, a `sleep` in the loop (`sleep 600`, `sleep 10m`, `sleep "
        "$VAR`). No readable period is a finding too. With statekeeper's agent the period is "
        "`STATEKEEPER_RCLONE_INTERVAL` (default 10m), also read from an `envFrom` ConfigMap. "
        "Applies to long-running workloads (not Jobs/CronJobs)."
    )
    fixable = True

    def check(self, inventory: Inventory, policy: Policy) -> Iterable[Finding]:
        for workload in inventory.workloads:
            if not workload.config_paths or not workload.long_running:
                continue
            if workload.backup_exempt is not None:
                continue
            problems = [
                p for path in workload.config_paths for p in self._path(workload, path, policy)
            ]
            if problems:
                yield self.finding(
                    inventory,
                    workload.resource,
                    "; ".join(dict.fromkeys(problems)),
                    app=workload.app,
                    environment=workload.environment,
                )

    def _path(self, workload: Workload, path: str, policy: Policy) -> Iterator[str]:
        tier = policy.tiers.config
        app = next((c for c in workload.app_containers if c.mount_for(path)), None)
        target = workload.locate(app, path) if app is not None else None
        candidates: list[tuple[Container, str]] = []
        for container in workload.all_containers:
            if not container.long_running:
                continue
            if container.role == "agent-run":
                value = container.env_value(policy.agent.config_env)
                if value is UNSET or (
                    isinstance(value, str)
                    and any(self._same(workload, container, p, path, target)
                            for p in split_list(value))
                ):  # fmt: skip
                    candidates.append((container, ""))
            elif container.role == "rclone":
                for sync in rclone_syncs(container, policy):
                    if not self._same(workload, container, sync.source, path, target):
                        continue
                    kind = remote_type(container, sync.destination)
                    if kind is not None and kind != "s3":
                        candidates.append((container, f"syncs {path} to a {kind} remote, not S3"))
                    else:
                        candidates.append((container, ""))
        good = [c for c, problem in candidates if not problem]
        if not good:
            if candidates:
                yield candidates[0][1]
            else:
                yield f"mounts {path} but no rclone sidecar syncs it to S3"
            return
        for container in good:
            seconds, source = sync_interval(container, policy)
            if seconds is None:
                yield (
                    f"sidecar {container.name!r} syncs {path} but its period cannot be read "
                    f"({source}); the strategy asks for every "
                    f"{_minutes(tier.min_seconds)}-{_minutes(tier.max_seconds)}"
                )
            elif not tier.min_seconds <= seconds <= tier.max_seconds:
                yield (
                    f"sidecar {container.name!r} syncs {path} every {_minutes(seconds)} "
                    f"({source}); the strategy asks for every "
                    f"{_minutes(tier.min_seconds)}-{_minutes(tier.max_seconds)}"
                )
            else:
                return

    @staticmethod
    def _same(
        workload: Workload,
        container: Container,
        source: str,
        path: str,
        target: tuple[str, str] | None,
    ) -> bool:
        """Does `source` (in the sidecar) cover config `path` (in the app)?"""
        if not source.startswith("/"):
            return False
        located = workload.locate(container, source.rstrip("/") or "/")
        if target is not None and located is not None:
            volume, inner = located
            return (
                volume == target[0] and is_under(target[1], inner)
                if inner
                else (volume == target[0])
            )
        return is_under(path, source.rstrip("/"))
