"""Detection: what a pod template's containers are and what state they keep.

Documented for users in docs/detection.md. Every list of names (images, paths, markers) comes
from the policy; this module only knows the shapes of commands and configs:

- a container's role: statekeeper agent (`agent restore` / `agent run`), litestream, rclone,
  an integrity-check init container, or the app itself;
- SQLite state: the `statekeeper.io/sqlite` annotation, a litestream container or config, a
  known image, or an env var / argument naming a `*.db`/`*.sqlite`/`*.sqlite3` path on a mount;
- `/config` state: an app container mounting a volume at a policy config path (or the
  `statekeeper.io/config-path` annotation);
- litestream and rclone command lines, sync intervals and Velero cron schedules.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
import shlex
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise
from typing import Any

import yaml

from statekeeper.inventory.model import (
    Container,
    LitestreamConfig,
    LitestreamDb,
    SqliteDb,
    Workload,
    is_under,
)
from statekeeper.manifests.resource import Resource
from statekeeper.policy.model import Policy, parse_duration

ANNOTATION_SQLITE = "statekeeper.io/sqlite"
ANNOTATION_CONFIG_PATH = "statekeeper.io/config-path"
ANNOTATION_BACKUP = "statekeeper.io/backup"
ANNOTATION_IGNORE = "statekeeper.io/ignore"

_SEGMENT_SPLIT = re.compile(r"\|\||&&|[;\n|&]")
_MAX_SCRIPT = 200_000  # characters of a ConfigMap script read into a container's script


# ---------------------------------------------------------------------------------------------
# images


def image_repository(image: str) -> str:
    """`lscr.io/linuxserver/sonarr:4.0@sha256:…` -> `linuxserver/sonarr` (no registry, tag)."""
    ref = image.split("@", 1)[0]
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        ref = ref[:colon]
    parts = ref.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    if len(parts) > 1 and parts[0] == "library":
        parts = parts[1:]
    return "/".join(parts).lower()


def image_matches(image: str, patterns: list[str]) -> bool:
    """`owner/repo` patterns match the end of the repository, bare words its last segment.

    A pattern starting with a registry host (containing a dot) matches the full reference.
    """
    return _image_matches(image, tuple(patterns))


@lru_cache(maxsize=16384)
def _image_matches(image: str, patterns: tuple[str, ...]) -> bool:
    repo = image_repository(image)
    last = repo.rsplit("/", 1)[-1]
    full = image.split("@", 1)[0].lower()
    for pattern in patterns:
        pat = pattern.lower()
        if "/" not in pat:
            if last == pat:
                return True
        elif "." in pat.split("/", 1)[0]:
            if full == pat or full.startswith(pat + ":"):
                return True
        elif repo == pat or repo.endswith("/" + pat):
            return True
    return False


# ---------------------------------------------------------------------------------------------
# containers


def runs_program(script: str, program: str) -> bool:
    """True if `program` appears as a command word in the script."""
    return re.search(rf"(?:^|[\s/;&|(]){re.escape(program)}(?:\s|$)", script) is not None


def container_script(container: Container, workload: Workload, config_maps: Any) -> str:
    """command + args, plus the text of scripts the container runs from a mounted ConfigMap."""
    text = " ".join(container.argv)
    extra: list[str] = []
    for token in container.argv:
        for word in token.split():
            if not word.startswith("/"):
                continue
            data = _config_map_file(workload, container, word, config_maps)
            if data is not None:
                extra.append(data[:_MAX_SCRIPT])
    return "\n".join([text, *extra]) if extra else text


def _config_map_file(
    workload: Workload, container: Container, path: str, config_maps: Any
) -> str | None:
    """The content of file `path` when it comes from a ConfigMap mounted in the container."""
    mount = container.mount_for(path)
    if mount is None:
        return None
    volume = workload.volumes.get(mount.volume)
    if volume is None or volume.config_map is None:
        return None
    resource = config_maps(workload.scope, workload.namespace, volume.config_map)
    if resource is None:
        return None
    rel = path[len(mount.path) :].strip("/") or mount.sub_path.strip("/")
    if mount.sub_path and path == mount.path:
        rel = mount.sub_path.strip("/")
    key = _config_map_key(volume.raw.get("configMap"), rel)
    data = resource.body.get("data")
    if isinstance(data, dict) and isinstance(data.get(key), str):
        return str(data[key])
    return None


def _config_map_key(source: Any, rel: str) -> str:
    """The ConfigMap key a file path inside its volume comes from (honours `items`)."""
    items = source.get("items") if isinstance(source, dict) else None
    if isinstance(items, list):
        for item in items:
            if isinstance(item, dict) and str(item.get("path", "")).strip("/") == rel:
                return str(item.get("key", rel))
    return rel


def script_segments(script: str) -> list[list[str]]:
    """Split a shell-ish script into simple commands, each a list of words."""
    return [list(words) for words in _segments(script)]


@lru_cache(maxsize=8192)
def _segments(script: str) -> tuple[tuple[str, ...], ...]:
    # Cached: manifests repeat the same sidecar scripts, and several rules read each one.
    segments: list[tuple[str, ...]] = []
    for part in _SEGMENT_SPLIT.split(script):
        part = part.strip()
        if not part:
            continue
        try:
            words = shlex.split(part, comments=True)
        except ValueError:
            words = part.split()
        if words:
            segments.append(tuple(words))
    return tuple(segments)


def program_invocations(container: Container, program: str) -> list[list[str]]:
    """Each call of `program` in the container: the words after the program name.

    When the image's entrypoint is the program itself (no `command`), the args are one call.
    """
    calls: list[list[str]] = []
    entrypoint_is_program = program in container.image.lower()
    shell = bool(container.args) and container.args[0] in ("sh", "bash")
    if not container.command and container.args and not shell and entrypoint_is_program:
        calls.append(list(container.args))
    for words in script_segments(container.script):
        for i, word in enumerate(words):
            if posixpath.basename(word) == program:
                calls.append(words[i + 1 :])
                break
    return calls


# ---------------------------------------------------------------------------------------------
# litestream


@dataclass(slots=True)
class LitestreamCall:
    """One `litestream replicate` or `litestream restore` call."""

    subcommand: str
    flags: set[str] = field(default_factory=set)
    options: dict[str, str] = field(default_factory=dict)
    positional: list[str] = field(default_factory=list)


_LITESTREAM_VALUE_FLAGS = frozenset(
    {"config", "o", "replica", "generation", "index", "timestamp", "parallelism", "exec", "addr"}
)


def litestream_calls(container: Container) -> list[LitestreamCall]:
    calls: list[LitestreamCall] = []
    for words in program_invocations(container, "litestream"):
        if not words:
            continue
        call = LitestreamCall(subcommand=words[0])
        rest = iter(words[1:])
        for word in rest:
            if word.startswith("-") and len(word) > 1:
                name, _, value = word.lstrip("-").partition("=")
                if name in _LITESTREAM_VALUE_FLAGS and not value:
                    value = next(rest, "")
                if name in _LITESTREAM_VALUE_FLAGS:
                    call.options[name] = value
                else:
                    call.flags.add(name)
            else:
                call.positional.append(word)
        calls.append(call)
    return calls


def parse_litestream_config(
    resource: Resource, key: str, text: str, policy: Policy, env: dict[str, str]
) -> LitestreamConfig:
    """Parse a litestream.yml (v0.3 `replicas:` and v0.5 `replica:`), expanding `$VAR`s."""
    cred_keys = set(policy.credentials.config_keys)
    try:
        data = yaml.load(_expand(text, env), Loader=yaml.CSafeLoader)
    except yaml.YAMLError as exc:
        return LitestreamConfig(resource, key, [], [], error=f"invalid YAML: {exc}".split("\n")[0])
    if not isinstance(data, dict):
        return LitestreamConfig(resource, key, [], [], error="not a mapping")
    inline = sorted(k for k in cred_keys if isinstance(data.get(k), str) and data.get(k))
    dbs: list[LitestreamDb] = []
    entries = data.get("dbs")
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            continue
        replicas = entry.get("replicas")
        replica_list = list(replicas) if isinstance(replicas, list) else []
        if isinstance(entry.get("replica"), dict):
            replica_list.append(entry["replica"])
        s3 = False
        for replica in replica_list:
            if not isinstance(replica, dict):
                continue
            inline += sorted(k for k in cred_keys if isinstance(replica.get(k), str))
            url = str(replica.get("url", ""))
            if url.startswith("s3://") or replica.get("type") == "s3" or "bucket" in replica:
                s3 = True
        dbs.append(LitestreamDb(path=posixpath.normpath(entry["path"]), s3=s3))
    return LitestreamConfig(resource, key, dbs, sorted(set(inline)))


def _expand(text: str, env: dict[str, str]) -> str:
    def repl(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return env.get(name, match.group(0))

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)", repl, text)


def find_litestream_config(
    workload: Workload, container: Container, config_maps: Any, policy: Policy
) -> tuple[LitestreamConfig | None, str] | None:
    """The config a litestream container reads: (parsed config or None if not found, its path).

    None when the container names its databases on the command line and reads no config.
    """
    calls = litestream_calls(container)
    path = ""
    for call in calls:
        if "config" in call.options:
            path = call.options["config"]
    if not path:
        if any(call.subcommand == "replicate" and call.positional for call in calls):
            return None
        env_path = container.env_value("LITESTREAM_CONFIG")
        path = env_path if isinstance(env_path, str) else policy.tiers.sqlite.default_config_path
    mount = container.mount_for(path)
    if mount is None:
        return (None, path)
    volume = workload.volumes.get(mount.volume)
    if volume is None or volume.config_map is None:
        return (None, path)
    resource = config_maps(workload.scope, workload.namespace, volume.config_map)
    if resource is None:
        return (None, path)
    data = resource.body.get("data")
    data = data if isinstance(data, dict) else {}
    rel = mount.sub_path.strip("/") if path == mount.path else path[len(mount.path) :].strip("/")
    key = _config_map_key(volume.raw.get("configMap"), rel)
    text = data.get(key)
    if not isinstance(text, str):
        for candidate in policy.tiers.sqlite.config_keys:
            if isinstance(data.get(candidate), str):
                key, text = candidate, data[candidate]
                break
    if not isinstance(text, str):
        return (None, path)
    env = {v.name: v.value for v in container.env if v.value is not None}
    return (parse_litestream_config(resource, key, text, policy, env), path)


# ---------------------------------------------------------------------------------------------
# state detection


def split_list(value: str) -> list[str]:
    return [part.strip() for part in re.split(r"[,\n]", value) if part.strip()]


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
    backup_side: dict[str, SqliteDb] = {}
    app_side: dict[str, SqliteDb] = {}
    reasons: list[str] = []
    for container, config, _path in workload.litestream_configs:
        reasons.append(f"litestream container {container.name!r}")
        if config is not None:
            for db in config.dbs:
                backup_side.setdefault(db.path, SqliteDb(db.path, "litestream config",
                                                         container.name))  # fmt: skip
    for container in workload.containers_with_role("litestream"):
        if not reasons:
            reasons.append(f"litestream container {container.name!r}")
        for call in litestream_calls(container):
            if call.subcommand == "replicate" and call.positional:
                path = posixpath.normpath(call.positional[0])
                backup_side.setdefault(path, SqliteDb(path, "litestream command", container.name))
    for use in workload.providers:
        if use.sqlite_paths and use.container is not None:
            reasons.append(f"{use.provider} {use.sqlite_source}")
            for path in use.sqlite_paths:
                backup_side.setdefault(path, SqliteDb(path, use.sqlite_source,
                                                      use.container.name))  # fmt: skip
    server, unknown = server_database_evidence(workload, policy)
    overridden = False  # a SQLite-capable image configured for a server (or unknown) database
    for container in workload.app_containers:
        for known in policy.tiers.sqlite.known_images:
            if image_matches(container.image, known.images):
                if server or unknown:
                    overridden = True
                    continue  # the image can run on SQLite, but is configured otherwise
                reasons.append(f"known image {container.image}")
                for path in known.paths:
                    if container.mount_for(path) is not None:
                        app_side.setdefault(path, SqliteDb(path, f"{known.name} image",
                                                           container.name))  # fmt: skip
        for path, where in _db_paths_named(container, extensions):
            if container.mount_for(path) is not None:
                reasons.append(f"{where} naming {path}")
                app_side.setdefault(path, SqliteDb(path, where, container.name))
    workload.sqlite = bool(reasons)
    workload.sqlite_reason = reasons[0] if reasons else ""
    workload.sqlite_dbs = list((app_side or backup_side).values())
    if not reasons and overridden:
        workload.server_database = server
        workload.sqlite_unknown = unknown


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


# ---------------------------------------------------------------------------------------------
# rclone


@dataclass(slots=True)
class RcloneSync:
    source: str
    destination: str


_RCLONE_VALUE_FLAGS_PREFIX = ("--config", "--log-file", "--filter-from", "--exclude-from")


def rclone_syncs(container: Container, policy: Policy) -> list[RcloneSync]:
    """The `rclone sync|copy|bisync SRC DST` calls of a container."""
    syncs: list[RcloneSync] = []
    commands = set(policy.tiers.config.sync_commands)
    for words in program_invocations(container, "rclone"):
        positional: list[str] = []
        skip = False
        for word in words:
            if skip:
                skip = False
                continue
            if word.startswith("-"):
                skip = "=" not in word and word.startswith(_RCLONE_VALUE_FLAGS_PREFIX)
                continue
            positional.append(word)
        if len(positional) >= 3 and positional[0] in commands:
            syncs.append(RcloneSync(source=positional[1], destination=positional[2]))
    return syncs


def remote_type(container: Container, destination: str) -> str | None:
    """The backend type of an rclone destination, if the container says (`:s3:` or env)."""
    if destination.startswith(":"):
        return destination[1:].split(":", 1)[0].split(",", 1)[0]
    name, sep, _ = destination.partition(":")
    if not sep or "/" in name:
        return "local"
    value = container.env_value(f"RCLONE_CONFIG_{name.upper().replace('-', '_')}_TYPE")
    return value if isinstance(value, str) else None


def sync_interval(container: Container, policy: Policy) -> tuple[float | None, str]:
    """The period of a container's config sync in seconds, and where it was read from."""
    tier = policy.tiers.config
    for name in tier.interval_env:
        value = container.env_value(name)
        if isinstance(value, str):
            return parse_duration(value), f"env {name}={value}"
    for name in tier.cron_env:
        value = container.env_value(name)
        if isinstance(value, str):
            return cron_interval(value), f"env {name}={value!r}"
    script = container.script
    match = re.search(r"--interval[= ]+(\S+)", script)
    if match:
        return parse_duration(match.group(1)), f"--interval {match.group(1)}"
    sleeps = re.findall(r"\bsleep\s+(\$\{?\w+\}?|[0-9.]+[smhd]?)", script)
    for value in sleeps:
        if value.startswith("$"):
            var = container.env_value(value.strip("${}"))
            if isinstance(var, str):
                return parse_duration(var), f"sleep {value} ({var})"
            continue
        return parse_duration(value), f"sleep {value}"
    return None, "no interval found"


