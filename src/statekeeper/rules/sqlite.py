"""Strategy §3, Tier 1: Litestream for every SQLite database, with Fail-Safe Integrity."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from statekeeper.findings import Severity
from statekeeper.inventory.litestream import LitestreamCall, litestream_calls
from statekeeper.inventory.model import Container, Inventory, ProviderUse, SqliteDb, Workload
from statekeeper.policy.model import Policy
from statekeeper.rules.base import FixedBy, Rule, Violation, cached, register

_TIER1 = (
    'Strategy §3, Tier 1 (Real-time DB Backup, Litestream): "**Applicability:** All '
    "SQLite-based applications. **Requirement:** A `litestream` sidecar must be configured to "
    'stream changes to S3 storage. **Integrity:** Use the "Fail-Safe Integrity" pattern '
    '(check-integrity initContainer)."'
)
_AGENT = (
    "A backup provider of the policy (`backup.providers`, docs/providers.md: statekeeper's "
    "agent, DataAngel, or one you declare) satisfies this rule for the databases it lists "
    "(e.g. `STATEKEEPER_SQLITE_PATHS`, `DATA_GUARD_SQLITE_PATHS` or the `dataangel.io/"
    "sqlite-paths` annotation it reads), when its container's form runs that tier: a regular "
    "init container the start-up tiers, a sidecar the running ones, a native sidecar both. "
    "Apps configured for a database server (`DATABASE_URL=postgresql://…`, `DB_ENGINE`, …: "
    "`backup.server_database`) are not SQLite apps."
)

Location = tuple[str, str]  # (volume, path inside the volume), or ("", absolute path)
_SQLITE_TIERS = frozenset({"sqlite-stream", "integrity-check", "restore-on-start"})


@dataclass(slots=True)
class SqliteAnalysis:
    """What a SQLite workload has of Tier 1, computed once for SK201-SK204."""

    workload: Workload
    providers: list[ProviderUse] = field(default_factory=list)  # declared providers
    replicators: list[Container] = field(default_factory=list)  # litestream sidecars
    restore_inits: list[tuple[Container, list[LitestreamCall]]] = field(default_factory=list)
    integrity_inits: list[Container] = field(default_factory=list)
    replicated: set[Location] = field(default_factory=set)
    non_s3: set[Location] = field(default_factory=set)
    replicated_unknown: bool = False  # a replicator whose config is not in the inventory


def _where(workload: Workload, container: Container | None, path: str) -> Location:
    if container is not None:
        located = workload.locate(container, path)
        if located is not None:
            return located
    return ("", posixpath.normpath(path))


def db_container(workload: Workload, db: SqliteDb) -> Container | None:
    for container in workload.all_containers:
        if container.name == db.container:
            return container
    return workload.app_containers[0] if workload.app_containers else None


def covering(analysis: SqliteAnalysis, tier: str, db: SqliteDb) -> ProviderUse | None:
    """A declared provider covering `tier` for database `db`, if any."""
    workload = analysis.workload
    app = db_container(workload, db)
    where = _where(workload, app, db.path)
    for use in analysis.providers:
        if tier not in use.tiers:
            continue
        if use.sqlite_paths is None:  # set through a reference: trusted
            return use
        # An injected provider's paths are read as the app sees them.
        seen_by = use.container or app
        if any(_where(workload, seen_by, p) == where for p in use.sqlite_paths):
            return use
    return None


def provider_gaps(analysis: SqliteAnalysis, tier: str) -> tuple[bool, list[str]]:
    """(covered, problems) of the declared providers for `tier`: covered when a provider
    covers every database (any database, when none is known); problems name each database a
    provider of that tier misses, with the paths it does cover and where it read them."""
    users = [u for u in analysis.providers if tier in u.tiers]
    dbs = analysis.workload.sqlite_dbs
    if not users:
        return False, []
    if not dbs:
        return True, []
    missed = [db for db in dbs if covering(analysis, tier, db) is None]
    if not missed:
        return True, []
    use = users[0]
    listed = ", ".join(use.sqlite_paths or []) or "no database"
    source = f" ({use.sqlite_source})" if use.sqlite_source else ""
    verb = {"sqlite-stream": "streamed", "integrity-check": "checked",
            "restore-on-start": "restored"}[tier]  # fmt: skip
    return False, [
        f"database {db.path} is not {verb} by {use.label}: it lists {listed}{source}"
        for db in missed
    ]


def sqlite_workloads(inventory: Inventory, policy: Policy) -> list[SqliteAnalysis]:
    """Long-running SQLite workloads not exempted by `statekeeper.io/backup: none: <reason>`."""
    return cached(inventory, "sqlite", lambda: _analyse_all(inventory, policy))


def _analyse_all(inventory: Inventory, policy: Policy) -> list[SqliteAnalysis]:
    return [
        _analyse(w, policy)
        for w in inventory.workloads
        if w.sqlite and w.long_running and w.backup_exempt is None
    ]


def _analyse(workload: Workload, policy: Policy) -> SqliteAnalysis:
    result = SqliteAnalysis(workload)
    config_by_container = {id(c): (cfg, path) for c, cfg, path in workload.litestream_configs}
    result.providers = [u for u in workload.providers if u.tiers & _SQLITE_TIERS]
    for container in workload.all_containers:
        role = container.role
        if role == "integrity":
            result.integrity_inits.append(container)
        elif role == "litestream":
            calls = litestream_calls(container)
            if container.runs_before_app:
                restores = [c for c in calls if c.subcommand == "restore"]
                if restores:
                    result.restore_inits.append((container, restores))
                continue
            if calls and not any(c.subcommand == "replicate" for c in calls):
                continue
            result.replicators.append(container)
            for call in calls:
                if call.subcommand == "replicate" and call.positional:
                    where = _where(workload, container, call.positional[0])
                    urls = call.positional[1:]
                    if any(u.startswith("s3://") for u in urls) or not urls:
                        result.replicated.add(where)
                    else:
                        result.non_s3.add(where)
            config, _path = config_by_container.get(id(container), (None, ""))
            if id(container) in config_by_container and config is None:
                result.replicated_unknown = True
            if config is not None:
                for db in config.dbs:
                    target = result.replicated if db.s3 else result.non_s3
                    target.add(_where(workload, container, db.path))
    return result


def _violations(workload: Workload, problems: Iterable[str]) -> Iterator[Violation]:
    """Workload-wide problems, reported at the document's first line (no field lookup: cheap even
    when thousands of workloads miss a sidecar); a container's problem is at its line."""
    for problem in problems:
        yield Violation(workload.resource, problem)


