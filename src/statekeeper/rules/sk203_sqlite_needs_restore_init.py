"""SK203 sqlite-needs-restore-init: A restore init container brings the database back from S3.

The rule's docs page is docs/rules/SK203-sqlite-needs-restore-init.md, its test cases
tests/rules/cases/SK203.yaml.
"""

from __future__ import annotations

from collections.abc import Iterable

from statekeeper.findings import Severity
from statekeeper.inventory.model import Inventory
from statekeeper.policy.model import Policy
from statekeeper.rules.base import FixedBy, Rule, Violation, register
from statekeeper.rules.sqlite import (
    AGENT_HINT,
    TIER1,
    Location,
    covering,
    db_container,
    describe_app,
    location_of,
    provider_gaps,
    sqlite_workloads,
    workload_violations,
)


@register
class SqliteNeedsRestoreInit(Rule):
    id = "SK203"
    slug = "sqlite-needs-restore-init"
    severity = Severity.ERROR
    joins_violations = True
    title = "A restore init container brings the database back from S3"
    rationale = (
        TIER1 + "\n\nA replica is only a backup if the pod restores it: on a new or wiped "
        "volume, an init container must run `litestream restore -if-db-not-exists "
        "-if-replica-exists` before the app starts, or the app creates an empty database and "
        "the sidecar replicates the empty one over the history."
    )
    remediation = (
        "Add an init container `litestream restore -if-db-not-exists -if-replica-exists "
        "-config /etc/litestream.yml <db>` for each database (after the integrity check), "
        "mounting the database volume and the litestream config; or use statekeeper's agent."
    )
    bad_example = """\
initContainers:
  - name: litestream-restore
    image: litestream/litestream:0.5.2
    args: [restore, -config, /etc/litestream.yml, /data/db.sqlite3]   # overwrites? fails?
    volumeMounts:
      - {name: data, mountPath: /data}
      - {name: litestream-config, mountPath: /etc/litestream.yml, subPath: litestream.yml}
"""
    good_example = """\
initContainers:
  - name: litestream-restore
    image: litestream/litestream:0.5.2
    args: [restore, -if-db-not-exists, -if-replica-exists,
           -config, /etc/litestream.yml, /data/db.sqlite3]
    volumeMounts:
      - {name: data, mountPath: /data}
      - {name: litestream-config, mountPath: /etc/litestream.yml, subPath: litestream.yml}
"""
    details = (
        "Each `litestream restore` call of a regular init container must carry the policy's "
        "`tiers.sqlite.restore_flags` (one or two dashes), and every detected database must be "
        "restored by one (compared by volume and path inside it; a restore given a replica URL "
        "with `-o <db>` counts for that db). " + AGENT_HINT
    )
    fix = FixedBy("statekeeper.fix.backup:fix_workload", step=6, batch="per_workload")

    def check(self, inventory: Inventory, policy: Policy) -> Iterable[Violation]:
        wanted = [f.lstrip("-") for f in policy.tiers.sqlite.restore_flags]
        for analysis in sqlite_workloads(inventory, policy):
            workload = analysis.workload
            covered, gaps = provider_gaps(analysis, "restore-on-start")
            if covered:
                continue
            if not analysis.restore_inits:
                yield from workload_violations(
                    workload,
                    gaps or [f"{describe_app(workload)} has no init container restoring it "
                             "with `litestream restore -if-db-not-exists -if-replica-exists`"],
                )  # fmt: skip
                continue
            restored: set[Location] = set()
            for container, calls in analysis.restore_inits:
                for call in calls:
                    missing = [f"-{f}" for f in wanted if f not in call.flags]
                    if missing:
                        yield Violation(
                            workload.resource,
                            f"{container.name!r} restores without {' '.join(missing)}",
                            container.path,
                        )
                    target = call.options.get("o") or (
                        call.positional[0] if call.positional else ""
                    )
                    if target and "://" not in target:
                        restored.add(location_of(workload, container, target))
            for db in workload.sqlite_dbs:
                where = location_of(workload, db_container(workload, db), db.path)
                if where not in restored and covering(analysis, "restore-on-start", db) is None:
                    message = f"database {db.path} is not restored by an init container"
                    yield Violation(workload.resource, message)
