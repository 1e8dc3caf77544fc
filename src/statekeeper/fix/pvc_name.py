"""Fixer for SK103 (pvc-name): a claim `<app>-<purpose>-pvc` replaces the badly named one.

A migration, never a rename in place: a bound claim cannot be renamed, and one that disappears
from git may be pruned with its volume. So the new claim is created beside the old one (same
file), every `claimName` that mounts the old one moves to the new one, each kustomize patch and
`replacements` target of the old claim is copied for the new one (the old keeps its own, so
its class never changes under it), and the old claim is annotated `statekeeper.io/ignore` with
the reason. `MIGRATION-<new name>.md` next to the claim holds the data-copy commands.

Refused: a name also found in YAML that is not a Kubernetes object (Helm values) or in a
kustomize `helmCharts` entry (the fix would be half done), and a claim mounted by several apps
(naming it after one of them would mislead).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap

from statekeeper.fix.context import FindingGroup, FixContext, replace_token
from statekeeper.fix.sources import SourceDoc
from statekeeper.inventory.annotations import ANNOTATION_IGNORE
from statekeeper.manifests.flux import is_unresolved

PVC = "PersistentVolumeClaim"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_NOISE = {"pvc", "claim", "volume", "vol", "pv", "storage"}
_WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}


def proposed_name(app: str, old: str) -> str:
    """`<app>-<purpose>-pvc` from an old name: `mealie-data` and `data-mealie` → `mealie-data-pvc`;
    a name with no purpose left (`pvc`) → `<app>-data-pvc`. The app is never repeated in the
    purpose: `authentik-data` of app `authentik-server` → `authentik-server-data-pvc`."""
    return f"{app}-{_purpose(app, old)}-pvc"


def _purpose(app: str, old: str) -> str:
    words = [w for w in re.split(r"[-_.]+", old.lower()) if w]
    app_words = app.split("-")
    for i in range(len(words) - len(app_words) + 1):  # drop the app's own name, wherever it is
        if words[i : i + len(app_words)] == app_words:
            words = words[:i] + words[i + len(app_words) :]
            break
    # What starts with the first word(s) of the app (`authentik-…` of app `authentik-server`)
    # is the app again, not a purpose.
    shared = 0
    while shared < min(len(words) - 1, len(app_words)) and words[shared] == app_words[shared]:
        shared += 1
    words = words[shared:]
    purpose = [
        w for w in words if w not in _NOISE and w not in (app.replace("-", ""), app_words[0])
    ]
    return "-".join(purpose) or "data"


def _candidates(app: str, old: str) -> list[str]:
    """Names to try, best first: `<app family>-<purpose>-pvc` when the old name is written with
    the first word(s) of the app (`authentik-data` → `authentik-data-pvc`), then the full app."""
    words = [w for w in re.split(r"[-_.]+", old.lower()) if w]
    app_words = app.split("-")
    names = []
    for n in range(len(app_words) - 1, 0, -1):
        if words[:n] == app_words[:n] and words[n : n + 1] != app_words[n : n + 1]:
            names.append(f"{'-'.join(app_words[:n])}-{_purpose(app, old)}-pvc")
            break
    names.append(proposed_name(app, old))
    return names


def _part_of(app: str, other: str) -> bool:
    """Whether `other` names `app` as whole words (`backup-radarr-config` names `radarr`)."""
    words, app_words = other.split("-"), app.split("-")
    return any(
        words[i : i + len(app_words)] == app_words for i in range(len(words) - len(app_words) + 1)
    )


def _workload_apps(ctx: FixContext, claim: str, namespace: str | None) -> list[str]:
    """The apps whose workloads mount `claim` in `namespace` (labels, else workload names)."""
    apps: set[str] = set()
    for docs in ctx.index.docs.values():
        for doc in docs:
            if doc.kind not in _WORKLOAD_KINDS or not _claims(doc.body, claim):
                continue
            seen_in = ctx.index.namespaces_of(doc) or {doc.namespace}
            if namespace and None not in seen_in and namespace not in seen_in:
                continue
            labels = (doc.body.get("metadata") or {}).get("labels") or {}
            apps.add(
                str(
                    labels.get("app.kubernetes.io/instance")
                    or labels.get("app.kubernetes.io/name")
                    or labels.get("app")
                    or doc.name
                )
            )
    return sorted(apps)


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
    app = next((f.app for f in group.findings if f.app), None)
    # A workload named after the app (`backup-radarr-config` of radarr) is the app's own.
    sharing = sorted(
        {app if app and _part_of(app, a) else a for a in _workload_apps(ctx, old, group.namespace)}
    )
    if len(sharing) > 1:
        ctx.refuse(
            group,
            f"PVC {old} is mounted by {len(sharing)} apps ({', '.join(sharing)}): naming it "
            "after one of them would mislead; name it after its purpose by hand, or keep the "
            'name and say why with `statekeeper.io/ignore: "SK103: shared by …"`',
        )
        return
    if not app and len(sharing) == 1:
        app = sharing[0]  # the audit named no app: the one workload that mounts it names it
    if not app or not _DNS_LABEL.match(app):
        ctx.refuse(
            group,
            f"the claim's app is unknown ({app or 'none'}), so is its name <app>-<purpose>-pvc; "
            "label the workload app.kubernetes.io/name",
        )
        return
    matching = [n for n in _candidates(app, old) if ctx.name_matches_policy(app, n)]
    if not matching:
        ctx.refuse(group, f"no name matching the policy's pattern could be derived from {old!r}")
        return
    new = matching[0]
    migrated = migrate(ctx, group, new, app)
    if migrated is None:
        return
    note, touched = migrated
    refs = f", {touched} reference(s) moved to it" if touched else ""
    ctx.done(
        group,
        f"new claim {new} beside {old}{refs}; copy the data over before syncing: see {note}",
    )


def migrate(ctx: FixContext, group: FindingGroup, new: str, app: str) -> tuple[str, int] | None:
    """Create claim `new` beside the group's claim, move every reference to it, keep the old
    one (annotated) and write the data-copy note. Returns (the note, references moved), or None
    after refusing the group."""
    old = group.name
    if not ctx.root.is_dir():
        # The workloads, patches and replacements that name the claim live in other files: a
        # migration seen through one file would leave them pointing at the old claim.
        ctx.refuse(
            group,
            "moving a claim to a new one must update every reference to it, in other files too: "
            "run fix on the repository's directory",
        )
        return None
    placements = [p for _o, p in ctx.index.locate(PVC, old, group.namespace, None)]
    if not placements:
        ctx.refuse(group, f"PVC {old} was not found in the local source files")
        return None
    if ctx.index.locate(PVC, new, group.namespace, None):
        ctx.refuse(group, f"a PVC named {new} already exists in namespace {group.namespace}")
        return None
    blocker = _uneditable_reference(ctx, old)
    if blocker:
        ctx.refuse(group, blocker)
        return None
    pvc_file = sorted(p.doc.file for p in placements)[0]
    note = pvc_file.parent / f"MIGRATION-{new}.md"
    # The new claim is created beside the old one, which keeps its data (a GitOps prune of a
    # claim gone from git deletes its volume) until the note's commands have copied it.
    for file, name in sorted({(p.doc.file, p.doc.name) for p in placements}):
        yfile, data = ctx.edit_doc(file, PVC, name)
        created = copy.deepcopy(data)
        created.ca.comment = None  # the old claim's leading comment is about the old claim
        created["metadata"]["name"] = new
        annotations = created["metadata"].get("annotations")
        if isinstance(annotations, dict) and ANNOTATION_IGNORE in annotations:
            del annotations[ANNOTATION_IGNORE]
        reported = ctx.reported.get((PVC, group.namespace, old), set())
        keep_old(data, new, note.name, {group.rule, *(reported & set(_KEPT_RULES))})
        yfile.append_document(created)
    touched = _rename_references(ctx, old, new, group.namespace)
    ctx.renames[(group.namespace, old)] = new
    if note.resolve() not in ctx.workspace.new_files and not note.exists():
        ctx.workspace.create(
            note, migration_note(old, new, group.namespace, app, placements[0].doc.body)
        )
    ctx.notes.append(
        f"{old} → {new}: {old} stays (its data) until you have followed {ctx.show(note)}; "
        "then delete it from git"
    )
    return ctx.show(note), touched


def successor_name(ctx: FixContext, name: str, namespace: str | None) -> str:
    """A free name for the claim that replaces `name` (same purpose): `<name>-v2-pvc`, …"""
    stem = name.removesuffix("-pvc")
    suffix = "-pvc" if name.endswith("-pvc") else ""
    match = re.fullmatch(r"(.*)-v(\d+)", stem)
    start = int(match.group(2)) + 1 if match else 2
    stem = match.group(1) if match else stem
    for version in range(start, start + 100):
        candidate = f"{stem}-v{version}{suffix}"
        if not ctx.index.locate(PVC, candidate, namespace, None):
            return candidate
    return f"{stem}-new{suffix}"


# The claim rules a claim kept for its data no longer answers to: the new claim does.
_KEPT_RULES = ("SK101", "SK103", "SK104", "SK106")


def keep_old(data: Any, new: str, note: str, rules: set[str]) -> None:
    """Mark a claim kept beside its replacement `new`: the claim findings reported on it
    (`rules`) are the new claim's now."""
    meta = data["metadata"]
    annotations = meta.get("annotations")
    if not isinstance(annotations, dict):
        annotations = CommentedMap()
        meta["annotations"] = annotations
    reason = f"replaced by {new}, kept until its data is copied ({note})"
    existing = str(annotations.get(ANNOTATION_IGNORE) or "").strip()
    entries = [existing] if existing else []
    entries += [f"{rule}: {reason}" for rule in sorted(rules) if rule not in existing]
    annotations[ANNOTATION_IGNORE] = ", ".join(entries)


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
    for path, kube in sorted(ctx.index.docs.items()):
        for doc in kube:
            if doc.kind in ("HelmRelease", "Application") and _mentions(doc.body.get("spec"), old):
                return (
                    f"PVC {old} is named in the values of {doc.kind} {doc.name} "
                    f"({ctx.show(path)}); move it there and in the chart by hand"
                )
    mounted = any(
        doc.kind in _WORKLOAD_KINDS and _claims(doc.body, old)
        for kube in ctx.index.docs.values()
        for doc in kube
    )
    if not mounted:
        # Something mounts it that fix cannot see (a chart's template, `{{ .Release.Name }}-…`):
        # a new claim nobody mounts would only hide the finding.
        return (
            f"no workload in the local sources mounts PVC {old} (a Helm chart's template?): "
            "move it by hand where it is mounted"
        )
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
                # The old claim keeps its patch (its class must not change); the new one gets
                # the same patch.
                yfile, data = ctx.edit_doc(file, PVC, old)
                created = copy.deepcopy(data)
                created["metadata"]["name"] = new
                yfile.append_document(created)
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
    # The old claim stays (with its patches: its class must not change under it); each patch
    # of it is copied for the new claim, placed right after the original.
    for key in ("patches", "patchesJson6902", "patchesStrategicMerge"):
        entries = data.get(key)
        if not isinstance(entries, list):
            continue
        for i in reversed(range(len(entries))):
            entry = entries[i]
            if isinstance(entry, str) and "\n" in entry and _mentions(entry, old):
                entries.insert(i + 1, type(entry)(replace_token(entry, old, new)))
                count += 1
                continue
            if not isinstance(entry, dict):
                continue
            target = entry.get("target")
            patch = entry.get("patch")
            by_target = isinstance(target, dict) and target.get("name") == old
            by_text = isinstance(patch, str) and _mentions(patch, old)
            if not (by_target or by_text):
                continue
            created = copy.deepcopy(entry)
            if by_target:
                created["target"]["name"] = new
            if isinstance(patch, str) and by_text:
                created["patch"] = type(patch)(replace_token(patch, old, new))
            entries.insert(i + 1, created)
            count += 1
    replacements = data.get("replacements")
    for entry in replacements if isinstance(replacements, list) else []:
        if not isinstance(entry, dict):
            continue
        targets = entry.get("targets")
        if not isinstance(targets, list):
            continue
        for target in list(targets):
            select = target.get("select") if isinstance(target, dict) else None
            if isinstance(select, dict) and select.get("name") == old:
                created = copy.deepcopy(target)
                created["select"]["name"] = new
                targets.append(created)
                count += 1
    return count