# ---------------------------------------------------------------------------------------------
# cron


_DESCRIPTORS = {
    "@yearly": 366 * 86400.0,
    "@annually": 366 * 86400.0,
    "@monthly": 31 * 86400.0,
    "@weekly": 7 * 86400.0,
    "@daily": 86400.0,
    "@midnight": 86400.0,
    "@hourly": 3600.0,
}
_ALL_VALUES = {"*", "?", "*/1"}


def cron_interval(expr: str) -> float | None:
    """The longest gap between two runs of a cron schedule in seconds (None: unparsable).

    Understands 5-field (and 6-field, seconds first) cron, `@daily`-style descriptors,
    `@every <duration>` and a leading `CRON_TZ=`/`TZ=`.
    """
    words = expr.split()
    if words and (words[0].startswith("CRON_TZ=") or words[0].startswith("TZ=")):
        words = words[1:]
    if not words:
        return None
    if words[0].startswith("@"):
        if words[0] == "@every" and len(words) == 2:
            return parse_duration(words[1])
        return _DESCRIPTORS.get(words[0])
    if len(words) == 6:
        words = words[1:]
    if len(words) != 5:
        return None
    minute, hour, dom, month, dow = words
    if month not in _ALL_VALUES:
        return 366 * 86400.0
    if dom not in _ALL_VALUES or not _every_weekday(dow):
        return 7 * 86400.0 if dom in _ALL_VALUES else 31 * 86400.0
    hour_gap = _field_gap(hour, 24)
    if hour_gap is None:
        return None
    if hour in _ALL_VALUES:
        minute_gap = _field_gap(minute, 60)
        return None if minute_gap is None else minute_gap * 60.0
    return hour_gap * 3600.0


