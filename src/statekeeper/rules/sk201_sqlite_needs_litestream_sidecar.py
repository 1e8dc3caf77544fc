"""SK201 sqlite-needs-litestream-sidecar: Every SQLite database is streamed to S3 by litestream
or a backup provider.

The rule's docs page is docs/rules/SK201-sqlite-needs-litestream-sidecar.md, its test cases
tests/rules/cases/SK201.yaml.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from statekeeper.findings import Severity
from statekeeper.inventory.model import Inventory
from statekeeper.policy.model import Policy
from statekeeper.rules.base import FixedBy, Rule, Violation, register
from statekeeper.rules.sqlite import (
    AGENT_HINT,
    TIER1,
    SqliteAnalysis,
    covering,
    db_container,
    describe_app,
    location_of,
    provider_gaps,
    sqlite_workloads,
    workload_violations,
)


@register
class SqliteNeedsLitestreamSidecar(Rule):
    id = "SK201"
    slug = "sqlite-needs-litestream-sidecar"
    severity = Severity.ERROR
    joins_violations = True
    title = "Every SQLite database is streamed to S3 by litestream or a backup provider"
    rationale = (
        TIER1 + "\n\nA SQLite file on a volume is one disk failure or one bad upgrade from "
        "gone; Litestream keeps a copy in S3 a few seconds behind. The database must also be "
        "on a persistent volume: on an emptyDir it is lost at every restart."
    )
    remediation = (
        "Add a `litestream replicate` sidecar whose config (a ConfigMap `litestream.yml`) lists "
        "every database path with an `s3` replica, mounting the database volume at the same "
        "path as the app; keep the database on a PersistentVolumeClaim. Or use statekeeper's "
        "agent (`statekeeper fix` / `statekeeper generate` write it)."
    )
    bad_example = """\
containers:
  - name: mealie
    image: ghcr.io/mealie-recipes/mealie:v1.12.0
    volumeMounts: [{name: data, mountPath: /app/data}]
"""
    good_example = """\
containers:
  - name: mealie
    image: ghcr.io/mealie-recipes/mealie:v1.12.0
    volumeMounts: [{name: data, mountPath: /app/data}]
  - name: litestream
    image: litestream/litestream:0.5.2
    args: [replicate, -config, /etc/litestream.yml]
    volumeMounts:
      - {name: data, mountPath: /app/data}
      - {name: litestream-config, mountPath: /etc/litestream.yml, subPath: litestream.yml}
# ConfigMap litestream.yml:
#   dbs:
#     - path: /app/data/mealie.db
#       replicas: [{url: s3://backups/mealie/mealie.db}]
"""
    details = (
        "SQLite detection is described in docs/detection.md. Databases are compared by volume "
        "and path inside the volume, so a sidecar may mount the volume elsewhere than the app. "
        "When the sidecar's config is not among the audited files, its paths cannot be checked "
        "and the sidecar is trusted. " + AGENT_HINT
    )
    # One edit of each workload adds its whole backup (SK201-SK203, SK301).
    fix = FixedBy("statekeeper.fix.backup:fix_workload", step=6, batch="per_workload")

    def check(self, inventory: Inventory, policy: Policy) -> Iterable[Violation]:
        for analysis in sqlite_workloads(inventory, policy):
            yield from workload_violations(analysis.workload, self._problems(analysis))

    def _problems(self, analysis: SqliteAnalysis) -> Iterator[str]:
        workload = analysis.workload
        _covered, gaps = provider_gaps(analysis, "sqlite-stream")
        streamers = [u for u in analysis.providers if "sqlite-stream" in u.tiers]
        if not analysis.replicators and not streamers:
            yield f"{describe_app(workload)} has no litestream sidecar streaming it to S3"
        for db in workload.sqlite_dbs:
            container = db_container(workload, db)
            mount = container.mount_for(db.path) if container is not None else None
            volume = workload.volumes.get(mount.volume) if mount is not None else None
            if mount is None:
                yield f"database {db.path} is on the container's writable layer, not a volume"
            elif volume is not None and volume.ephemeral:
                yield (
                    f"database {db.path} is on {volume.source} volume {volume.name!r}; "
                    "it must be on a persistent volume"
                )
            if not analysis.replicators and not streamers:
                continue
            if covering(analysis, "sqlite-stream", db) is not None:
                continue
            where = location_of(workload, container, db.path)
            if analysis.replicators and (
                where in analysis.replicated or analysis.replicated_unknown
            ):
                continue
            if not analysis.replicators:
                yield from (g for g in gaps if g.startswith(f"database {db.path} "))
            elif where in analysis.non_s3:
                yield f"database {db.path} is replicated, but not to S3"
            else:
                yield f"database {db.path} is not replicated by the sidecar"
