"""Exact line numbers of fields, computed lazily: only for findings that are reported.

Loading keeps one line per document (cheap); a rule that wants the line of
`spec.storageClassName` calls `field_line`, which re-composes that one file with libyaml (node
graph only, no construction; cached) and walks the path through the nodes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from statekeeper.manifests.files import STDIN_NAME
from statekeeper.manifests.resource import Resource
from statekeeper.manifests.yaml import K8sLoader

_MAX_BYTES = 16 * 1024 * 1024


def field_line(resource: Resource, path: Sequence[str | int]) -> int | None:
    """The 1-based line of the field at `path` (e.g. ["spec", "storageClassName"]) in the
    document the resource was read from; None when unknown (stdin, a rendered object not
    mapped to its source, a field not present in the source, e.g. added by a patch).

    For a mapping key the line is the key's; for a list index, the item's. For rendered
    objects, a list index into items that have a `name` (containers, volumes, ...) is matched
    by that name, since patches may reorder or add items.
    """
    values_of = resource.extras.get("values_of")
    if values_of is not None:  # interpreted from Helm values (`helm.ValuesLocator`)
        line: int | None = values_of.locate(path)
        return line
    origin = resource.origin
    if origin.file == STDIN_NAME:
        return None
    if origin.overlay is not None and not resource.extras.get("source_mapped", False):
        return None
    absolute = os.path.abspath(origin.file)  # noqa: PTH100 - normalise, keep links
    nodes = _documents(absolute, _mtime(absolute))
    if nodes is None or origin.document >= len(nodes):
        return None
    node: Node = nodes[origin.document]
    body: Any = resource.body
    line = node.start_mark.line + 1
    for step in path:
        if isinstance(node, MappingNode) and isinstance(step, str):
            found = _mapping_item(node, step)
            if found is None:
                return None
            key, node = found
            line = key.start_mark.line + 1
            body = body.get(step) if isinstance(body, dict) else None
        elif isinstance(node, SequenceNode) and isinstance(step, int):
            item = body[step] if isinstance(body, list) and -len(body) <= step < len(body) else None
            named = isinstance(item, dict) and isinstance(item.get("name"), str)
            if origin.overlay is not None and named:
                # Patches reorder and add items: match by name, never by position.
                by_name = _named_item(node, item)
                if by_name is None:
                    return None
                node = by_name
            elif 0 <= step < len(node.value):
                node = node.value[step]
            else:
                return None
            line = node.start_mark.line + 1
            body = item
        else:
            return None
    return line


def _mapping_item(node: MappingNode, key: str) -> tuple[Node, Node] | None:
    for key_node, value_node in node.value:
        if isinstance(key_node, ScalarNode) and key_node.value == key:
            return key_node, value_node
    return None


def _named_item(node: SequenceNode, item: Any) -> Node | None:
    """The item of `node` whose `name` equals the `name` of the rendered `item`."""
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        return None
    for child in node.value:
        found = _mapping_item(child, "name") if isinstance(child, MappingNode) else None
        if (
            found is not None
            and isinstance(found[1], ScalarNode)
            and found[1].value == item["name"]
        ):
            return child  # type: ignore[no-any-return]
    return None


def _mtime(file: str) -> float:
    try:
        return Path(file).stat().st_mtime
    except OSError:
        return -1.0


@lru_cache(maxsize=32)
def _documents(path: str, mtime: float) -> list[Node] | None:
    """The root nodes of every document in `path` (the mtime is part of the cache key)."""
    if mtime < 0:
        return None
    try:
        with Path(path).open("rb") as handle:
            data = handle.read(_MAX_BYTES + 1)
    except OSError:
        return None
    if len(data) > _MAX_BYTES or b"\x00" in data:
        return None
    loader = K8sLoader(data)
    roots: list[Node] = []
    try:
        while loader.check_node():
            roots.append(loader.get_node())
    except (yaml.YAMLError, RecursionError):
        return None
    finally:
        loader.dispose()
    return roots
