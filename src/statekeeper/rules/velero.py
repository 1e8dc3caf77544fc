"""Strategy §3, Tier 3: a daily Velero schedule covers every namespace, volumes included."""

from __future__ import annotations

from collections.abc import Iterable

from statekeeper.findings import Finding, Severity
from statekeeper.inventory.detect import cron_interval
from statekeeper.inventory.model import Inventory, NamespaceInfo, VeleroSchedule
from statekeeper.policy.model import Policy
from statekeeper.rules.base import NONE, Rule, register


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:g}h"


@register
class VeleroDailyAllNamespaces(Rule):
    id = "SK401"
    slug = "velero-daily-all-namespaces"
    severity = Severity.ERROR
    title = "A daily Velero schedule backs up every namespace and its volumes"
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
        "it, not in `excludedNamespaces`) and includes volumes (`snapshotVolumes` not false, "
        "or `defaultVolumesToFsBackup`, and no resource filter leaving PVs out). Namespaces are "
        "those of the Namespace objects and of every namespaced object with an explicit "
        "`metadata.namespace`, per environment; a schedule covers its own environment (or "
        "all, when its environment is unknown). Each uncovered namespace is one finding."
    )
    fixable = True

    def check(self, inventory: Inventory, policy: Policy) -> Iterable[Finding]:
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
            yield self._finding(inventory, info, f"namespace {name!r} is not covered: {why} "
                                f"(daily = at least every {max_seconds})")  # fmt: skip

    def _finding(self, inventory: Inventory, info: NamespaceInfo, message: str) -> Finding:
        app = inventory.app(info.resource) if info.declared else None
        return self.finding(
            inventory,
            info.resource,
            message,
            kind="Namespace",
            name=info.name,
            namespace=NONE,
            app=app if app else NONE,
            environment=info.environment if info.environment else NONE,
        )

    @staticmethod
    def _why_not(schedule: VeleroSchedule, namespace: str, limit: float) -> str | None:
        label = f"{schedule.source} {schedule.resource.namespace or '-'}/{schedule.name}"
        if schedule.source != "Schedule":
            label = (
                f"{schedule.source} schedule {schedule.name!r} ({schedule.resource.origin.file})"
            )
        else:
            label = f"Schedule {schedule.resource.namespace or '-'}/{schedule.name}"
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
        if not schedule.volumes:
            return f"{label} leaves volumes out"
        return None