def _every_weekday(field: str) -> bool:
    if field in _ALL_VALUES or field in ("0-6", "1-7", "0-7"):
        return True
    values = _field_values(field, 0, 7)
    return values is not None and {v % 7 for v in values} == set(range(7))


def _field_values(field: str, low: int, high: int) -> set[int] | None:
    values: set[int] = set()
    for part in field.split(","):
        base, _, step_text = part.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if base in ("*", "?"):
                start, end = low, high
            elif "-" in base:
                a, b = base.split("-", 1)
                start, end = int(a), int(b)
            else:
                start = int(base)
                end = high if step_text else start
        except ValueError:
            return None
        if step <= 0:
            return None
        values.update(range(start, end + 1, step))
    return values


def _field_gap(field: str, size: int) -> float | None:
    """The largest gap (in field units) between consecutive values of a cyclic cron field."""
    values = _field_values(field, 0, size - 1)
    if not values:
        return None
    ordered = sorted(v for v in values if 0 <= v < size)
    if not ordered:
        return None
    gaps = [b - a for a, b in pairwise(ordered)]
    gaps.append(ordered[0] + size - ordered[-1])
    return float(max(gaps))


def matches_any(name: str, globs: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, glob) for glob in globs)


__all__ = [
    "ANNOTATION_BACKUP",
    "ANNOTATION_CONFIG_PATH",
    "ANNOTATION_IGNORE",
    "ANNOTATION_SQLITE",
    "cron_interval",
    "detect_state",
    "image_matches",
    "image_repository",
    "is_under",
    "litestream_calls",
    "rclone_syncs",
    "sync_interval",
]
