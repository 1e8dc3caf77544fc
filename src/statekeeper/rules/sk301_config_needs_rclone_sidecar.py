"""SK301 config-needs-rclone-sidecar: /config is synced to S3 by an rclone sidecar or a backup
provider.

The rule's docs page is docs/rules/SK301-config-needs-rclone-sidecar.md, its test cases
tests/rules/cases/SK301.yaml.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from statekeeper.findings import Severity
from statekeeper.inventory.model import Inventory
from statekeeper.policy.model import Policy
from statekeeper.rules.base import FixedBy, Rule, Violation, distinct, register
from statekeeper.rules.config import Sync, config_syncs


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


def _unsynced(path: str, found: list[Sync]) -> Iterator[str]:
    good = [s for s in found if not s.problem]
    if good:
        return
    if found:
        yield found[0].problem
    else:
        yield f"mounts {path} but no rclone sidecar or backup provider syncs it to S3"
