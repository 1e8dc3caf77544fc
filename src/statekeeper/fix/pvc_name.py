"""Fixer for SK103 (pvc-name): rename a claim to `<app>-<purpose>-pvc` everywhere.

Renamed together, or not at all: the claim's `metadata.name`, every `claimName` that mounts it,
kustomize patches (`target.name`, patch files naming it, inline patches mentioning it) and
`replacements` selecting it. A name also found in YAML that is not a Kubernetes object (Helm
values) or in a kustomize `helmCharts` entry is not renamed: the fix would be half done.

A bound claim cannot be renamed in a live cluster without moving its volume, so a
`MIGRATION-<new name>.md` with the commands is written next to the claim.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from statekeeper.fix.context import FindingGroup, FixContext, replace_token
from statekeeper.fix.sources import SourceDoc
from statekeeper.manifests.flux import is_unresolved

RULES = ("SK103",)
PVC = "PersistentVolumeClaim"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_NOISE = {"pvc", "claim", "volume", "vol", "pv", "storage"}
_WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}


def proposed_name(app: str, old: str) -> str:
    """`<app>-<purpose>-pvc` from an old name: `mealie-data` and `data-mealie` → `mealie-data-pvc`;
    a name with no purpose left (`pvc`) → `<app>-data-pvc`."""
    words = [w for w in re.split(r"[-_.]+", old.lower()) if w]
    app_words = app.split("-")
    for i in range(len(words) - len(app_words) + 1):  # drop the app's own name, wherever it is
        if words[i : i + len(app_words)] == app_words:
            words = words[:i] + words[i + len(app_words) :]
            break
    purpose = [w for w in words if w not in _NOISE and w != app.replace("-", "")]
    return f"{app}-{'-'.join(purpose) or 'data'}-pvc"


def fix(ctx: FixContext, group: FindingGroup) -> None:
    if group.kind != PVC:
        ctx.refuse(
            group,
            "claims of a StatefulSet are named <template>-<statefulset>-<n>: renaming the "
            "template or the StatefulSet orphans the existing claims, so it is done by hand",
        )
        return
    old = group.name
    if is_unresolved(old):
        ctx.refuse(
            group,
            f"the claim's name {old!r} holds a Flux postBuild variable not resolved in this "
            "repo: no name is built from it",
        )
        return
    if not ctx.root.is_dir():
        # The workloads, patches and replacements that name the claim live in other files: a
        # rename seen through one file would leave them pointing at a claim that is gone.
        ctx.refuse(
            group,
            "renaming a claim must update every reference to it, in other files too: "
            "run fix on the repository's directory",
        )
        return
    app = next((f.app for f in group.findings if f.app), None)
    if not app or not _DNS_LABEL.match(app):
        ctx.refuse(
            group,
            f"the claim's app is unknown ({app or 'none'}), so is its name <app>-<purpose>-pvc; "
            "label the workload app.kubernetes.io/name",
        )
        return
    new = proposed_name(app, old)
    if not ctx.name_matches_policy(app, new):
        ctx.refuse(group, f"no name matching the policy's pattern could be derived from {old!r}")
        return
    placements = [p for _o, p in ctx.index.locate(PVC, old, group.namespace, None)]
    if not placements:
        ctx.refuse(group, f"PVC {old} was not found in the local source files")
        return
    if ctx.index.locate(PVC, new, group.namespace, None):
        ctx.refuse(group, f"a PVC named {new} already exists in namespace {group.namespace}")
        return
    blocker = _uneditable_reference(ctx, old)
    if blocker:
        ctx.refuse(group, blocker)
        return
    defs = {(p.doc.file, p.doc.name) for p in placements}
    for file, name in sorted(defs):
        _yfile, data = ctx.edit_doc(file, PVC, name)
        data["metadata"]["name"] = new
    touched = _rename_references(ctx, old, new, group.namespace)
    ctx.renames[(group.namespace, old)] = new
    pvc_file = sorted(defs)[0][0]
    note = pvc_file.parent / f"MIGRATION-{new}.md"
    if note.resolve() not in ctx.workspace.new_files and not note.exists():
        ctx.workspace.create(
            note, migration_note(old, new, group.namespace, app, placements[0].doc.body)
        )
    refs = f" and {touched} reference(s)" if touched else ""
    ctx.done(
        group,
        f"renamed {old} → {new}{refs}; a bound claim needs its data moved: see {ctx.show(note)}",
    )
    ctx.notes.append(
        f"{old} → {new}: if the claim is bound in a cluster, follow {ctx.show(note)} before syncing"
    )


def _uneditable_reference(ctx: FixContext, old: str) -> str | None:
    """A reason the rename would be half done, or None."""
    for path, docs in sorted(ctx.index.other_yaml.items()):
        if _mentions(docs, old):
            return (
                f"PVC {old} is also named in {ctx.show(path)}, which is not a Kubernetes manifest "
                "(Helm values?); rename it there and in the chart by hand"
            )
    for kust in ctx.index.kustomizations.values():
        for chart in kust.helm_charts:
            if _mentions(chart, old):
                return f"PVC {old} is named in the helmCharts of {ctx.show(kust.file)}"
    return None


def _mentions(value: Any, token: str) -> bool:
    if isinstance(value, str):
        return replace_token(value, token, "\0") != value
    if isinstance(value, dict):
        return any(_mentions(k, token) or _mentions(v, token) for k, v in value.items())
    if isinstance(value, list):
        return any(_mentions(v, token) for v in value)
    return False


def _rename_references(ctx: FixContext, old: str, new: str, namespace: str | None) -> int:
    count = 0
    for file, docs in sorted(ctx.index.docs.items()):
        for doc in docs:
            seen_in = ctx.index.namespaces_of(doc)
            if namespace and seen_in and namespace not in seen_in:
                continue  # a claim of the same name in another namespace
            if doc.kind in _WORKLOAD_KINDS and _claims(doc.body, old):
                count += _rename_claims(ctx, doc, old, new)
            elif doc.kind == PVC and doc.name == old and _is_patch_file(ctx, file):
                _y, data = ctx.edit_doc(file, PVC, old)
                data["metadata"]["name"] = new
                count += 1
    for kust in ctx.index.kustomizations.values():
        count += _rename_in_kustomization(ctx, kust.file, kust.data, old, new)
    return count


def _is_patch_file(ctx: FixContext, file: Path) -> bool:
    return any(file in k.patch_files for k in ctx.index.kustomizations.values())


def _claims(value: Any, old: str) -> bool:
    if isinstance(value, dict):
        if value.get("claimName") == old:
            return True
        return any(_claims(v, old) for v in value.values())
    if isinstance(value, list):
        return any(_claims(v, old) for v in value)
    return False


def _rename_claims(ctx: FixContext, doc: SourceDoc, old: str, new: str) -> int:
    _y, data = ctx.edit_doc(doc.file, doc.kind, doc.name)
    return _replace_claim_names(data, old, new)


def _replace_claim_names(value: Any, old: str, new: str) -> int:
    count = 0
    if isinstance(value, dict):
        if value.get("claimName") == old:
            value["claimName"] = new
            count += 1
        for item in value.values():
            count += _replace_claim_names(item, old, new)
    elif isinstance(value, list):
        for item in value:
            count += _replace_claim_names(item, old, new)
    return count


def _rename_in_kustomization(
    ctx: FixContext, file: Path, plain: dict[str, Any], old: str, new: str
) -> int:
    """patches[].target.name, inline patch texts, replacements' source/select names."""
    keys = ("patches", "replacements", "patchesStrategicMerge", "patchesJson6902")
    if not _mentions({k: plain.get(k) for k in keys}, old):
        return 0
    data = ctx.edit_first(file)
    count = 0
    for key in ("patches", "patchesJson6902", "patchesStrategicMerge"):
        entries = data.get(key)
        for i, entry in enumerate(entries if isinstance(entries, list) else []):
            if isinstance(entry, str) and "\n" in entry and _mentions(entry, old):
                entries[i] = type(entry)(replace_token(entry, old, new))
                count += 1
            if not isinstance(entry, dict):
                continue
            target = entry.get("target")
            if isinstance(target, dict) and target.get("name") == old:
                target["name"] = new
                count += 1
            patch = entry.get("patch")
            if isinstance(patch, str) and _mentions(patch, old):
                entry["patch"] = type(patch)(replace_token(patch, old, new))
                count += 1
    replacements = data.get("replacements")
    for entry in replacements if isinstance(replacements, list) else []:
        if not isinstance(entry, dict):
            continue
        source = entry.get("source")
        if isinstance(source, dict) and source.get("name") == old:
            source["name"] = new
            count += 1
        for target in entry.get("targets") or []:
            select = target.get("select") if isinstance(target, dict) else None
            if isinstance(select, dict) and select.get("name") == old:
                select["name"] = new
                count += 1
    return count


