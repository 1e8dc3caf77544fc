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
    origin = resource.origin
    if origin.values_of is not None:  # interpreted from Helm values (`helm.ValuesLocator`)
        return origin.values_of.locate(path)
    if origin.file == STDIN_NAME:
        return None
    if origin.overlay is not None and not origin.source_mapped:
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
    return _compose(data)


# --------------------------------------------------------------------------- patched values

_PATCH_KEYS = ("patches", "patchesStrategicMerge", "patchesJson6902")


def patch_location(resource: Resource, path: Sequence[str | int]) -> tuple[str, int] | None:
    """(file, line) of the patch that set the field at `path` of a rendered object, when a
    patch of a kustomization that transformed it (`Origin.patched_in`, from
    kustomize's transformer annotations) sets that field or a parent of it: the patch file and
    the field's line in it, or for an inline patch the kustomization file and the patch's line.
    The last patch wins, as in kustomize. None when no patch set it (the base did)."""
    for kustomization in reversed(resource.origin.patched_in):
        found = _patch_in(str(kustomization), resource, list(path))
        if found is not None:
            return found
    return None


def _patch_in(kfile: str, resource: Resource, path: list[str | int]) -> tuple[str, int] | None:
    absolute = os.path.abspath(kfile)  # noqa: PTH100 - normalise, keep links
    nodes = _documents(absolute, _mtime(absolute))
    if not nodes or not isinstance(nodes[0], MappingNode):
        return None
    directory = os.path.dirname(kfile)  # noqa: PTH120 - str path
    entries: list[tuple[Node | None, Node | None]] = []  # (target, path or inline patch)
    for key in _PATCH_KEYS:
        found = _mapping_item(nodes[0], key)
        if found is None or not isinstance(found[1], SequenceNode):
            continue
        for entry in found[1].value:
            if isinstance(entry, ScalarNode):  # patchesStrategicMerge: a path or inline YAML
                entries.append((None, entry))
            elif isinstance(entry, MappingNode):
                selector = _mapping_item(entry, "target")
                ref_item = _mapping_item(entry, "path") or _mapping_item(entry, "patch")
                entries.append(
                    (selector[1] if selector else None, ref_item[1] if ref_item else None)
                )
    for target, ref in reversed(entries):
        if not isinstance(ref, ScalarNode) or not _targets(target, resource):
            continue
        text = str(ref.value)
        inline = "\n" in text or not text.endswith((".yaml", ".yml", ".json"))
        if inline:
            docs = _compose(text.encode())
            where, offset = kfile, _inline_offset(ref)
        else:
            where = os.path.normpath(os.path.join(directory, text))  # noqa: PTH118
            docs = _documents(os.path.abspath(where), _mtime(os.path.abspath(where)))  # noqa: PTH100
            offset = 0
        for doc in docs or []:
            line = _line_set_by(doc, resource, path, explicit_target=target is not None)
            if line is not None:
                return where, (offset + line if inline else line)
    return None


def _targets(target: Node | None, resource: Resource) -> bool:
    """Whether a patch's `target` selector (kind, name, namespace, simple labelSelector)
    selects the resource; no target: decided by the patch's own kind and name."""
    if not isinstance(target, MappingNode):
        return True
    for key_node, value_node in target.value:
        key, value = str(key_node.value), str(getattr(value_node, "value", ""))
        if key == "kind" and value != resource.kind:
            return False
        if key == "name" and value not in (resource.name, ".*") and value not in resource.name:
            return False
        if key == "namespace" and value != (resource.namespace or ""):
            return False
        if key == "labelSelector":
            for term in value.split(","):
                label, _, wanted = term.partition("=")
                if wanted and resource.labels.get(label.strip()) != wanted.strip():
                    return False
    return True


def _line_set_by(
    doc: Node, resource: Resource, path: list[str | int], *, explicit_target: bool
) -> int | None:
    """The line in a patch document that sets `path` (or a parent of it), else None."""
    if isinstance(doc, SequenceNode):  # JSON 6902: a list of operations
        wanted = "/" + "/".join(str(step) for step in path)
        for op in reversed(doc.value):
            if not isinstance(op, MappingNode):
                continue
            kind = _mapping_item(op, "op")
            target = _mapping_item(op, "path")
            if kind is None or target is None or str(kind[1].value) not in ("add", "replace"):
                continue
            op_path = str(target[1].value).rstrip("/")
            # The op sets the field, a parent of it, or a part of it.
            if (
                wanted == op_path
                or (wanted + "/").startswith(op_path + "/")
                or (op_path.startswith(wanted + "/"))
            ):
                value = _mapping_item(op, "value")
                return (value[0] if value else op).start_mark.line + 1
        return None
    if not isinstance(doc, MappingNode):
        return None
    if not explicit_target:  # a strategic merge patch names its object
        kind = _mapping_item(doc, "kind")
        metadata = _mapping_item(doc, "metadata")
        meta = metadata[1] if metadata is not None else None
        name = _mapping_item(meta, "name") if isinstance(meta, MappingNode) else None
        if kind is None or str(kind[1].value) != resource.kind:
            return None
        if name is None or str(name[1].value) not in resource.name:
            return None
    node: Node = doc
    body: Any = resource.body
    line: int | None = None
    for step in path:
        if isinstance(node, MappingNode) and isinstance(step, str):
            found = _mapping_item(node, step)
            if found is None:
                return None
            line = found[0].start_mark.line + 1
            node = found[1]
            body = body.get(step) if isinstance(body, dict) else None
        elif isinstance(node, SequenceNode) and isinstance(step, int):
            item = body[step] if isinstance(body, list) and -len(body) <= step < len(body) else None
            child = _named_item(node, item)
            if child is None:
                return None
            node, line, body = child, child.start_mark.line + 1, item
        else:
            return None
    return line


def _inline_offset(ref: ScalarNode) -> int:
    """Lines before an inline patch's first line: a block scalar (`patch: |-`) starts on the
    line after its indicator."""
    return ref.start_mark.line + 1 if ref.style in ("|", ">") else ref.start_mark.line


def _compose(data: bytes) -> list[Node] | None:
    """The root nodes of every document in `data`; None when it is not valid YAML."""
    loader = K8sLoader(data)
    roots: list[Node] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                roots.append(node)
    except (yaml.YAMLError, RecursionError):
        return None
    finally:
        loader.dispose()
    return roots
