"""Fixer for SK401 (velero-daily-all-namespaces).

* A daily Schedule that lists its namespaces gets the uncovered ones appended to
  `includedNamespaces` (and removed from `excludedNamespaces`): the smallest change that covers
  them, keeping the user's explicit list.
* With no daily Schedule at all, a new one (daily, `includedNamespaces: ["*"]`, volumes included)
  is written into each affected overlay and listed in its `resources` — or, for a tree without
  overlays, as `velero-schedule.yaml` at its root.
"""

from __future__ import annotations

from statekeeper.fix.context import FindingGroup, FixContext, to_ruamel
from statekeeper.fix.sources import SourceDoc
from statekeeper.generate.cluster import velero_schedule_yaml

RULES = ("SK401",)
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
    helm = _helm_schedule_files(ctx)
    if helm:
        for group in ns_groups:
            ctx.refuse(group, f"the Velero schedules come from Helm values ({', '.join(helm)}); "
                              "add the namespace to their includedNamespaces there")  # fmt: skip
        return
    _write_new(ctx, ns_groups)


def _helm_schedule_files(ctx: FixContext) -> list[str]:
    """Files holding the velero chart's `schedules:` values (plain values files, Flux
    HelmReleases, Argo CD Applications): fix does not edit chart values."""
    files: list[str] = []
    for path, docs in sorted(ctx.index.other_yaml.items()):
        if any(isinstance(d, dict) and isinstance(d.get("schedules"), dict) for d in docs):
            files.append(ctx.show(path))
    for path, kube in sorted(ctx.index.docs.items()):
        for doc in kube:
            spec = doc.body.get("spec")
            values = None
            if doc.kind == "HelmRelease" and isinstance(spec, dict):
                values = spec.get("values")
            elif doc.kind == "Application" and isinstance(spec, dict):
                values = (spec.get("source") or {}).get("helm", {}).get("valuesObject")
            if isinstance(values, dict) and isinstance(values.get("schedules"), dict):
                files.append(ctx.show(path))
    return files


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


def _write_new(ctx: FixContext, groups: list[FindingGroup]) -> None:
    text = velero_schedule_yaml(ctx.strategy)
    envs = {e for g in groups for e in g.environments if e}
    overlays = [o for e in sorted(envs) for o in ctx.index.overlays_for(e)]
    if not overlays:
        path = ctx.workspace.root / SCHEDULE_FILE  # the tree, or the directory of a file
        if path.resolve() not in ctx.workspace.new_files:
            ctx.workspace.create(path, text)
        for group in groups:
            ctx.done(group, f"wrote a daily Schedule of all namespaces: {ctx.show(path)}")
        return
    for overlay in {o.dir: o for o in overlays}.values():
        kust = ctx.index.kustomizations[overlay.dir]
        ctx.workspace.create(overlay.dir / SCHEDULE_FILE, text)
        data = ctx.edit_first(kust.file)
        resources = data.get("resources")
        if resources is None:
            data["resources"] = to_ruamel([SCHEDULE_FILE])
        else:
            resources.append(SCHEDULE_FILE)
    for group in groups:
        where = ", ".join(sorted(ctx.show(o.dir / SCHEDULE_FILE) for o in overlays))
        ctx.done(group, f"wrote a daily Schedule of all namespaces: {where}")
