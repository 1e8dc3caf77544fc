"""SK401 velero-daily-all-namespaces: A daily Velero schedule backs up every namespace.

The rule's docs page is docs/rules/SK401-velero-daily-all-namespaces.md, its test cases
tests/rules/cases/SK401.yaml.
"""

from __future__ import annotations

from collections.abc import Iterable

from statekeeper.findings import Severity
from statekeeper.inventory.cron import cron_interval
from statekeeper.inventory.model import Inventory, NamespaceInfo, VeleroSchedule
from statekeeper.policy.model import Policy
from statekeeper.rules.base import FixedBy, Rule, Subject, Violation, register
from statekeeper.rules.velero import hours_text


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
            return f"{label} runs every {hours_text(interval)} ({schedule.cron!r}), not daily"
        return None
