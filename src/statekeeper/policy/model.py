"""The policy model: the storage & backup strategy as validated data.

Everything a rule compares against lives here (class names, reclaim policies, the PVC name
pattern, sizing ranges, known SQLite images, config paths, tier settings, agent markers); the
built-in values are in `builtin/elite.yaml`, never in Python.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from statekeeper import defaults
from statekeeper.units import parse_duration, parse_quantity

__all__ = ["parse_duration", "parse_quantity"]


class _Strict(BaseModel):
    # defer_build: the validators are built on first validation, not at import: the built-in
    # policy comes from a cache (statekeeper.policy.cache) and never needs them.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy; with `update`, without the derived views cached on this object (they were
        computed from the old values)."""
        copied = super().model_copy(update=update, deep=deep)
        if update:
            for name in _cached_views(type(self)):
                copied.__dict__.pop(name, None)
        return copied


@lru_cache(maxsize=64)
def _cached_views(cls: type) -> tuple[str, ...]:
    """Names of the `cached_property` views of a model class (kept in the instance __dict__)."""
    return tuple(
        name
        for klass in cls.__mro__
        for name, value in vars(klass).items()
        if isinstance(value, cached_property)
    )


class EnvironmentPolicy(_Strict):
    """One row of the strategy's StorageClass table."""

    storage_class: str = Field(min_length=1, description="StorageClass claims must use")
    reclaim_policy: Literal["Retain", "Delete", "Recycle"] = Field(
        description="reclaimPolicy of that StorageClass and of its PersistentVolumes"
    )
    goal: str = Field("", description="Why (quoted from the strategy)")
    aliases: list[str] = Field(
        default_factory=list,
        description="Overlay directory names / `environment` label values meaning this env",
    )
    paths: list[str] = Field(
        default_factory=list,
        description="Path globs (relative to the audited directory; `**` any folders) of "
        "kustomization roots in this environment, for layouts its folder names do not tell",
    )


@dataclass(frozen=True, slots=True)
class Environment:
    """One environment of the policy by its canonical name (`Policy.environment`)."""

    name: str  # the key of `environments`, e.g. "production"
    storage_class: str
    reclaim_policy: str
    aliases: tuple[str, ...]


class SharedStorage(_Strict):
    """When a claim may use the shared environment's class outside that environment."""

    environment: str = Field("shared", description="Name of the shared environment")
    access_modes: list[str] = Field(
        default_factory=lambda: ["ReadWriteMany", "ReadOnlyMany"],
        description="A claim asking for one of these may use the shared class anywhere",
    )


