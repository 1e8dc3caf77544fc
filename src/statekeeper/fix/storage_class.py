"""Fixer for SK101 (storage-class-for-environment) and SK106 (storage-class-missing).

The StorageClass belongs to the environment, so it is set where the environment is written:

* the claim is never changed in place (its class is immutable once bound): a new claim is
  created beside it (`pvc_name.migrate`: `<name>-v2-pvc`, references moved, the old one kept
  for its data with a note of the copy commands), and the class is set on the new one;
* a claim defined inside the overlay directory itself gets the class written on it;
* a claim from a base shared with other environments gets a patch in
  `overlays/<env>/kustomization.yaml` (an existing patch of that claim's class is updated,
  otherwise a JSON patch is appended — later patches win, so it takes effect). The base is never
  edited, so the other environments keep their own class. The patch's target names the
  namespace only if the claim has it when kustomize applies the overlay's patches (an overlay's
  own `namespace:` is applied after them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import LiteralScalarString

from statekeeper.fix import pvc_name
from statekeeper.fix.context import FindingGroup, FixContext, replace_token, to_ruamel
from statekeeper.fix.sources import Overlay, Placement

PVC = "PersistentVolumeClaim"


def fix(ctx: FixContext, group: FindingGroup) -> None:
    if group.kind == "StatefulSet":
        _fix_templates(ctx, group)
        return
    if group.kind != PVC:
        ctx.refuse(group, f"only claims and claim templates are fixed (this is a {group.kind})")
        return
    name = ctx.renamed(group.namespace, group.name)
    envs = [e for e in group.environments if e is not None]
    if envs and not ctx.index.locate(PVC, group.name, group.namespace, None):
        ctx.refuse(group, _not_found_reason(ctx, name, ctx.strategy.environment(envs[0]).name))
        return
    if name == group.name and envs:
        # storageClassName is immutable on a bound claim: a migration to a new claim beside it,
        # never an edit in place.
        app = next((f.app for f in group.findings if f.app), None) or "<app>"
        new = pvc_name.successor_name(ctx, group.name, group.namespace)
        if pvc_name.migrate(ctx, group, new, app) is None:
            return
        name = new
    for env_name in group.environments:
        if env_name is None:
            ctx.refuse(group, "the environment is unknown, so is the StorageClass it needs")
            continue
        env = ctx.strategy.environment(env_name)
        # The index holds the sources as read; a claim renamed by this run is found by its old
        # name and edited under its new one.
        found = ctx.index.locate(PVC, group.name, group.namespace, env.name)
        if not found:
            ctx.refuse(group, _not_found_reason(ctx, name, env.name))
            continue
        for overlay, placement in found:
            _set_class(ctx, group, overlay, placement, name, env.storage_class)


def _not_found_reason(ctx: FixContext, name: str, env: str) -> str:
    for overlay in ctx.index.overlays_for(env):
        remote = ctx.index.remote_bases(overlay.dir)
        if remote:
            return (
                f"PVC {name} is not in the local sources (remote base {remote[0]} cannot be edited)"
            )
        charts = ctx.index.helm_charts(overlay.dir)
        if charts:
            return f"PVC {name} is not in the local sources (Helm chart {charts[0][1].get('name')})"
    return f"PVC {name} was not found in the source files of the {env} overlay"


def _overlay_patches(ctx: FixContext, overlay: Overlay) -> tuple[Path, Any]:
    """The overlay's kustomization file and its `patches` list (created if missing), editable."""
    kustomization = ctx.index.kustomizations[overlay.dir].file
    data = ctx.edit_first(kustomization)
    patches = data.get("patches")
    if patches is None:
        patches = to_ruamel([])
        data["patches"] = patches
    return kustomization, patches


