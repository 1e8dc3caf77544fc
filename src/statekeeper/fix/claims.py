"""Fixers for SK102 (reclaim-policy) and SK104 (pvc-size): values of the storage table.

* SK102: a StorageClass (or PersistentVolume) with the wrong reclaim policy gets its row's policy
  where the wrong value is written: an overlay patch that overrides it, else the definition.
  A StorageClass's reclaimPolicy cannot change in a live cluster; the note says so.
* SK104: a claim smaller than its category's minimum grows to the minimum (in an overlay patch
  that sets the size, else in the definition when every environment using it is reported). A
  claim larger than the maximum is not shrunk: Kubernetes cannot shrink a claim.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml
from ruamel.yaml.scalarstring import LiteralScalarString

from statekeeper.domain import name_purpose
from statekeeper.errors import InputError
from statekeeper.fix.context import FindingGroup, FixContext, replace_token
from statekeeper.fix.sources import Kustomization
from statekeeper.generate.strategy import parse_quantity


def _bytes(quantity: str) -> float:
    """A quantity in bytes; unreadable counts as 0 (never a reason to shrink)."""
    try:
        return float(parse_quantity(quantity))
    except (InputError, ValueError, TypeError):
        return 0.0


PVC = "PersistentVolumeClaim"


def _field(kind: str) -> tuple[str, ...]:
    return (
        ("spec", "persistentVolumeReclaimPolicy")
        if kind == "PersistentVolume"
        else ("reclaimPolicy",)
    )


def fix_reclaim(ctx: FixContext, group: FindingGroup) -> None:
    if group.kind not in ("StorageClass", "PersistentVolume"):
        ctx.refuse(group, f"only StorageClasses and PersistentVolumes are fixed ({group.kind})")
        return
    want = _wanted_policy(ctx, group)
    if want is None:
        ctx.refuse(group, "its StorageClass is not in the policy's table, so is its reclaim policy")
        return
    path = _field(group.kind)
    edited: list[str] = []
    for env in group.environments:
        for overlay in ctx.index.overlays_for(env):
            for kust in ctx.index.chain(overlay.dir):
                edited += _edit_patches(ctx, kust, group.kind, group.name, path, want)
    if not edited:
        for _overlay, placement in ctx.index.locate(group.kind, group.name, None, None):
            _y, data = ctx.edit_doc(placement.doc.file, group.kind, group.name)
            _set(data, path, want)
            edited.append(ctx.show(placement.doc.file))
    if not edited:
        ctx.refuse(group, f"{group.kind} {group.name} was not found in the local source files")
        return
    ctx.done(group, f"reclaimPolicy {want} in {', '.join(sorted(set(edited)))}")
    if group.kind == "StorageClass":
        ctx.notes.append(
            f"StorageClass {group.name}: reclaimPolicy is immutable in a cluster; delete and "
            "re-create the class, and patch existing PersistentVolumes of it"
        )


def _wanted_policy(ctx: FixContext, group: FindingGroup) -> str | None:
    name = group.name
    if group.kind == "PersistentVolume":
        for _o, placement in ctx.index.locate(group.kind, group.name, None, None):
            name = str(placement.doc.body.get("spec", {}).get("storageClassName", ""))
    env = ctx.strategy.policy.storage_class_environment(name)
    return ctx.strategy.policy.environments[env].reclaim_policy if env is not None else None


def _set(data: Any, path: tuple[str, ...], value: str) -> None:
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def _get(data: Any, path: tuple[str, ...]) -> Any:
    node = data
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _edit_patches(
    ctx: FixContext,
    kust: Kustomization,
    kind: str,
    name: str,
    path: tuple[str, ...],
    want: Any,
    replace: Callable[[Any], bool] = lambda value: True,
) -> list[str]:
    """Set `path` to `want` in the patches of `kust` that set it on kind/name to a value
    `replace` accepts (a size: only one smaller than `want`)."""
    edited: list[str] = []
    for file in kust.patch_files:
        for doc in ctx.index.docs.get(file, []):
            value = _get(doc.body, path)
            if (
                doc.kind == kind
                and doc.name == name
                and value is not None
                and value != want
                and replace(value)
            ):
                _y, data = ctx.edit_doc(file, kind, name)
                _set(data, path, want)
                edited.append(ctx.show(file))
    patches = kust.data.get("patches")
    json_path = "/" + "/".join(path)
    for i, entry in enumerate(patches if isinstance(patches, list) else []):
        target = entry.get("target") if isinstance(entry, dict) else None
        text = entry.get("patch") if isinstance(entry, dict) else None
        if not isinstance(target, dict) or not isinstance(text, str):
            continue
        if target.get("kind") != kind or target.get("name") != name:
            continue
        try:
            ops = yaml.safe_load(text)
        except yaml.YAMLError:
            continue
        for op in ops if isinstance(ops, list) else []:
            if (
                isinstance(op, dict)
                and op.get("path") == json_path
                and op.get("value") != want
                and replace(op.get("value"))
            ):
                data = ctx.edit_first(kust.file)
                new = replace_token(text, str(op["value"]), str(want))
                data["patches"][i]["patch"] = LiteralScalarString(new)
                edited.append(ctx.show(kust.file))
    return edited


def fix_size(ctx: FixContext, group: FindingGroup) -> None:
    if group.kind != PVC:
        ctx.refuse(group, "a volumeClaimTemplate's size is changed by hand (claims exist per pod)")
        return
    app = next((f.app for f in group.findings if f.app), None) or ""
    name = ctx.renamed(group.namespace, group.name)
    purpose = name_purpose(name, app or None, ctx.strategy.policy)
    # How the audit judged it where it reported it: the size each environment renders (a patch
    # may set it) and the category (it may come from what mounts the claim, not its name).
    judged = [
        j
        for j in ctx.claim_sizes.get((group.namespace, group.name), [])
        if j.environment in group.environments
    ]
    named = [j.category for j in judged if j.category]
    category = ctx.strategy.policy.sizing_named(named[0]) if named else None
    category = category or ctx.strategy.category_for(app, purpose)
    if category is None:
        ctx.refuse(group, _no_category(name, app, purpose))
        return
    found = ctx.index.locate(PVC, group.name, group.namespace, None)
    if not found:
        ctx.refuse(group, f"PVC {group.name} was not found in the local source files")
        return
    path = ("spec", "resources", "requests", "storage")
    sizes = [j.request for j in judged]
    sizes.append(str(_get(found[0][1].doc.body, path) or "0"))
    largest = max(sizes, key=_bytes)
    if _bytes(largest) > category.max_bytes:
        ctx.refuse(group, f"{largest} is above the {category.name} maximum "
                          f"{category.max}: reported, not changed (a claim cannot shrink; "
                          "if the data needs it, keep the size and say why with "
                          '`statekeeper.io/ignore: "SK104: <measured need>"`)')  # fmt: skip
        return
    want = category.min
    edited: list[str] = []
    for env in group.environments:
        for overlay in ctx.index.overlays_for(env):
            for kust in ctx.index.chain(overlay.dir):
                edited += _edit_patches(
                    ctx,
                    kust,
                    PVC,
                    group.name,
                    path,
                    want,
                    lambda value: _bytes(str(value)) < _bytes(want),  # grow, never shrink
                )
    if not edited:
        reported = {ctx.strategy.environment(e).name for e in group.environments if e}
        for where, placement in found:
            users = {o.environment.name for o in ctx.index.overlays_including(placement.doc.file)}
            if where is not None and not users <= reported:
                ctx.refuse(group, f"{ctx.show(placement.doc.file)} is shared with environments "
                                  "where the size is fine; set it by hand")  # fmt: skip
                return
            _y, data = ctx.edit_doc(placement.doc.file, PVC, name)
            if _bytes(str(_get(data, path) or "0")) >= _bytes(want):
                continue  # never shrink what the definition asks for
            _set(data, path, want)
            edited.append(ctx.show(placement.doc.file))
    if not edited:
        ctx.refuse(group, "no source sets a size below the minimum (a patch or generator "
                          "sets it?): set it by hand")  # fmt: skip
        return
    ctx.done(group, f"storage request {want} ({category.name}) in "
                    f"{', '.join(sorted(set(edited)))}")  # fmt: skip
    ctx.notes.append(
        f"PVC {name}: a bound claim grows only if its StorageClass has allowVolumeExpansion: true"
    )


def _no_category(name: str, app: str, purpose: str) -> str:
    """Why no size is chosen; a name that is only the app's says no purpose at all."""
    if purpose:
        return f"no sizing category of the policy matches purpose {purpose!r}"
    return (
        f"no sizing category of the policy matches claim {name!r}: its name says no purpose "
        f"beyond the app {app!r}, and what mounts it names no category"
    )
