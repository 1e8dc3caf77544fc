"""State detection: which SQLite databases and `/config` paths a workload keeps, and the
exemptions it carries. Documented for users in docs/detection.md. Every list of names (images,
paths, markers) comes from the policy; the tools' own shapes live in one module each:
`images` (image references), `shell` (command lines and scripts), `litestream`, `rclone`,
`cron`, and `annotations` (the statekeeper.io/* annotations and the pod template).
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

from statekeeper.inventory.annotations import (
    ANNOTATION_BACKUP,
    ANNOTATION_CONFIG_PATH,
    ANNOTATION_IGNORE,
    ANNOTATION_SQLITE,
)
from statekeeper.inventory.cron import cron_interval
from statekeeper.inventory.images import image_matches, image_repository
from statekeeper.inventory.litestream import (
    LitestreamCall,
    find_litestream_config,
    litestream_calls,
)
from statekeeper.inventory.model import Container, SqliteDb, Workload, is_under
from statekeeper.inventory.rclone import RcloneSync, rclone_syncs, remote_type, sync_interval
from statekeeper.inventory.shell import (
    container_script,
    matches_any,
    program_invocations,
    runs_program,
    script_segments,
    split_list,
)
from statekeeper.policy.model import Policy


def detect_state(workload: Workload, policy: Policy, config_maps: Any) -> None:
    """Fill the workload's SQLite, /config and exemption fields."""
    annotations = workload.annotations
    sqlite_policy = policy.tiers.sqlite
    for container in workload.all_containers:
        if container.role == "litestream":
            found = find_litestream_config(workload, container, config_maps, policy)
            if found is not None:
                workload.litestream_configs.append((container, found[0], found[1]))

    explicit = annotations.get(ANNOTATION_SQLITE)
    if explicit is not None:
        paths = [p for p in split_list(explicit) if p.lower() not in ("none", "false")]
        workload.sqlite_explicit = True
        workload.sqlite = bool(paths)
        workload.sqlite_reason = f"annotation {ANNOTATION_SQLITE}"
        app = workload.app_containers[0].name if workload.app_containers else ""
        workload.sqlite_dbs = [SqliteDb(posixpath.normpath(p), "annotation", app) for p in paths]
    else:
        _detect_sqlite(workload, policy, sqlite_policy.db_extensions)

    config_override = annotations.get(ANNOTATION_CONFIG_PATH)
    if config_override is not None:
        workload.config_paths = [
            posixpath.normpath(p)
            for p in split_list(config_override)
            if p.lower() not in ("none", "false")
        ]
    else:
        wanted = {posixpath.normpath(p) for p in policy.tiers.config.paths}
        seen: list[str] = []
        for container in workload.app_containers:
            for mount in container.mounts:
                volume = workload.volumes.get(mount.volume)
                # /config on an emptyDir lives as long as the pod: nothing to sync.
                holds_state = volume is None or (volume.holds_state and not volume.ephemeral)
                if mount.path in wanted and holds_state and mount.path not in seen:
                    seen.append(mount.path)
        workload.config_paths = seen

    backup = annotations.get(ANNOTATION_BACKUP)
    if backup is not None:
        kind, _, reason = backup.partition(":")
        if kind.strip().lower() == "none" and reason.strip():
            workload.backup_exempt = reason.strip()


def _detect_sqlite(workload: Workload, policy: Policy, extensions: list[str]) -> None:
    """SQLite detection without the annotation. The databases are those the app side shows
    (known image paths, env/args); only when it shows none, those the backup side names
    (litestream config or command, agent variables), so one wrong config line is reported
    once (SK201/SK204) rather than as a phantom database."""
    backup_side, backup_reasons = _backup_side_dbs(workload)
    server, unknown = server_database_evidence(workload, policy)
    app_side, app_reasons, overridden = _app_side_dbs(
        workload, policy, extensions, server_database=bool(server or unknown)
    )
    reasons = backup_reasons + app_reasons
    workload.sqlite = bool(reasons)
    workload.sqlite_reason = reasons[0] if reasons else ""
    workload.sqlite_dbs = list((app_side or backup_side).values())
    if not reasons and overridden:
        workload.server_database = server
        workload.sqlite_unknown = unknown


def _backup_side_dbs(workload: Workload) -> tuple[dict[str, SqliteDb], list[str]]:
    """The databases a backup container names (litestream configs, `litestream replicate`
    commands, a declared provider's paths), first source winning per path, and why each
    container says the workload runs SQLite."""
    dbs: dict[str, SqliteDb] = {}
    reasons: list[str] = []
    for container, config, _path in workload.litestream_configs:
        reasons.append(f"litestream container {container.name!r}")
        if config is not None:
            for db in config.dbs:
                dbs.setdefault(db.path, SqliteDb(db.path, "litestream config", container.name))
    for container in workload.containers_with_role("litestream"):
        if not reasons:
            reasons.append(f"litestream container {container.name!r}")
        for call in litestream_calls(container):
            if call.subcommand == "replicate" and call.positional:
                path = posixpath.normpath(call.positional[0])
                dbs.setdefault(path, SqliteDb(path, "litestream command", container.name))
    for use in workload.providers:
        if use.sqlite_paths and use.container is not None:
            reasons.append(f"{use.provider} {use.sqlite_source}")
            for path in use.sqlite_paths:
                dbs.setdefault(path, SqliteDb(path, use.sqlite_source, use.container.name))
    return dbs, reasons


