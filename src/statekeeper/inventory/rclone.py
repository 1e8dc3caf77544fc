"""rclone: the sync calls of a container, their remote's type and how often they run."""

from __future__ import annotations

import re
from dataclasses import dataclass

from statekeeper.inventory.cron import cron_interval
from statekeeper.inventory.model import Container
from statekeeper.inventory.shell import program_invocations
from statekeeper.policy.model import Policy, parse_duration


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