def _set_class(
    ctx: FixContext,
    group: FindingGroup,
    overlay: Overlay | None,
    placement: Placement,
    name: str,
    storage_class: str,
) -> None:
    doc = placement.doc
    if overlay is not None:
        # A patch of the overlay (or a kustomization it builds on) that sets the class wins
        # over the definition: set it there.
        edited = _set_in_patches(ctx, overlay, group.name, name, placement, storage_class)
        if edited:
            ctx.done(group, f"storageClassName: {storage_class} on {name} in the patches of "
                            f"{', '.join(edited)}")  # fmt: skip
            return
    env = ctx.strategy.environment(overlay.environment.name) if overlay else None
    users = {o.environment.name for o in ctx.index.overlays_including(doc.file)}
    in_overlay = overlay is None or (env is not None and users <= {env.name})
    if in_overlay:
        _yfile, data = ctx.edit_doc(doc.file, PVC, name)
        spec = data.setdefault("spec", CommentedMap())
        if spec.get("storageClassName") != storage_class:
            spec["storageClassName"] = storage_class
        ctx.done(group, f"storageClassName: {storage_class} on {name} in {ctx.show(doc.file)}")
        return
    assert overlay is not None
    kustomization, patches = _overlay_patches(ctx, overlay)
    for entry in patches:
        if _update_existing(entry, name, placement.namespace, storage_class):
            where = ctx.show(kustomization)
            ctx.done(group, f"updated the StorageClass patch of {name} in {where}")
            return
    target: dict[str, Any] = {"kind": PVC, "name": name}
    namespace = ctx.index.namespace_at_patch_time(overlay.dir, placement)
    if namespace:
        target["namespace"] = namespace
    entry = to_ruamel({"target": target})
    entry["patch"] = LiteralScalarString(
        f"- op: add\n  path: /spec/storageClassName\n  value: {storage_class}"
    )
    patches.append(entry)
    ctx.done(
        group, f"patch storageClassName: {storage_class} on {name} in {ctx.show(kustomization)}"
    )


def _set_in_patches(
    ctx: FixContext,
    overlay: Overlay,
    old: str,
    name: str,
    placement: Placement,
    storage_class: str,
) -> list[str]:
    """Set the class in every patch of the overlay's kustomizations that sets it on the claim
    (`name`; when migrated, the copy made for it of the old claim's patch)."""
    edited: list[str] = []
    for kust in ctx.index.chain(overlay.dir):
        for file in kust.patch_files:
            sets_class = any(
                d.kind == PVC and d.name == old and "storageClassName" in (d.body.get("spec") or {})
                for d in ctx.index.docs.get(file, [])
            )
            if sets_class:
                _y, data = ctx.edit_doc(file, PVC, name)
                if data["spec"].get("storageClassName") != storage_class:
                    data["spec"]["storageClassName"] = storage_class
                edited.append(ctx.show(file))
        patches = kust.data.get("patches")
        if kust.dir != overlay.dir and isinstance(patches, list) and patches:
            live = ctx.edit_first(kust.file).get("patches") or []
            for entry in live:
                if _update_existing(entry, name, placement.namespace, storage_class):
                    edited.append(ctx.show(kust.file))
    return sorted(set(edited))


def _update_existing(entry: Any, name: str, namespace: str | None, storage_class: str) -> bool:
    """Rewrite an inline patch that targets exactly this claim by name and sets its class."""
    if not isinstance(entry, dict) or not isinstance(entry.get("patch"), str):
        return False
    target = entry.get("target")
    if not isinstance(target, dict) or target.get("name") != name:
        return False
    if target.get("kind") not in (None, PVC):
        return False
    if namespace and target.get("namespace") not in (None, namespace):
        return False
    text = entry["patch"]
    try:
        ops = yaml.safe_load(text)
    except yaml.YAMLError:
        return False
    if not isinstance(ops, list):
        return False
    for op in ops:
        if (
            isinstance(op, dict)
            and op.get("path") == "/spec/storageClassName"
            and op.get("op") in ("add", "replace")
            and isinstance(op.get("value"), str)
        ):
            if op["value"] != storage_class:
                entry["patch"] = LiteralScalarString(
                    replace_token(text, op["value"], storage_class)
                )
            return True
    return False


def _fix_templates(ctx: FixContext, group: FindingGroup) -> None:
    """A StatefulSet's volumeClaimTemplates are not edited: Kubernetes forbids changing them on a
    live StatefulSet (the sync would fail), and its existing claims would keep their class."""
    ctx.refuse(
        group,
        "volumeClaimTemplates cannot change on a live StatefulSet (the sync fails) and its "
        "claims keep their class: migrate by hand (a new StatefulSet or claims of the "
        "environment's class, the data copied, then the old one deleted with --cascade=orphan)",
    )
