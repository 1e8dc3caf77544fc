"""What a container runs: its command line, the scripts it runs from mounted ConfigMaps, the
simple commands of a shell script, and each call of a program."""

from __future__ import annotations

import fnmatch
import posixpath
import re
import shlex
from functools import lru_cache
from typing import Any

from statekeeper.inventory.model import Container, Workload

_SEGMENT_SPLIT = re.compile(r"\|\||&&|[;\n|&]")
_MAX_SCRIPT = 200_000  # characters of a ConfigMap script read into a container's script


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
    key = config_map_key(volume.raw.get("configMap"), rel)
    data = resource.body.get("data")
    if isinstance(data, dict) and isinstance(data.get(key), str):
        return str(data[key])
    return None


def config_map_key(source: Any, rel: str) -> str:
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


def split_list(value: str) -> list[str]:
    return [part.strip() for part in re.split(r"[,\n]", value) if part.strip()]


def matches_any(name: str, globs: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, glob) for glob in globs)