def _reason(workload: Workload) -> str:
    """`SQLite app <name> (<why it is one>)`; the why never holds parentheses of its own."""
    name = workload.app or workload.resource.name
    return f"SQLite app {name} ({workload.sqlite_reason})"


@register
class SqliteNeedsLitestreamSidecar(Rule):
    id = "SK201"
    slug = "sqlite-needs-litestream-sidecar"
    severity = Severity.ERROR
    joins_violations = True
    title = "Every SQLite database is streamed to S3 by litestream or a backup provider"
    rationale = (
        _TIER1 + "\n\nA SQLite file on a volume is one disk failure or one bad upgrade from "
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
        "and the sidecar is trusted. " + _AGENT
    )
    # One edit of each workload adds its whole backup (SK201-SK203, SK301).
    fix = FixedBy("statekeeper.fix.backup:fix_workload", step=6, batch="per_workload")

    def check(self, inventory: Inventory, policy: Policy) -> Iterable[Violation]:
        for analysis in sqlite_workloads(inventory, policy):
            yield from _violations(analysis.workload, self._problems(analysis))

    def _problems(self, analysis: SqliteAnalysis) -> Iterator[str]:
        workload = analysis.workload
        _covered, gaps = provider_gaps(analysis, "sqlite-stream")
        streamers = [u for u in analysis.providers if "sqlite-stream" in u.tiers]
        if not analysis.replicators and not streamers:
            yield f"{_reason(workload)} has no litestream sidecar streaming it to S3"
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
            where = _where(workload, container, db.path)
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