def migration_note(
    old: str, new: str, namespace: str | None, app: str, body: dict[str, Any] | None = None
) -> str:
    """The commands that copy a bound claim's data into the claim created beside it."""
    ns = namespace or "<namespace>"
    spec = (body or {}).get("spec") or {}
    size = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "<size>")
    overrides = (
        '{"spec":{"containers":[{"name":"copy","image":"alpine:3.20","command":["sh","-c",'
        '"cp -a /old/. /new/ && sync"],"volumeMounts":[{"name":"old","mountPath":"/old"},'
        '{"name":"new","mountPath":"/new"}]}],"volumes":[{"name":"old","persistentVolumeClaim":'
        f'{{"claimName":"{old}"}}}},{{"name":"new","persistentVolumeClaim":{{"claimName":"{new}"}}}}]}}}}'
    )
    return f"""# Migrating PersistentVolumeClaim `{old}` → `{new}`

`statekeeper fix` created the claim `{new}` ({size}) **beside** `{old}` and pointed the app's
workloads at it. Kubernetes cannot rename a claim or change its StorageClass, and a claim that
disappears from git may be pruned with its volume, so `{old}` stays in the manifests (annotated
`statekeeper.io/ignore`) until its data is copied. If `{old}` is bound in a cluster, copy the data
**before** the app starts on the new, empty claim (pause auto-sync for the app meanwhile):

```sh
NS={ns}
# 1. Stop the app so nothing writes to the old volume (the backup sidecar flushes on SIGTERM).
kubectl -n "$NS" scale deployment/{app} --replicas=0   # or statefulset/{app}
# 2. Create the new claim only (from the rendered manifests of this environment).
kubectl kustomize <this environment's root> \\
  | yq 'select(.kind == "PersistentVolumeClaim" and .metadata.name == "{new}")' \\
  | kubectl -n "$NS" apply -f -
# 3. Copy the data (the pod mounts both claims; it binds the new one).
kubectl -n "$NS" run copy-{old} --rm -i --restart=Never --image=alpine:3.20 \\
  --overrides='{overrides}'
# 4. Sync the app: it starts on {new}.
```

Once the app runs on `{new}`, delete `{old}` from the manifests (and the cluster). If `{old}` was
never bound anywhere, delete it from the manifests now, with this file.
"""
