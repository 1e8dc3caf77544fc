"""The few facts of the policy that `generate` and `fix` write into manifests.

`fix` and `generate` do not judge manifests (the rules do); they only need to know which
StorageClass an environment uses, what an overlay directory is called for it, which size range a
PVC category allows and how often rclone should sync. `Strategy` is that narrow, read-only view,
built from the effective policy (`statekeeper.policy.load_policy`), so class names and ranges live
in the policy and never in this package.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from statekeeper.errors import InputError, PolicyError

_QUANTITY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?\s*$")
_FACTOR = {
    None: 1,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
    "Pi": 1024**5,
    "k": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
    "P": 1000**5,
}


def parse_quantity(text: str) -> int:
    """`"2Gi"` → 2147483648 bytes. Raises InputError for anything that is not a storage size."""
    match = _QUANTITY.match(str(text))
    if not match:
        raise InputError(f"not a storage size: {text!r} (use e.g. 2Gi, 500Mi)")
    return int(float(match.group(1)) * _FACTOR[match.group(2)])


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
    purposes: tuple[str, ...] = ()
    apps: tuple[str, ...] = ()
    images: tuple[str, ...] = ()

    def matches(self, app: str, purpose: str, images: tuple[str, ...] = ()) -> bool:
        """The policy's matching rule: the app is listed (when `apps` is given) and a word of the
        purpose is one of `purposes`, or a container image names one of `images`."""
        if self.apps and app not in self.apps:
            return False
        words = set(purpose.split("-")) | {purpose}
        if words & set(self.purposes):
            return True
        return any(_image_matches(image, self.images) for image in images)

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

    def size_range(self, category: str) -> SizeRange | None:
        return self.sizes.get(category)

    def category_for(
        self, app: str, purpose: str, images: tuple[str, ...] = ()
    ) -> SizeRange | None:
        """The first sizing category that matches a claim, as the audit decides it."""
        for rng in self.sizes.values():
            if rng.matches(app, purpose, images):
                return rng
        return None


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
            sizes[cat] = SizeRange(
                cat,
                str(low),
                str(high),
                purposes=_strings(_get(rng, "purposes", default=())),
                apps=_strings(_get(rng, "apps", default=())),
                images=_strings(_get(rng, "images", default=())),
            )
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
    """`docker.io/bitnami/postgresql:16` matches `postgresql` and `bitnami/postgresql`."""
    repo = image.rsplit("@", 1)[0]
    last = repo.rsplit("/", 1)[-1]
    repo = repo.rsplit(":", 1)[0] if ":" in repo.rsplit("/", 1)[-1] else repo
    base = last.split(":", 1)[0]
    return any(repo == n or repo.endswith("/" + n) or base == n for n in names)


def load_strategy(policy_file: Path | None = None) -> Strategy:
    """The effective policy (built-in `elite`, overridden by `policy_file`) as a Strategy."""
    from statekeeper.policy.load import load_policy

    return strategy_from_policy(load_policy(policy_file))
