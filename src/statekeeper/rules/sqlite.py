"""What SK201-SK204 share: strategy §3, Tier 1, Litestream for every SQLite database, with
Fail-Safe Integrity. One analysis per workload (`sqlite_workloads`), computed once per
inventory; each rule is in its own sk2##_*.py file."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from statekeeper.inventory.litestream import LitestreamCall, litestream_calls
from statekeeper.inventory.model import Container, Inventory, ProviderUse, SqliteDb, Workload
from statekeeper.policy.model import Policy
from statekeeper.rules.base import Violation, cached

TIER1 = (
    'Strategy §3, Tier 1 (Real-time DB Backup, Litestream): "**Applicability:** All '
    "SQLite-based applications. **Requirement:** A `litestream` sidecar must be configured to "
    'stream changes to S3 storage. **Integrity:** Use the "Fail-Safe Integrity" pattern '
    '(check-integrity initContainer)."'
)


AGENT_HINT = (
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


def location_of(workload: Workload, container: Container | None, path: str) -> Location:
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
    where = location_of(workload, app, db.path)
    for use in analysis.providers:
        if tier not in use.tiers:
            continue
        if use.sqlite_paths is None:  # set through a reference: trusted
            return use
        # An injected provider's paths are read as the app sees them.
        seen_by = use.container or app
        if any(location_of(workload, seen_by, p) == where for p in use.sqlite_paths):
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
    config_by_container = {c: (cfg, path) for c, cfg, path in workload.litestream_configs}
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
                    where = location_of(workload, container, call.positional[0])
                    urls = call.positional[1:]
                    if any(u.startswith("s3://") for u in urls) or not urls:
                        result.replicated.add(where)
                    else:
                        result.non_s3.add(where)
            config, _path = config_by_container.get(container, (None, ""))
            if container in config_by_container and config is None:
                result.replicated_unknown = True
            if config is not None:
                for db in config.dbs:
                    target = result.replicated if db.s3 else result.non_s3
                    target.add(location_of(workload, container, db.path))
    return result


def workload_violations(workload: Workload, problems: Iterable[str]) -> Iterator[Violation]:
    """Workload-wide problems, reported at the document's first line (no field lookup: cheap even
    when thousands of workloads miss a sidecar); a container's problem is at its line."""
    for problem in problems:
        yield Violation(workload.resource, problem)


def describe_app(workload: Workload) -> str:
    """`SQLite app <name> (<why it is one>)`; the why never holds parentheses of its own."""
    name = workload.app or workload.resource.name
    return f"SQLite app {name} ({workload.sqlite_reason})"