def migration_note(
    old: str, new: str, namespace: str | None, app: str, body: dict[str, Any] | None = None
) -> str:
    """The commands that move a bound claim's volume to the renamed claim."""
    ns = namespace or "<namespace>"
    spec = (body or {}).get("spec") or {}
    modes = ", ".join(str(m) for m in spec.get("accessModes") or ["ReadWriteOnce"])
    size = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "<size>")
    restore_policy = '{"spec":{"persistentVolumeReclaimPolicy":"\'"$POLICY"\'"}}'
    return f"""# Migrating PersistentVolumeClaim `{old}` → `{new}`

`statekeeper fix` renamed the claim in the manifests (rule SK103, `<app>-<purpose>-pvc`).
Kubernetes cannot rename a claim: synced as they are, the new manifests create a **new, empty**
claim `{new}`. If `{old}` is bound in a cluster, move its volume over **before** your GitOps
tool syncs the change (pause auto-sync for the app meanwhile), in each cluster:

```sh
NS={ns}
# 1. Stop the app so nothing writes to the volume (the backup sidecar flushes on SIGTERM).
kubectl -n "$NS" scale deployment/{app} --replicas=0   # or statefulset/{app}
# 2. Keep the volume when the old claim goes away.
PV=$(kubectl -n "$NS" get pvc {old} -o jsonpath='{{.spec.volumeName}}')
SC=$(kubectl get pv "$PV" -o jsonpath='{{.spec.storageClassName}}')
POLICY=$(kubectl get pv "$PV" -o jsonpath='{{.spec.persistentVolumeReclaimPolicy}}')
kubectl patch pv "$PV" -p '{{"spec":{{"persistentVolumeReclaimPolicy":"Retain"}}}}'
# 3. Release the volume from the old claim.
kubectl -n "$NS" delete pvc {old}
kubectl patch pv "$PV" --type json -p '[{{"op":"remove","path":"/spec/claimRef"}}]'
# 4. Create the new claim on that volume; the sync adopts it.
kubectl -n "$NS" apply -f - <<MANIFEST
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {new}
spec:
  accessModes: [{modes}]
  resources:
    requests:
      storage: {size}
  storageClassName: $SC
  volumeName: $PV
MANIFEST
# 5. Give the volume its reclaim policy back, then sync the app (it scales up again).
kubectl patch pv "$PV" -p '{restore_policy}'
```

If the claim was never bound anywhere, delete this file.
"""
