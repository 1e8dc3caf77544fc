"""The few facts of the policy that `generate` and `fix` write into manifests.

`fix` and `generate` do not judge manifests (the rules do); they only need to know which
StorageClass an environment uses, what an overlay directory is called for it, which size range a
PVC category allows and how often rclone should sync. `Strategy` is that narrow, read-only view,
built from the effective policy (`statekeeper.policy.load_policy`), so class names and ranges live
in the policy and never in this package.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from statekeeper.errors import InputError, PolicyError
from statekeeper.policy.model import parse_quantity as policy_quantity
from statekeeper.rules.storage import sizing_category_for


def parse_quantity(text: str) -> int:
    """`"2Gi"` → 2147483648 bytes, read as the audit reads it. Raises InputError for anything
    that is not a storage size."""
    size = policy_quantity(str(text))
    if size is None:
        raise InputError(f"not a storage size: {text!r} (use e.g. 2Gi, 500Mi)")
    return int(size)


@dataclass(frozen=True, slots=True)
class EnvironmentClass:
    """One row of the strategy's StorageClass table."""

    name: str  # canonical environment name, e.g. "production"
    storage_class: str
    reclaim_policy: str
    aliases: tuple[str, ...] = ()  # overlay directory names that mean this environment
    provisioner: str | None = None


@dataclass(frozen=True, slots=True)
class SizeRange:
    """The allowed size of one PVC category, as the policy writes it (e.g. 1Gi–2Gi)."""

    category: str
    minimum: str
    maximum: str

    def contains(self, size: str) -> bool:
        return parse_quantity(self.minimum) <= parse_quantity(size) <= parse_quantity(self.maximum)


@dataclass(frozen=True, slots=True)
class Strategy:
    """What generate/fix need from the policy."""

    environments: dict[str, EnvironmentClass]
    sizes: dict[str, SizeRange] = field(default_factory=dict)
    rclone_interval: str = "10m"
    velero_schedule: str = "0 3 * * *"
    velero_ttl: str = "720h0m0s"
    policy: Any = None  # the policy object itself, for the audit

    def environment(self, name: str) -> EnvironmentClass:
        """The environment an overlay name or environment name stands for (`prod` → production)."""
        key = name.strip().lower()
        for env in self.environments.values():
            if key == env.name.lower() or key in (a.lower() for a in env.aliases):
                return env
        known = ", ".join(
            sorted({n for e in self.environments.values() for n in (e.name, *e.aliases)})
        )
        raise InputError(f"unknown environment {name!r} (the policy knows: {known})")

    @property
    def native_sidecars(self) -> bool:
        """The policy says the cluster runs Kubernetes >= 1.29 (`backup.native_sidecars`):
        sidecars are written as init containers with `restartPolicy: Always`."""
        backup = _get(self.policy, "backup", default=None)
        return bool(_get(backup, "native_sidecars", default=True))

    @property
    def config_dirs(self) -> tuple[str, ...]:
        """Mount paths the audit treats as config directories (tier 2: rclone)."""
        config = _get(_get(self.policy, "tiers", default=None), "config", default=None)
        return _strings(_get(config, "paths", default=("/config",)))

    def known_sqlite_paths(self, image: str) -> tuple[str, ...]:
        """The usual database paths of an image the policy knows as a SQLite app."""
        sqlite = _get(_get(self.policy, "tiers", default=None), "sqlite", default=None)
        for known in _get(sqlite, "known_images", default=None) or []:
            if _image_matches(image, _strings(_get(known, "images", default=()))):
                return _strings(_get(known, "paths", default=()))
        return ()

    def size_range(self, category: str) -> SizeRange | None:
        return self.sizes.get(category)

    def category_for(
        self, app: str, purpose: str, images: tuple[str, ...] = (), sqlite: bool = False
    ) -> SizeRange | None:
        """The sizing category of a claim, decided by the audit's own code (SK104): the first
        category whose purposes name the claim's purpose, else the first that matches weakly."""
        if self.policy is None:
            return None
        category = sizing_category_for(self.policy, app or None, purpose, images, sqlite)
        return self.sizes.get(category.name) if category is not None else None


def _get(obj: Any, *names: str, default: Any = None) -> Any:
    """Read the first of `names` that exists, as attribute or key (the policy model may be a
    pydantic object or plain data)."""
    for name in names:
        if isinstance(obj, dict) and name in obj:
            return obj[name]
        if not isinstance(obj, dict) and hasattr(obj, name):
            return getattr(obj, name)
    return default


def strategy_from_policy(policy: Any) -> Strategy:
    """Build the view from the effective policy object returned by `load_policy()`."""
    envs_raw = _get(policy, "environments", default=None)
    if not envs_raw:
        raise PolicyError("the policy defines no environments: cannot choose StorageClasses")
    items = envs_raw.items() if isinstance(envs_raw, dict) else ((None, e) for e in envs_raw)
    environments: dict[str, EnvironmentClass] = {}
    for key, env in items:
        name = str(_get(env, "name", default=key))
        storage_class = _get(env, "storage_class", "storageClass", "storage_class_name")
        reclaim = _get(env, "reclaim_policy", "reclaimPolicy", default="Retain")
        aliases = _get(env, "aliases", "overlay_names", "overlays", default=()) or ()
        provisioner = _get(env, "provisioner", default=None)
        if not storage_class:
            raise PolicyError(f"the policy's environment {name!r} has no storage class")
        environments[name] = EnvironmentClass(
            name=name,
            storage_class=str(storage_class),
            reclaim_policy=str(reclaim),
            aliases=tuple(str(a) for a in aliases),
            provisioner=str(provisioner) if provisioner else None,
        )
    sizes: dict[str, SizeRange] = {}
    sizing = _get(policy, "sizing", "sizes", default=None)
    size_items = _get(sizing, "categories", default=sizing) if sizing is not None else None
    if isinstance(size_items, dict):
        pairs: list[tuple[Any, Any]] = list(size_items.items())
    elif size_items:
        pairs = [(None, s) for s in size_items]
    else:
        pairs = []
    for key, rng in pairs:
        cat = str(_get(rng, "name", "category", default=key))
        low, high = _get(rng, "min", "minimum"), _get(rng, "max", "maximum")
        if low is not None and high is not None:
            sizes[cat] = SizeRange(cat, str(low), str(high))
    tiers = _get(policy, "tiers", default=None)
    agent = _get(policy, "agent", default=None)
    interval = _get(agent, "default_interval", default=None) if agent is not None else None
    del tiers  # the velero tier only bounds the interval; the generated cron is daily
    return Strategy(
        environments=environments,
        sizes=sizes,
        rclone_interval=str(interval or "10m"),
        policy=policy,
    )


def _strings(values: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in (values or ()))


def _image_matches(image: str, names: tuple[str, ...]) -> bool:
    """The audit's own image matching (`owner/repo` or a bare last segment)."""
    from statekeeper.inventory.images import image_matches

    return image_matches(image, list(names))


def load_strategy(policy_file: Path | None = None) -> Strategy:
    """The effective policy (built-in `elite`, overridden by `policy_file`) as a Strategy."""
    from statekeeper.policy.load import load_policy

    return strategy_from_policy(load_policy(policy_file))