class PvcNaming(_Strict):
    pattern: str = Field("<app>-<purpose>-pvc", description="The pattern, as people read it")
    regex: str = Field(description="Regex a PVC name must match; `{app}` is the app name")
    template_regex: str = Field(
        description="Regex a StatefulSet volumeClaimTemplate name (the purpose) must match"
    )

    @field_validator("regex", "template_regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value.replace("{app}", "app"))
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    def name_regex(self, app: str | None) -> re.Pattern[str]:
        """The compiled name regex for `app` (any dash-separated app name if None)."""
        return _name_regex(self.regex, app)


@lru_cache(maxsize=4096)
def _name_regex(regex: str, app: str | None) -> re.Pattern[str]:
    if app:
        variants = {re.escape(app), re.escape(app.replace("-", ""))}
        app_re = "(?:" + "|".join(sorted(variants)) + ")"
    else:
        app_re = "[a-z0-9]+(?:-[a-z0-9]+)*?"
    return re.compile(regex.replace("{app}", app_re))


class SizingCategory(_Strict):
    """A sizing guideline: claims of this category request between `min` and `max`."""

    name: str
    description: str = ""
    min: str = Field(description="Smallest request, a Kubernetes quantity")
    max: str = Field(description="Largest request, a Kubernetes quantity")
    apps: list[str] = Field(default_factory=list, description="Only these apps (empty: any)")
    purposes: list[str] = Field(default_factory=list, description="Purpose words")
    images: list[str] = Field(default_factory=list, description="Images of mounting containers")
    sqlite: bool = Field(False, description="Matches a claim holding a detected SQLite database")
    mount_paths: list[str] = Field(
        default_factory=list, description="Mount paths that say the purpose, like a purpose word"
    )
    needs_image: bool = Field(
        False,
        description="The purpose (word or mount path) counts only when a mounting container "
        "runs an image of `images`: a name fragment alone does not make a media cache",
    )

    @field_validator("min", "max")
    @classmethod
    def _quantity(cls, value: str) -> str:
        if parse_quantity(value) is None:
            raise ValueError(f"not a Kubernetes quantity: {value!r}")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> SizingCategory:
        if (parse_quantity(self.min) or 0) > (parse_quantity(self.max) or 0):
            raise ValueError(f"min {self.min} is larger than max {self.max}")
        return self

    @cached_property
    def min_bytes(self) -> float:
        return parse_quantity(self.min) or 0.0

    @cached_property
    def max_bytes(self) -> float:
        return parse_quantity(self.max) or 0.0

    def contains(self, size: str) -> bool:
        """`size` (a quantity) is within `min`-`max`; a size that is no quantity is not."""
        size_bytes = parse_quantity(size)
        return size_bytes is not None and self.min_bytes <= size_bytes <= self.max_bytes


class MediaLibrary(_Strict):
    """Media libraries are direct NFS mounts, never PVCs."""

    purposes: list[str] = Field(default_factory=list, description="Purpose words of libraries")
    mount_paths: list[str] = Field(
        default_factory=list,
        description="Library mount paths (a mount at or below one is a library)",
    )


class KnownSqliteImage(_Strict):
    name: str
    images: list[str] = Field(
        description="`owner/repo` matches the end of the image repository, a bare word its "
        "last path segment"
    )
    paths: list[str] = Field(default_factory=list, description="Usual database paths")


_MOVED_TO_PROVIDERS = {
    "litestream_images": "litestream",
    "rclone_images": "rclone",
}


def _moved_to_providers(data: object) -> object:
    """A policy file written before providers existed names images here: say where they went."""
    if isinstance(data, dict):
        for key, provider in _MOVED_TO_PROVIDERS.items():
            if key in data:
                raise ValueError(
                    f"{key} moved to backup.providers: set `images` in the containers of the "
                    f"{provider!r} provider (statekeeper policy show prints it)"
                )
    return data


class SqliteTier(_Strict):
    _moved = model_validator(mode="before")(staticmethod(_moved_to_providers))
    config_keys: list[str] = Field(default_factory=lambda: ["litestream.yml"])
    default_config_path: str = "/etc/litestream.yml"
    db_extensions: list[str] = Field(default_factory=lambda: [".db", ".sqlite", ".sqlite3"])
    integrity_markers: list[str] = Field(default_factory=lambda: ["integrity_check"])
    restore_flags: list[str] = Field(
        default_factory=lambda: ["-if-db-not-exists", "-if-replica-exists"]
    )
    known_images: list[KnownSqliteImage] = Field(default_factory=list)


class ConfigTier(_Strict):
    _moved = model_validator(mode="before")(staticmethod(_moved_to_providers))
    paths: list[str] = Field(default_factory=lambda: ["/config"])
    sync_commands: list[str] = Field(default_factory=lambda: ["sync"])
    min_interval: str = "5m"
    max_interval: str = "15m"
    interval_env: list[str] = Field(default_factory=list)
    cron_env: list[str] = Field(default_factory=list)

    @field_validator("min_interval", "max_interval")
    @classmethod
    def _duration(cls, value: str) -> str:
        if parse_duration(value) is None:
            raise ValueError(f"not a duration: {value!r} (use e.g. 5m, 900s, 1h)")
        return value

    @cached_property
    def min_seconds(self) -> float:
        """The config-sync interval range, `min_interval`-`max_interval`, in seconds."""
        return parse_duration(self.min_interval) or 0.0

    @cached_property
    def max_seconds(self) -> float:
        return parse_duration(self.max_interval) or 0.0


class VeleroTier(_Strict):
    max_interval: str = "24h"

    @field_validator("max_interval")
    @classmethod
    def _duration(cls, value: str) -> str:
        if parse_duration(value) is None:
            raise ValueError(f"not a duration: {value!r}")
        return value

    @property
    def max_seconds(self) -> float:
        return parse_duration(self.max_interval) or 0.0


class Tiers(_Strict):
    sqlite: SqliteTier = Field(default_factory=SqliteTier)
    config: ConfigTier = Field(default_factory=ConfigTier)
    velero: VeleroTier = Field(default_factory=VeleroTier)


class Credentials(_Strict):
    env: list[str] = Field(default_factory=list, description="S3 key variables (fnmatch globs)")
    config_keys: list[str] = Field(default_factory=list, description="Keys in litestream configs")
    args: list[str] = Field(default_factory=list, description="Command-line flags carrying keys")


class AgentMarkers(_Strict):
    restore_marker: str = "agent restore"
    run_marker: str = "agent run"
    sqlite_env: str = "STATEKEEPER_SQLITE_PATHS"
    config_env: str = "STATEKEEPER_CONFIG_PATHS"
    interval_env: str = "STATEKEEPER_RCLONE_INTERVAL"
    default_interval: str = defaults.SYNC_INTERVAL
    images: list[str] = Field(default_factory=list)


Tier = Literal["sqlite-stream", "integrity-check", "restore-on-start", "file-sync"]
# Tiers a container covers by running before the app (a regular init container, or the start
# phase of a native sidecar) and by running alongside it.
STARTUP_TIERS: frozenset[str] = frozenset({"integrity-check", "restore-on-start"})
RUNNING_TIERS: frozenset[str] = frozenset({"sqlite-stream", "file-sync"})


class ValueSource(_Strict):
    """Where a provider reads a setting: exactly one of `env`, `annotation`, `arg`.

    `env` is a variable of the provider's container (a `fieldRef` to
    `metadata.annotations['…']` reads that pod-template annotation); `annotation` a pod-template
    annotation; `arg` a command-line flag (`--flag value` or `--flag=value`).
    """

    env: str | None = None
    annotation: str | None = None
    arg: str | None = None

    @model_validator(mode="after")
    def _one(self) -> ValueSource:
        if sum(v is not None for v in (self.env, self.annotation, self.arg)) != 1:
            raise ValueError("give exactly one of env, annotation, arg")
        return self

    @property
    def label(self) -> str:
        if self.env is not None:
            return f"env {self.env}"
        if self.annotation is not None:
            return f"annotation {self.annotation}"
        return f"argument {self.arg}"


class ProviderContainer(_Strict):
    """How to spot one container of a provider, and the tiers it covers.

    A container matches when its image matches one of `images` (if given), its name one of
    `names` (fnmatch globs, if given) and its command line contains one of `commands` (if
    given); at least one of the three must be given. The first entry that matches wins.
    """

    images: list[str] = Field(default_factory=list, description="Image patterns")
    names: list[str] = Field(default_factory=list, description="Container name globs")
    commands: list[str] = Field(default_factory=list, description="Words of its command line")
    tiers: list[Tier] = Field(min_length=1, description="Tiers this container covers")

    @model_validator(mode="after")
    def _something(self) -> ProviderContainer:
        if not (self.images or self.names or self.commands):
            raise ValueError("give images, names or commands to spot the container")
        return self


class Provider(_Strict):
    """A backup implementation: how to spot it, which tiers it covers, where its paths and sync
    interval come from. `reader: litestream|rclone` reads the tool's own command line and config
    file (the `tiers` settings); `declared` reads `sqlite_paths`, `file_paths`, `interval`."""

    name: str = Field(min_length=1)
    description: str = ""
    reader: Literal["declared", "litestream", "rclone"] = "declared"
    containers: list[ProviderContainer] = Field(default_factory=list)
    injected_by_annotations: list[str] = Field(
        default_factory=list,
        description="Pod-template annotations meaning an admission webhook injects the provider",
    )
    sqlite_paths: list[ValueSource] = Field(default_factory=list)
    file_paths: list[ValueSource] = Field(default_factory=list)
    interval: list[ValueSource] = Field(default_factory=list)
    default_interval: str | None = Field(None, description="Sync interval when none is set")
    injected_tiers: list[Tier] = Field(
        default_factory=list, description="Tiers covered when injected by annotation"
    )

    @field_validator("default_interval")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None and parse_duration(value) is None:
            raise ValueError(f"not a duration: {value!r} (use e.g. 5m, 900s, 1h)")
        return value


class ServerDatabase(_Strict):
    """Evidence that an app keeps its data in a database server, not SQLite."""

    url_env: list[str] = Field(default_factory=list, description="URL variables (globs)")
    url_schemes: list[str] = Field(default_factory=list, description="Server URL schemes")
    type_env: list[str] = Field(default_factory=list, description="Engine variables (globs)")
    server_types: list[str] = Field(default_factory=list, description="Engine values")
    sqlite_types: list[str] = Field(default_factory=list, description="Engine values = SQLite")
    secret_words: list[str] = Field(
        default_factory=list, description="Words of an envFrom secret's name naming a server"
    )


class BackupPolicy(_Strict):
    providers: list[Provider] = Field(default_factory=list)
    server_database: ServerDatabase = Field(default_factory=ServerDatabase)
    native_sidecars: bool = Field(
        True, description="The cluster runs Kubernetes >= 1.29: fix/generate write native sidecars"
    )

    @field_validator("providers")
    @classmethod
    def _unique(cls, value: list[Provider]) -> list[Provider]:
        names = [p.name for p in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"provider names must be unique: {', '.join(dupes)}")
        return value


class RuleSettings(_Strict):
    enabled: bool = True
    severity: Literal["info", "warning", "error"] | None = None


class Policy(_Strict):
    """The effective policy: the built-in `elite` merged with an optional user file."""

    name: str = "elite"
    description: str = ""
    extends: str | None = Field(
        None, description="Built-in policy a file starts from (default elite; `none`: nothing)"
    )
    environments: dict[str, EnvironmentPolicy]
    shared_storage: SharedStorage = Field(default_factory=SharedStorage)
    namespace_environments: dict[str, str] = Field(
        default_factory=dict, description="Namespace -> environment"
    )
    environment_label: str = "environment"
    pvc_naming: PvcNaming
    sizing: list[SizingCategory] = Field(default_factory=list)
    media_library: MediaLibrary = Field(default_factory=MediaLibrary)
    tiers: Tiers = Field(default_factory=Tiers)
    credentials: Credentials = Field(default_factory=Credentials)
    agent: AgentMarkers = Field(default_factory=AgentMarkers)
    backup: BackupPolicy = Field(default_factory=BackupPolicy)
    rules: dict[str, RuleSettings] = Field(
        default_factory=dict, description="Per-rule settings keyed by id (SK101) or slug"
    )

    @model_validator(mode="after")
    def _environments_known(self) -> Policy:
        for namespace, env in self.namespace_environments.items():
            if self.canonical_environment(env) is None:
                raise ValueError(f"namespace_environments.{namespace}: unknown environment {env!r}")
        return self

    def overlay_environments(self) -> dict[str, str]:
        """Overlay directory / label value (lower case) -> canonical environment name."""
        return dict(self._aliases)

    @cached_property
    def _aliases(self) -> dict[str, str]:
        mapping: dict[str, str] = {}
        for env, spec in self.environments.items():
            for alias in spec.aliases:
                mapping.setdefault(alias.lower(), env)
        for env in self.environments:
            mapping[env.lower()] = env
        return mapping

    def environment(self, name: str | None) -> Environment | None:
        """The environment a name or alias stands for (`"prod"` -> production), else None."""
        canonical = self.canonical_environment(name)
        return self._environment_views[canonical] if canonical is not None else None

    @cached_property
    def _environment_views(self) -> dict[str, Environment]:
        return {
            env: Environment(env, spec.storage_class, spec.reclaim_policy, tuple(spec.aliases))
            for env, spec in self.environments.items()
        }

    def environment_table(self) -> dict[str, Environment]:
        """Canonical name -> environment, in the policy's order (the StorageClass table)."""
        return dict(self._environment_views)

    def sizing_named(self, name: str) -> SizingCategory | None:
        """The sizing category called `name` (as a finding of SK104 names it)."""
        return self._sizing_by_name.get(name)

    @cached_property
    def _sizing_by_name(self) -> dict[str, SizingCategory]:
        return {category.name: category for category in self.sizing}

    def environment_paths(self) -> dict[str, list[str]]:
        """Environment -> the path globs of its kustomization roots (`environments.<e>.paths`)."""
        return {env: list(spec.paths) for env, spec in self.environments.items() if spec.paths}

    def canonical_environment(self, name: str | None) -> str | None:
        """`"prod"` -> `"production"`; None if the name stands for no known environment."""
        if not name:
            return None
        return self._aliases.get(name.strip().lower())

    def storage_class_environment(self, storage_class: str) -> str | None:
        """The environment whose row names this StorageClass, if any."""
        for env, spec in self.environments.items():
            if spec.storage_class == storage_class:
                return env
        return None

    def rule_settings(self, rule_id: str, slug: str) -> RuleSettings:
        return self.rules.get(rule_id) or self.rules.get(slug) or _DEFAULT_RULE_SETTINGS


# Built without validation: validating would build RuleSettings' validator on the audit's
# start-up path (see statekeeper.policy.cache).
_DEFAULT_RULE_SETTINGS = RuleSettings.model_construct()
