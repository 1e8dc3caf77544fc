"""SK302 config-sync-interval: /config is synced every 5-15 minutes.

The rule's docs page is docs/rules/SK302-config-sync-interval.md, its test cases
tests/rules/cases/SK302.yaml.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from statekeeper.findings import Severity
from statekeeper.inventory.model import Inventory
from statekeeper.policy.model import Policy
from statekeeper.rules.base import NotFixable, Rule, Violation, distinct, register
from statekeeper.rules.config import Sync, config_syncs


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g} min"


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