def _app_side_dbs(
    workload: Workload, policy: Policy, extensions: list[str], *, server_database: bool
) -> tuple[dict[str, SqliteDb], list[str], bool]:
    """The databases the app containers show on a mounted path (a known image's paths, env or
    args naming a database file), why, and whether a SQLite-capable known image was passed over
    because the app is configured for a server (or unknown) database."""
    dbs: dict[str, SqliteDb] = {}
    reasons: list[str] = []
    overridden = False
    for container in workload.app_containers:
        for known in policy.tiers.sqlite.known_images:
            if not image_matches(container.image, known.images):
                continue
            if server_database:
                overridden = True
                continue  # the image can run on SQLite, but is configured otherwise
            reasons.append(f"known image {container.image}")
            for path in known.paths:
                if container.mount_for(path) is not None:
                    dbs.setdefault(path, SqliteDb(path, f"{known.name} image", container.name))
        for path, where in _db_paths_named(container, extensions):
            if container.mount_for(path) is not None:
                reasons.append(f"{where} naming {path}")
                dbs.setdefault(path, SqliteDb(path, where, container.name))
    return dbs, reasons, overridden


def server_database_evidence(workload: Workload, policy: Policy) -> tuple[str, str]:
    """(evidence that the app uses a database server, why it cannot be told) - each "" if none.

    A URL variable with a server scheme, an engine variable naming a server, or an `envFrom`
    Secret whose name says so is evidence; a URL or engine variable set through a reference
    statekeeper cannot read leaves it unknown. Values are never quoted (a URL may hold a
    password): only the variable and the scheme or engine.
    """
    rules = policy.backup.server_database
    unknown = ""
    for container in workload.app_containers:
        for var in container.env:
            url = matches_any(var.name, rules.url_env)
            engine = matches_any(var.name, rules.type_env)
            if not (url or engine):
                continue
            if var.source not in ("value", "configMapRef", "annotation"):
                words = _words(var.ref)
                if var.ref and words & set(rules.secret_words):
                    return (f"env {var.name} from Secret {var.ref!r} (server database)", "")
                unknown = unknown or (
                    f"env {var.name} comes from {var.source} {var.ref!r}".replace(" ''", "")
                    + ": cannot tell whether the app uses SQLite"
                )
                continue
            value = (var.value or "").strip()
            if url:
                scheme = value.split("://", 1)[0].lower() if "://" in value else ""
                if scheme and matches_any(scheme, rules.url_schemes):
                    return (f"env {var.name}={scheme}://… (server database)", "")
            elif value.lower() in {t.lower() for t in rules.server_types}:
                return (f"env {var.name}={value} (server database)", "")
        for ref_kind, name in container.env_from:
            if ref_kind == "secretRef" and _words(name) & set(rules.secret_words):
                return (f"envFrom Secret {name!r} (server database)", "")
    return ("", unknown)


def _words(name: str) -> set[str]:
    return {w for w in re.split(r"[-_.]", name.lower()) if w}


def _db_paths_named(container: Container, extensions: list[str]) -> list[tuple[str, str]]:
    """Absolute paths ending in a database extension named by env values or arguments."""
    ext = "|".join(re.escape(e.lstrip(".")) for e in extensions)
    pattern = re.compile(rf"(/[A-Za-z0-9_.\-/]*\.(?:{ext}))(?![A-Za-z0-9_])")
    found: list[tuple[str, str]] = []
    for var in container.env:
        if var.value:
            for match in pattern.finditer(var.value):
                found.append((posixpath.normpath(_strip_url(match.group(1))), f"env {var.name}"))
    for arg in container.argv:
        for match in pattern.finditer(arg):
            found.append((posixpath.normpath(_strip_url(match.group(1))), "argument"))
    return found


def _strip_url(path: str) -> str:
    """`sqlite:////data/x.db` leaves `///data/x.db` -> `/data/x.db`."""
    return "/" + path.lstrip("/")


# Re-exported for callers that read detection helpers from here.
__all__ = [
    "ANNOTATION_BACKUP",
    "ANNOTATION_CONFIG_PATH",
    "ANNOTATION_IGNORE",
    "ANNOTATION_SQLITE",
    "LitestreamCall",
    "RcloneSync",
    "container_script",
    "cron_interval",
    "detect_state",
    "find_litestream_config",
    "image_matches",
    "image_repository",
    "is_under",
    "litestream_calls",
    "matches_any",
    "program_invocations",
    "rclone_syncs",
    "remote_type",
    "runs_program",
    "script_segments",
    "server_database_evidence",
    "split_list",
    "sync_interval",
]
