"""Fixer for SK401 (velero-daily-all-namespaces).

* A daily Schedule that lists its namespaces gets the uncovered ones appended to
  `includedNamespaces` (and removed from `excludedNamespaces`): the smallest change that covers
  them, keeping the user's explicit list.
* With no daily Schedule at all, a new one (daily, `includedNamespaces: ["*"]`, volumes
  included) is written where Velero is already configured — a `daily-all-namespaces` entry in the
  velero chart's `schedules:` values, else `velero-schedule.yaml` in the folder holding Velero's
  kustomization (listed in its `resources`) — else once at `--cluster-dir` (default `cluster/`),
  with a note to add it to the app that deploys the cluster's objects. A Schedule is cluster-wide:
  it is written once per environment (once per Velero folder), never into each overlay.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from statekeeper.fix.context import FindingGroup, FixContext, to_ruamel
from statekeeper.fix.sources import SourceDoc
from statekeeper.generate.cluster import velero_schedule, velero_schedule_yaml

SCHEDULE_FILE = "velero-schedule.yaml"


def _is_daily(cron: str) -> bool:
    fields = cron.split()
    if cron.strip() in ("@daily", "@midnight"):
        return True
    return len(fields) == 5 and fields[2:] == ["*", "*", "*"] and "*" not in fields[:2]


def _schedules(ctx: FixContext) -> list[SourceDoc]:
    return [
        doc
        for docs in ctx.index.docs.values()
        for doc in docs
        if doc.kind == "Schedule" and str(doc.body.get("apiVersion", "")).startswith("velero.io/")
    ]


def fix_all(ctx: FixContext, groups: list[FindingGroup]) -> None:
    """Every uncovered namespace at once: one edit per Schedule (or one new Schedule)."""
    missing = sorted({g.name for g in groups if g.kind == "Namespace"})
    for group in groups:
        if group.kind != "Namespace":
            ctx.refuse(group, f"only uncovered namespaces are fixed (this is a {group.kind})")
    if not missing:
        return
    daily = [
        d for d in _schedules(ctx) if _is_daily(str(d.body.get("spec", {}).get("schedule", "")))
    ]
    listed = [d for d in daily if "*" not in (d.body["spec"].get("template", {})
                                              .get("includedNamespaces") or ["*"])]  # fmt: skip
    ns_groups = [g for g in groups if g.kind == "Namespace"]
    if daily and not listed:
        # A daily Schedule covering "*" exists and still namespaces are reported: something else
        # (excludedNamespaces, a label selector) excludes them. Edit that by hand.
        for doc in daily:
            excluded = doc.body["spec"].get("template", {}).get("excludedNamespaces") or []
            if any(ns in excluded for ns in missing):
                _edit(ctx, doc, missing)
                for group in ns_groups:
                    ctx.done(group, f"removed from excludedNamespaces of {ctx.show(doc.file)}")
                return
        for group in ns_groups:
            ctx.refuse(group, "a daily Schedule of all namespaces exists but does not cover it "
                              "(label selector?); check it by hand")  # fmt: skip
        return
    if listed:
        doc = listed[0]
        _edit(ctx, doc, missing)
        for group in ns_groups:
            ctx.done(group, f"added to includedNamespaces of Schedule {doc.name} "
                            f"in {ctx.show(doc.file)}")  # fmt: skip
        return
    helm = _helm_schedules(ctx)
    if helm:
        _add_helm_schedule(ctx, ns_groups, helm)
        return
    _write_new(ctx, ns_groups)


# Where the velero chart's values sit in a document: (kind, path to the values mapping).
_VALUES_PATHS: dict[str | None, tuple[str, ...]] = {
    None: (),  # a plain values file
    "HelmRelease": ("spec", "values"),
    "Application": ("spec", "source", "helm", "valuesObject"),
}


def _get(data: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _helm_schedules(ctx: FixContext) -> list[tuple[Path, int, str | None]]:
    """Documents holding the velero chart's `schedules:` values: (file, document, kind) of
    plain values files, Flux HelmReleases and Argo CD Applications."""
    found: list[tuple[Path, int, str | None]] = []
    for path, docs in sorted(ctx.index.other_yaml.items()):
        for i, doc in enumerate(docs):
            if isinstance(doc, dict) and isinstance(doc.get("schedules"), dict):
                found.append((path, i, None))
    for path, kube in sorted(ctx.index.docs.items()):
        for doc in kube:
            values = _get(doc.body, _VALUES_PATHS.get(doc.kind, ("\0",)))
            if isinstance(values, dict) and isinstance(values.get("schedules"), dict):
                found.append((path, doc.index, doc.kind))
    return found


def _add_helm_schedule(
    ctx: FixContext, groups: list[FindingGroup], found: list[tuple[Path, int, str | None]]
) -> None:
    """A `daily-all-namespaces` schedule in each set of velero chart values (one per
    environment's release), or the namespaces added to a daily one that lists them."""
    template = velero_schedule(ctx.strategy)["spec"]
    edited: list[str] = []
    for path, index, kind in found:
        yfile = ctx.workspace.load(path)
        data = yfile.editable(index)
        schedules = _get(data, _VALUES_PATHS[kind])["schedules"]
        missing = sorted({g.name for g in groups})
        daily = [
            s
            for s in schedules.values()
            if isinstance(s, dict) and _is_daily(str(s.get("schedule", "")))
        ]
        listed = [s for s in daily if "*" not in ((s.get("template") or {})
                                                  .get("includedNamespaces") or ["*"])]  # fmt: skip
        if listed:
            included = listed[0]["template"]["includedNamespaces"]
            included.extend(ns for ns in missing if ns not in included)
        elif "daily-all-namespaces" not in schedules:
            schedules["daily-all-namespaces"] = to_ruamel(
                {"disabled": False, "schedule": template["schedule"],
                 "template": template["template"]}
            )  # fmt: skip
        edited.append(ctx.show(path))
    for group in groups:
        ctx.done(group, f"daily schedule of all namespaces in the velero chart values of "
                        f"{', '.join(sorted(set(edited)))}")  # fmt: skip


def _edit(ctx: FixContext, doc: SourceDoc, missing: list[str]) -> None:
    _yfile, data = ctx.edit_doc(doc.file, "Schedule", doc.name)
    template = data["spec"].setdefault("template", to_ruamel({}))
    included = template.get("includedNamespaces")
    if included is not None and "*" not in included:
        for ns in missing:
            if ns not in included:
                included.append(ns)
    excluded = template.get("excludedNamespaces")
    if excluded:
        for ns in missing:
            while ns in excluded:
                excluded.remove(ns)


def _velero_folders(ctx: FixContext) -> list[Path]:
    """Kustomization folders that install Velero (its chart or HelmRelease, its namespace,
    velero.io objects, or a folder named velero), the first of each environment."""
    folders: dict[str | None, Path] = {}
    for kdir, kust in sorted(ctx.index.kustomizations.items()):
        docs = [d for f in kust.resource_files for d in ctx.index.docs.get(f, [])]
        velero = (
            kdir.name == "velero"
            or any(c.get("name") == "velero" for c in kust.helm_charts)
            or any(d.kind in ("HelmRelease", "Namespace") and d.name == "velero" for d in docs)
            or any(str(d.body.get("apiVersion", "")).startswith("velero.io/") for d in docs)
        )
        if velero:
            folders.setdefault(ctx.index.environment_of(kdir), kdir)
    return sorted(folders.values())


def _write_new(ctx: FixContext, groups: list[FindingGroup]) -> None:
    text = velero_schedule_yaml(ctx.strategy)
    folders = _velero_folders(ctx)
    written: list[Path] = []
    for folder in folders:
        kust = ctx.index.kustomizations[folder]
        path = folder / SCHEDULE_FILE
        if path.exists():
            continue  # someone's file of that name: not ours to overwrite
        ctx.workspace.create(path, text)
        data = ctx.edit_first(kust.file)
        resources = data.get("resources")
        if resources is None:
            data["resources"] = to_ruamel([SCHEDULE_FILE])
        else:
            resources.append(SCHEDULE_FILE)
        written.append(path)
    if not written:
        path = ctx.workspace.root / ctx.cluster_dir / SCHEDULE_FILE
        if path.resolve() not in ctx.workspace.new_files:
            ctx.workspace.create(path, text)
        written.append(path)
        ctx.notes.append(
            f"{ctx.show(path)}: a cluster-wide Velero Schedule, written once; add it to the app "
            "that deploys the cluster's own objects (an Argo CD Application or Flux "
            "Kustomization), not to each app's overlay"
        )
    where = ", ".join(sorted(ctx.show(p) for p in written))
    for group in groups:
        ctx.done(group, f"wrote a daily Schedule of all namespaces: {where}")
