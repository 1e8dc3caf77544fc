"""SK204 litestream-config-consistent: The litestream config matches the mounted databases and
is mounted where it is read.

The rule's docs page is docs/rules/SK204-litestream-config-consistent.md, its test cases
tests/rules/cases/SK204.yaml.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from statekeeper.findings import Severity
from statekeeper.inventory.model import Inventory
from statekeeper.policy.model import Policy
from statekeeper.rules.base import FixedBy, Rule, Violation, register
from statekeeper.rules.sqlite import (
    TIER1,
    SqliteAnalysis,
    db_container,
    location_of,
    sqlite_workloads,
    workload_violations,
)


@register
class LitestreamConfigConsistent(Rule):
    id = "SK204"
    slug = "litestream-config-consistent"
    severity = Severity.ERROR
    joins_violations = True
    title = "The litestream config matches the mounted databases and is mounted where it is read"
    rationale = (
        TIER1 + "\n\nA sidecar replicating a path its container does not mount streams "
        "nothing; a restore init container that reads a config it does not mount fails (or "
        "restores nothing) exactly when a restore is needed."
    )
    remediation = (
        "Mount the litestream ConfigMap at the same path in the restore init container and in "
        "the sidecar, mount the database volume in both, and list in `dbs:` exactly the "
        "paths where the app's databases are mounted."
    )
    bad_example = """\
initContainers:
  - name: litestream-restore
    image: litestream/litestream:0.5.2
    args: [restore, -if-db-not-exists, -if-replica-exists, -config, /etc/litestream.yml,
           /app/data/kuma.db]
    volumeMounts: [{name: data, mountPath: /app/data}]        # no litestream-config mount
containers:
  - name: litestream
    image: litestream/litestream:0.5.2
    args: [replicate, -config, /etc/litestream.yml]
    volumeMounts:
      - {name: data, mountPath: /app/data}
      - {name: litestream-config, mountPath: /etc/litestream.yml, subPath: litestream.yml}
"""
    good_example = """\
initContainers:
  - name: litestream-restore
    image: litestream/litestream:0.5.2
    args: [restore, -if-db-not-exists, -if-replica-exists, -config, /etc/litestream.yml,
           /app/data/kuma.db]
    volumeMounts:
      - {name: data, mountPath: /app/data}
      - {name: litestream-config, mountPath: /etc/litestream.yml, subPath: litestream.yml}
"""
    details = (
        "Checks, for workloads using litestream directly: the config parses; each `dbs[].path` "
        "is on a volume the sidecar mounts and that an app container mounts too; each "
        "restore init container that reads a config (`-config`, or the default "
        "/etc/litestream.yml when given a database path) mounts one; the sidecar's config "
        "is mounted. Restore and replicate calls naming a database path are checked against "
        "the database volume mounts."
    )
    fix = FixedBy("statekeeper.fix.backup:fix_config_mount", step=5)

    def check(self, inventory: Inventory, policy: Policy) -> Iterable[Violation]:
        for analysis in sqlite_workloads(inventory, policy):
            if not analysis.replicators and not analysis.restore_inits:
                continue
            yield from workload_violations(analysis.workload, self._problems(analysis, policy))

    def _problems(self, analysis: SqliteAnalysis, policy: Policy) -> Iterator[str]:
        workload = analysis.workload
        configs = {c: (cfg, path) for c, cfg, path in workload.litestream_configs}
        app_volumes = {m.volume for c in workload.app_containers for m in c.mounts}
        declared = {
            location_of(workload, db_container(workload, db), db.path) for db in workload.sqlite_dbs
        }
        for container in analysis.replicators:
            if container not in configs:
                continue
            config, path = configs[container]
            if container.mount_for(path) is None:
                yield f"sidecar {container.name!r} reads {path} but no volume provides it"
                continue
            if config is None:
                continue
            if config.error:
                yield f"litestream config {config.resource.name}/{config.key}: {config.error}"
            for db in config.dbs:
                mount = container.mount_for(db.path)
                if mount is None:
                    yield f"config lists {db.path}, which sidecar {container.name!r} does not mount"
                elif mount.volume not in app_volumes:
                    yield (
                        f"config lists {db.path} on volume {mount.volume!r}, which no app "
                        "container mounts"
                    )
                elif workload.sqlite_explicit and (
                    location_of(workload, container, db.path) not in declared
                ):
                    yield (
                        f"config lists {db.path}, which is not a database of the "
                        "statekeeper.io/sqlite annotation"
                    )
        for container, calls in analysis.restore_inits:
            for call in calls:
                uses_config = "config" in call.options or (
                    bool(call.positional) and "://" not in call.positional[0]
                )
                if not uses_config:
                    continue
                path = call.options.get("config") or policy.tiers.sqlite.default_config_path
                if container.mount_for(path) is None:
                    yield (
                        f"restore init container {container.name!r} reads {path} but does not "
                        "mount the litestream config"
                    )
                target = call.options.get("o") or (call.positional[0] if call.positional else "")
                if target and "://" not in target and container.mount_for(target) is None:
                    yield (
                        f"restore init container {container.name!r} restores {target} but "
                        "does not mount its volume"
                    )