@register
class SqliteNeedsIntegrityInit(Rule):
    id = "SK202"
    slug = "sqlite-needs-integrity-init"
    severity = Severity.ERROR
    joins_violations = True
    title = "An integrity-check init container runs before the restore"
    rationale = (
        _TIER1 + "\n\nFail-Safe Integrity: before the app starts, an init container checks "
        "the database (`PRAGMA integrity_check`) and moves a corrupt file aside, so that the "
        "restore init container (which only restores when no database exists) brings back the "
        "last good replica. Run after the restore, the check finds corruption too late: the "
        "corrupt file has already been kept."
    )
    remediation = (
        "Add an init container that runs `sqlite3 <db> 'PRAGMA integrity_check'` on each "
        "database and moves a failing file aside (never deletes it), placed in "
        "`initContainers` before the litestream restore; or use statekeeper's agent, whose "
        "`agent restore` does both."
    )
    bad_example = """\
initContainers:
  - name: litestream-restore
    image: litestream/litestream:0.5.2
    args: [restore, -if-db-not-exists, -if-replica-exists, /app/data/kuma.db]
  - name: integrity-check        # too late
    command: [sh, -c, "sqlite3 /app/data/kuma.db 'PRAGMA integrity_check'"]
"""
    good_example = """\
initContainers:
  - name: integrity-check
    command: [sh, -c, "sqlite3 /app/data/kuma.db 'PRAGMA integrity_check' | grep -qx ok || mv ..."]
  - name: litestream-restore
    image: litestream/litestream:0.5.2
    args: [restore, -if-db-not-exists, -if-replica-exists, /app/data/kuma.db]
"""
    details = (
        "An integrity-check init container is a regular init container whose command or "
        "script contains a marker of the policy (`tiers.sqlite.integrity_markers`: "
        "`integrity_check`, `quick_check`, …). One init container doing both, check first "
        "then `litestream restore`, also passes. " + _AGENT
    )
    fix = FixedBy("statekeeper.fix.backup:fix_workload", step=6, batch="per_workload")

    def check(self, inventory: Inventory, policy: Policy) -> Iterable[Violation]:
        markers = policy.tiers.sqlite.integrity_markers
        for analysis in sqlite_workloads(inventory, policy):
            workload = analysis.workload
            covered, gaps = provider_gaps(analysis, "integrity-check")
            if covered:
                continue
            first_restore = min((c.index for c, _ in analysis.restore_inits), default=None)
            combined = [
                c for c, _ in analysis.restore_inits if _checks_before_restore(c.script, markers)
            ]
            if combined:
                continue
            if not analysis.integrity_inits:
                yield from _violations(
                    workload,
                    gaps or [f"{_reason(workload)} has no integrity-check init container "
                             "for Fail-Safe Integrity"],
                )  # fmt: skip
                continue
            check = min(analysis.integrity_inits, key=lambda c: c.index)
            if first_restore is not None and check.index > first_restore:
                restore = next(c for c, _ in analysis.restore_inits if c.index == first_restore)
                yield Violation(
                    workload.resource,
                    f"init container {check.name!r} checks integrity AFTER {restore.name!r} "
                    "restores: a corrupt database is kept instead of restored; move the check "
                    "before the restore",
                    check.path,
                )


def _checks_before_restore(script: str, markers: list[str]) -> bool:
    restore_at = script.find("restore")
    positions = [script.find(m) for m in markers if m in script]
    return bool(positions) and restore_at >= 0 and min(positions) < restore_at


@register
class SqliteNeedsRestoreInit(Rule):
    id = "SK203"
    slug = "sqlite-needs-restore-init"
    severity = Severity.ERROR
    joins_violations = True
    title = "A restore init container brings the database back from S3"
    rationale = (
        _TIER1 + "\n\nA replica is only a backup if the pod restores it: on a new or wiped "
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
        "with `-o <db>` counts for that db). " + _AGENT
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
                yield from _violations(
                    workload,
                    gaps or [f"{_reason(workload)} has no init container restoring it "
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
                        restored.add(_where(workload, container, target))
            for db in workload.sqlite_dbs:
                where = _where(workload, db_container(workload, db), db.path)
                if where not in restored and covering(analysis, "restore-on-start", db) is None:
                    message = f"database {db.path} is not restored by an init container"
                    yield Violation(workload.resource, message)


@register
class LitestreamConfigConsistent(Rule):
    id = "SK204"
    slug = "litestream-config-consistent"
    severity = Severity.ERROR
    joins_violations = True
    title = "The litestream config matches the mounted databases and is mounted where it is read"
    rationale = (
        _TIER1 + "\n\nA sidecar replicating a path its container does not mount streams "
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
            yield from _violations(analysis.workload, self._problems(analysis, policy))

    def _problems(self, analysis: SqliteAnalysis, policy: Policy) -> Iterator[str]:
        workload = analysis.workload
        configs = {id(c): (cfg, path) for c, cfg, path in workload.litestream_configs}
        app_volumes = {m.volume for c in workload.app_containers for m in c.mounts}
        declared = {
            _where(workload, db_container(workload, db), db.path) for db in workload.sqlite_dbs
        }
        for container in analysis.replicators:
            if id(container) not in configs:
                continue
            config, path = configs[id(container)]
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
                    _where(workload, container, db.path) not in declared
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
