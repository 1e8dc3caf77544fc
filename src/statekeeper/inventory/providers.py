"""Backup providers: which containers implement the backup tiers, and what they cover.

The providers are policy data (`backup.providers`, docs/providers.md). A container is spotted
by the first provider entry whose image, name and command words all match (the ones given).
What it covers depends on the entry's tiers and on the container's form:

| form                                             | covers                                  |
|--------------------------------------------------|-----------------------------------------|
| regular init container (runs to completion)      | start-up: integrity-check, restore-on-start |
| sidecar (a regular container)                    | running tiers: sqlite-stream, file-sync |
| native sidecar (init, `restartPolicy: Always`)   | both                                    |

`reader: litestream|rclone` providers are read by their own parsers (commands, litestream.yml:
`detect.py`); `declared` providers (statekeeper's agent, DataAngel, a user's) by the value
sources of the policy: env vars (a downward-API `fieldRef` to a pod-template annotation counts
as that annotation), pod-template annotations, command-line flags.
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Iterable
from typing import Any

from statekeeper.inventory.images import image_matches
from statekeeper.inventory.model import UNSET, Container, ProviderUse, Workload
from statekeeper.inventory.shell import runs_program, split_list
from statekeeper.policy.model import (
    RUNNING_TIERS,
    STARTUP_TIERS,
    Policy,
    Provider,
    ProviderContainer,
    ValueSource,
    parse_duration,
)


def match_provider(
    container: Container, policy: Policy
) -> tuple[Provider, ProviderContainer] | None:
    """The provider (and its entry) a container belongs to, if any: first match wins."""
    for provider in policy.backup.providers:
        for entry in provider.containers:
            if _matches(entry, container):
                return provider, entry
    return None


def classify_container(container: Container, policy: Policy) -> str:
    """The role statekeeper sees in a container (see `Container.role`): statekeeper's agent
    (its policy markers), a `litestream`/`rclone` reader provider, another declared provider
    ("provider"), an integrity-check init container, else the app itself."""
    script = container.script
    agent = policy.agent
    if agent.restore_marker in script and container.runs_before_app:
        return "agent-restore"
    if agent.run_marker in script and container.long_running:
        return "agent-run"
    found = match_provider(container, policy)
    if found is not None:
        reader = found[0].reader
        return "provider" if reader == "declared" else reader
    markers = policy.tiers.sqlite.integrity_markers
    if container.runs_before_app and any(m in script for m in markers):
        return "integrity"
    return "app"


def _matches(entry: ProviderContainer, container: Container) -> bool:
    if entry.images and not image_matches(container.image, entry.images):
        return False
    if entry.names and not any(fnmatch.fnmatchcase(container.name, n) for n in entry.names):
        return False
    if entry.commands:
        script = container.script or " ".join(container.argv)
        return any(
            (word in script) if " " in word else runs_program(script, word)
            for word in entry.commands
        )
    return True


def form_tiers(tiers: Iterable[str], container: Container) -> frozenset[str]:
    """The tiers a container of this form can cover (see the module table)."""
    wanted = frozenset(tiers)
    if container.native_sidecar:
        return wanted
    if container.init:
        return wanted & STARTUP_TIERS
    return wanted & RUNNING_TIERS


def form_name(container: Container) -> str:
    if container.native_sidecar:
        return "native sidecar"
    return "init container" if container.init else "sidecar"


def detect_providers(workload: Workload, policy: Policy) -> None:
    """Fill `workload.providers` with the declared providers protecting it."""
    for container in workload.all_containers:
        found = match_provider(container, policy)
        if found is None or found[0].reader != "declared":
            continue
        provider, entry = found
        tiers = form_tiers(entry.tiers, container)
        if not tiers:
            continue
        how = f"image {container.image}" if entry.images else f"container {container.name!r}"
        if entry.commands and not entry.images:
            how = f"container {container.name!r} running {_first_command(entry, container)}"
        use = ProviderUse(
            provider=provider.name,
            container=container,
            tiers=tiers,
            evidence=f"{provider.name} {form_name(container)} {container.name!r} ({how})",
        )
        _read_settings(use, provider, workload, container)
        workload.providers.append(use)
    for provider in policy.backup.providers:
        present = [a for a in provider.injected_by_annotations if a in workload.annotations]
        if (
            present
            and provider.injected_tiers
            and not any(u.provider == provider.name for u in workload.providers)
        ):
            use = ProviderUse(
                provider=provider.name,
                container=None,
                tiers=frozenset(provider.injected_tiers),
                evidence=f"{provider.name} injected (annotation {present[0]})",
            )
            _read_settings(use, provider, workload, None)
            workload.providers.append(use)


def _first_command(entry: ProviderContainer, container: Container) -> str:
    script = container.script or " ".join(container.argv)
    return next((w for w in entry.commands if w in script), entry.commands[0])


def _read_settings(
    use: ProviderUse, provider: Provider, workload: Workload, container: Container | None
) -> None:
    use.sqlite_paths, use.sqlite_source = _paths(provider.sqlite_paths, workload, container)
    use.file_paths, use.file_source = _paths(provider.file_paths, workload, container)
    value, source = _first(provider.interval, workload, container)
    if value is UNSET:
        use.interval, use.interval_source = None, f"{source} (from a reference)"
    elif isinstance(value, str) and value.strip():
        use.interval = parse_duration(value.strip())
        use.interval_source = f"{source}={value.strip()}"
    elif provider.default_interval is not None:
        use.interval = parse_duration(provider.default_interval)
        use.interval_source = f"{provider.name} default {provider.default_interval}"
    else:
        use.interval_source = "no interval found"


def _paths(
    sources: list[ValueSource], workload: Workload, container: Container | None
) -> tuple[list[str] | None, str]:
    value, source = _first(sources, workload, container)
    if value is UNSET:
        return None, f"{source} (from a reference)"
    if not isinstance(value, str):
        return [], ""
    return [posixpath.normpath(p) for p in split_list(value) if p.startswith("/")], source


def _first(
    sources: list[ValueSource], workload: Workload, container: Container | None
) -> tuple[Any, str]:
    """The first source that is set: (value or UNSET, label); (None, "") when none is."""
    for source in sources:
        value = read_value(source, workload, container)
        if value is not None:
            label = source.label
            if source.env is not None and container is not None:
                ref = next((v.ref for v in container.env if v.name == source.env), "")
                if ref:
                    label = f"annotation {ref} (env {source.env})"
            return value, label
    return None, ""


def read_value(source: ValueSource, workload: Workload, container: Container | None) -> Any:
    """A setting's value: a string, UNSET (set through an unreadable reference), or None."""
    if source.annotation is not None:
        return workload.annotations.get(source.annotation)
    if container is None:
        return None
    if source.env is not None:
        return container.env_value(source.env)
    flag = source.arg or ""
    argv = container.argv
    for index, word in enumerate(argv):
        if word == flag and index + 1 < len(argv):
            return argv[index + 1]
        if word.startswith(flag + "="):
            return word[len(flag) + 1 :]
    return None
