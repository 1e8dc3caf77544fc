"""litestream: its command lines (`replicate`, `restore`) and the litestream.yml it reads."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from statekeeper.inventory.model import Container, LitestreamConfig, LitestreamDb, Workload
from statekeeper.inventory.shell import config_map_key, program_invocations
from statekeeper.manifests.resource import Resource
from statekeeper.policy.model import Policy


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
    key = config_map_key(volume.raw.get("configMap"), rel)
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
