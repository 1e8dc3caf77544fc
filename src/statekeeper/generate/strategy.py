"""The few facts of the policy that `generate` and `fix` write into manifests.

`fix` and `generate` do not judge manifests (the rules do); they only need to know which
StorageClass an environment uses, what an overlay directory is called for it, which size range a
PVC category allows and how often the agent should sync. `Strategy` is that narrow, read-only
view of the typed effective policy (`statekeeper.policy.load_policy`): every answer is read from
the `Policy` (or `statekeeper.domain`), so class names and ranges live in the policy and never
in this package.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from statekeeper import defaults
from statekeeper.domain import known_sqlite_image, sizing_category_for
from statekeeper.errors import InputError, PolicyError
from statekeeper.policy.model import Environment, Policy, SizingCategory
from statekeeper.units import parse_quantity as quantity_bytes


def parse_quantity(text: str) -> int:
    """`"2Gi"` → 2147483648 bytes, read as the audit reads it. Raises InputError for anything
    that is not a storage size."""
    size = quantity_bytes(str(text))
    if size is None:
        raise InputError(f"not a storage size: {text!r} (use e.g. 2Gi, 500Mi)")
    return int(size)


@dataclass(frozen=True, slots=True)
class Strategy:
    """What generate/fix need from the policy."""

    policy: Policy
    velero_schedule: str = "0 3 * * *"
    velero_ttl: str = "720h0m0s"

    def __post_init__(self) -> None:
        if not self.policy.environments:
            raise PolicyError("the policy defines no environments: cannot choose StorageClasses")

    @property
    def environments(self) -> dict[str, Environment]:
        """The StorageClass table: canonical name -> environment, in the policy's order."""
        return self.policy.environment_table()

    def environment(self, name: str) -> Environment:
        """The environment an overlay name or environment name stands for (`prod` → production)."""
        env = self.policy.environment(name)
        if env is None:
            names = self.policy.environments.items()
            known = ", ".join(sorted({n for key, e in names for n in (key, *e.aliases)}))
            raise InputError(f"unknown environment {name!r} (the policy knows: {known})")
        return env

    @property
    def rclone_interval(self) -> str:
        """How often the agent syncs config directories (`agent.default_interval`)."""
        return self.policy.agent.default_interval or defaults.SYNC_INTERVAL

    @property
    def native_sidecars(self) -> bool:
        """The policy says the cluster runs Kubernetes >= 1.29 (`backup.native_sidecars`):
        sidecars are written as init containers with `restartPolicy: Always`."""
        return self.policy.backup.native_sidecars

    @property
    def config_dirs(self) -> tuple[str, ...]:
        """Mount paths the audit treats as config directories (tier 2: rclone)."""
        return tuple(self.policy.tiers.config.paths)

    def known_sqlite_paths(self, image: str) -> tuple[str, ...]:
        """The usual database paths of an image the policy knows as a SQLite app."""
        known = known_sqlite_image(self.policy, image)
        return tuple(known.paths) if known is not None else ()

    def category_for(
        self, app: str, purpose: str, images: tuple[str, ...] = (), sqlite: bool = False
    ) -> SizingCategory | None:
        """The sizing category of a claim, decided by the audit's own code (SK104): the first
        category whose purposes name the claim's purpose, else the first that matches weakly."""
        return sizing_category_for(self.policy, app or None, purpose, images, sqlite)


def strategy_from_policy(policy: Policy) -> Strategy:
    """The view of an effective policy already loaded (`load_policy()`)."""
    return Strategy(policy)


def load_strategy(policy_file: Path | None = None) -> Strategy:
    """The effective policy (built-in `elite`, overridden by `policy_file`) as a Strategy."""
    from statekeeper.policy.load import load_policy

    return strategy_from_policy(load_policy(policy_file))
