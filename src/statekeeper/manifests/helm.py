"""Helm releases in a GitOps repo: render them, interpret app-template values, or say why not.

A *release* is a Flux `HelmRelease` (helm.toolkit.fluxcd.io, v2 and v2beta*), an Argo CD
`Application` whose source (or one of `sources`) names a Helm `chart`, or a kustomize
`helmCharts:` entry. Each one ends in exactly one of:

1. **rendered** — the chart is reachable (a `HelmRepository`/Argo `repoURL` over HTTP(S), an OCI
   reference, a chart folder in the repo through a `GitRepository` `spec.chart.spec.chart`
   path): values (`valuesFrom` ConfigMaps/Secrets found in the repo, then `values`) are merged
   and `helm template` renders the objects; Flux `postRenderers` kustomize patches are applied
   with kustomize. Charts are pulled once into the cache (`<cache>/helm-charts`); `helm`'s own
   repository config/cache are honoured (`HelmOptions`). Secret values are only ever written
   to a private temporary file for helm, never printed.
2. **interpreted** — the chart is bjw-s `app-template` and cannot be rendered (offline): its
   values are read as the workloads and claims it would render (`apptemplate`), and findings
   point at the values line that set them.
3. **skipped** with a note naming the release and the reason ("chart not reachable offline:
   oci://…").

The objects of a release keep the release's origin (file, overlay, environment). Flux
Kustomizations have been applied before (`flux.apply_flux`: target namespace, postBuild
substitution), so a HelmRelease is read as Flux would hand it to helm-controller.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from statekeeper.findings import Note
from statekeeper.manifests import apptemplate
from statekeeper.manifests.files import kustomization_file, read_file, relative_to_cwd
from statekeeper.manifests.flux import CLUSTER_SCOPED, config_data
from statekeeper.manifests.helmoptions import HelmOptions as HelmOptions
from statekeeper.manifests.resource import Origin, Resource
from statekeeper.manifests.yaml import K8sLoader, ReadError, parse_documents

HELM_TIMEOUT_S = 120.0
PULL_WORKERS = 4


@dataclass
class HelmSummary:
    """Counts for the summary: releases found and what became of them."""

    found: int = 0
    rendered: int = 0
    interpreted: int = 0
    skipped: int = 0
    # chart folders of the repo (resolved) rendered or interpreted from their values
    charts_read: set[Path] = field(default_factory=set)

    def note(self) -> Note:
        return Note(
            f"Helm releases: {self.found} found, {self.rendered} rendered with helm, "
            f"{self.interpreted} interpreted as app-template, {self.skipped} skipped "
            "(each named in a note)"
        )


@dataclass(frozen=True)
class ChartSource:
    """Where a release's chart comes from. `kind`: "repo" (HTTP(S) chart repository),
    "oci" (`url` is the full oci:// chart reference), "local" (`url` is a chart folder), or
    "unreachable" (`url` says what it is)."""

    kind: str
    url: str
    chart: str
    version: str | None = None

    def describe(self) -> str:
        if self.kind == "repo":
            return f"{self.url} chart {self.chart}" + (f" {self.version}" if self.version else "")
        return self.url + (f":{self.version}" if self.version and self.kind == "oci" else "")


@dataclass
class Release:
    """One release to render: where it was declared and what it asks for."""

    resource: Resource  # the HelmRelease / Application (a kustomization for helmCharts)
    what: str  # "HelmRelease default/sonarr" — for notes
    name: str
    namespace: str | None
    source: ChartSource
    values: dict[str, Any]
    values_path: tuple[str | int, ...]  # where `values` sit in the declaring document
    secret_strings: list[str] = field(default_factory=list)
    post_render: list[dict[str, Any]] = field(default_factory=list)  # kustomize patches
    # Values given to `helm template` when not `values` (an umbrella chart has its own).
    render_values: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)


class ValuesLocator:
    """Maps a field path of an interpreted object to the values line that set it (used by
    `lines.field_line` through `Origin.values_of`)."""

    def __init__(self, release: Resource, base: tuple[str | int, ...], paths: Any) -> None:
        self.release = release
        self.base = base
        self.paths: apptemplate.ValuesPaths = paths

    def locate(self, path: Sequence[str | int]) -> int | None:
        from statekeeper.manifests.lines import field_line

        best: tuple[tuple[str | int, ...], tuple[str | int, ...]] | None = None
        for prefix, values_path in self.paths:
            if tuple(path[: len(prefix)]) == prefix and (
                best is None or len(prefix) > len(best[0])
            ):
                best = (prefix, values_path)
        if best is None:
            return None
        # The field itself when the values use its name (`image`, `env`, `storageClass`…),
        # else the deepest values key that exists: a field the chart defaults has no line.
        values_path = best[1]
        rest: list[str | int] = []
        for step in path[len(best[0]) :]:
            if not isinstance(step, str):
                break
            rest.append(step)
        if rest:
            line = field_line(self.release, [*self.base, *values_path, *rest])
            if line is not None:
                return line
        for end in range(len(values_path), 0, -1):
            line = field_line(self.release, [*self.base, *values_path[:end]])
            if line is not None:
                return line
        return None


# --------------------------------------------------------------------------- entry point


def expand_releases(
    resources: list[Resource],
    notes: list[Note],
    kustomize_dirs: Iterable[Path],
    options: HelmOptions,
    *,
    chart_dirs: Iterable[Path] = (),
) -> HelmSummary:
    """Find every release among `resources` (and kustomize `helmCharts` of `kustomize_dirs`),
    append the objects they stand for to `resources` and a note per skipped release."""
    summary = HelmSummary()
    renderer = _Renderer(options) if options.render else None
    seen: set[tuple[str, str, str]] = set()
    added: list[Resource] = []
    releases: list[Release] = []
    for release in _releases(resources, kustomize_dirs, chart_dirs):
        key = (release.resource.origin.file, release.what, release.resource.origin.overlay or "")
        if key not in seen:
            seen.add(key)
            releases.append(release)
    if renderer is not None:
        renderer.prefetch([r.source for r in releases])
    for release in releases:
        summary.found += 1
        outcome = _expand_one(release, renderer)
        if isinstance(outcome, str):
            summary.skipped += 1
            notes.append(_note(release, outcome))
            continue
        objects, how = outcome
        if how == "rendered":
            summary.rendered += 1
        else:
            summary.interpreted += 1
        if release.source.kind == "local":
            summary.charts_read.add(Path(release.source.url).resolve())
        for problem in release.problems:
            notes.append(_note(release, problem))
        added.extend(objects)
    resources.extend(added)
    if summary.found:
        notes.append(summary.note())
    return summary


def _note(release: Release, message: str) -> Note:
    origin = release.resource.origin
    return Note(f"{release.what}: {message}", origin.file, origin.line)


def _expand_one(release: Release, renderer: _Renderer | None) -> tuple[list[Resource], str] | str:
    """The release's objects and how they were made, or the reason it was skipped."""
    source = release.source
    app_template = apptemplate.is_app_template(source.chart)
    reason = ""
    if source.kind == "unreachable":
        reason = source.url
    elif renderer is None:
        reason = "not rendered (helm rendering is off)"
    else:
        rendered = renderer.render(release)
        if isinstance(rendered, list):
            return rendered, "rendered"
        reason = rendered
    if app_template:
        return _interpret(release), "interpreted"
    return reason


# --------------------------------------------------------------------------- discovery


def _releases(
    resources: Sequence[Resource], kustomize_dirs: Iterable[Path], chart_dirs: Iterable[Path]
) -> Iterable[Release]:
    index = _Index(resources)
    for resource in list(resources):
        api = resource.api_version
        if resource.kind == "HelmRelease" and api.startswith("helm.toolkit.fluxcd.io/"):
            yield _flux_release(resource, index)
        elif resource.kind == "Application" and api.startswith("argoproj.io/"):
            yield from _argo_releases(resource)
    for directory in sorted(kustomize_dirs):
        yield from _kustomize_charts(directory)
    for directory in sorted(chart_dirs):
        release = _umbrella_chart(directory)
        if release is not None:
            yield release


def _umbrella_chart(directory: Path) -> Release | None:
    """A chart folder of the repo whose only job is to depend on app-template (Argo CD
    ApplicationSets over `apps/*`): its `values.yaml` under the dependency's key (or alias) are
    app-template values. The release is named after the folder, as such ApplicationSets do."""
    try:
        chart = yaml.load(read_file(directory / "Chart.yaml"), Loader=K8sLoader)
    except (ReadError, yaml.YAMLError, RecursionError, ValueError):
        return None
    dependencies = chart.get("dependencies") if isinstance(chart, dict) else None
    for dependency in dependencies if isinstance(dependencies, list) else []:
        if not isinstance(dependency, dict) or dependency.get("name") != "app-template":
            continue
        key = str(dependency.get("alias") or "app-template")
        values_file = directory / "values.yaml"
        try:
            values = yaml.load(read_file(values_file), Loader=K8sLoader)
        except (ReadError, yaml.YAMLError, RecursionError, ValueError):
            values = None
        sub = values.get(key) if isinstance(values, dict) else None
        where = relative_to_cwd(values_file if values_file.is_file() else directory / "Chart.yaml")
        holder = Resource(
            {"apiVersion": "v2", "kind": "Chart"},
            Origin(where, 0, 1, source_dir=relative_to_cwd(directory)),
        )
        version = dependency.get("version")
        source = ChartSource(
            "local", str(directory), "app-template", str(version) if version else None
        )
        return Release(
            holder, f"chart {relative_to_cwd(directory)} (app-template)", directory.name, None,
            source, copy.deepcopy(sub) if isinstance(sub, dict) else {}, (key,),
            render_values={},
        )  # fmt: skip
    return None


class _Index:
    """Sources and value objects of the repo by (kind, name), namespace aside."""

    def __init__(self, resources: Sequence[Resource]) -> None:
        self.by_kind_name: dict[tuple[str, str], list[Resource]] = {}
        for resource in resources:
            self.by_kind_name.setdefault((resource.kind, resource.name), []).append(resource)

    def find(self, kind: str, name: str, namespace: str | None) -> Resource | None:
        found = self.by_kind_name.get((kind, name), [])
        exact = [r for r in found if namespace is None or r.namespace in (namespace, None)]
        candidates = exact or found
        return candidates[0] if candidates else None


def _flux_release(resource: Resource, index: _Index) -> Release:
    # Flux Kustomizations (`flux.apply_flux`) have set the namespace and substituted already.
    body = resource.body
    spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
    assert isinstance(spec, dict)
    namespace = resource.namespace
    name = str(spec.get("releaseName") or resource.name)
    target_ns = spec.get("targetNamespace")
    release_ns = str(target_ns) if target_ns else namespace
    what = f"HelmRelease {namespace + '/' if namespace else ''}{resource.name}"
    source = _flux_chart(spec, namespace, index, resource)
    values = spec.get("values") if isinstance(spec.get("values"), dict) else {}
    release = Release(resource, what, name, release_ns, source, {}, ("spec", "values"))
    merged: dict[str, Any] = {}
    for ref in spec.get("valuesFrom") or []:
        if isinstance(ref, dict):
            _merge_values_from(merged, ref, namespace, index, release)
    release.values = _deep_merge(merged, copy.deepcopy(values) if values else {})
    for renderer in spec.get("postRenderers") or []:
        patches = renderer.get("kustomize") if isinstance(renderer, dict) else None
        if isinstance(patches, dict):
            release.post_render.append(patches)
    return release


def _flux_chart(
    spec: dict[str, Any], namespace: str | None, index: _Index, release: Resource
) -> ChartSource:
    chart_ref = spec.get("chartRef")
    if isinstance(chart_ref, dict):
        kind, name = str(chart_ref.get("kind", "")), str(chart_ref.get("name", ""))
        ns = str(chart_ref.get("namespace") or namespace or "") or None
        found = index.find(kind, name, ns)
        if found is None:
            return ChartSource(
                "unreachable", f"chart source {kind} {name} not found in the repo", name
            )
        if kind == "OCIRepository":
            return _oci_source(found)
        if kind == "HelmChart":
            chart_spec = found.body.get("spec")
            if isinstance(chart_spec, dict):
                return _chart_spec_source(chart_spec, found.namespace or ns, index, found)
        return ChartSource("unreachable", f"chartRef kind {kind} is not supported", name)
    chart = spec.get("chart")
    chart_spec = chart.get("spec") if isinstance(chart, dict) else None
    if isinstance(chart_spec, dict):
        return _chart_spec_source(chart_spec, namespace, index, release)
    return ChartSource("unreachable", "no spec.chart or spec.chartRef", "")


def _oci_source(repo: Resource) -> ChartSource:
    spec = repo.body.get("spec") if isinstance(repo.body.get("spec"), dict) else {}
    assert isinstance(spec, dict)
    url = str(spec.get("url") or "")
    ref = spec.get("ref") if isinstance(spec.get("ref"), dict) else {}
    assert isinstance(ref, dict)
    version = ref.get("tag") or ref.get("semver")
    chart = url.rstrip("/").rsplit("/", 1)[-1]
    return ChartSource("oci", url, chart, str(version) if version else None)


def _chart_spec_source(
    chart_spec: dict[str, Any], namespace: str | None, index: _Index, declared: Resource
) -> ChartSource:
    chart = str(chart_spec.get("chart") or "")
    version = chart_spec.get("version")
    version_text = str(version) if version not in (None, "", "*") else None
    source_ref = (
        chart_spec.get("sourceRef") if isinstance(chart_spec.get("sourceRef"), dict) else {}
    )
    assert isinstance(source_ref, dict)
    kind, name = str(source_ref.get("kind", "")), str(source_ref.get("name", ""))
    ns = str(source_ref.get("namespace") or namespace or "") or None
    if kind == "GitRepository":
        folder = _repo_folder(declared, chart)
        if folder is not None:
            return ChartSource("local", str(folder), chart, version_text)
        return ChartSource(
            "unreachable", f"chart folder {chart} of GitRepository {name} not in this repo", chart
        )
    found = index.find(kind, name, ns)
    if found is None:
        return ChartSource(
            "unreachable", f"chart source {kind} {name} not found in the repo", chart
        )
    repo_spec = found.body.get("spec") if isinstance(found.body.get("spec"), dict) else {}
    assert isinstance(repo_spec, dict)
    url = str(repo_spec.get("url") or "")
    if url.startswith("oci://") or repo_spec.get("type") == "oci":
        return ChartSource("oci", f"{url.rstrip('/')}/{chart}", chart, version_text)
    if url.startswith(("http://", "https://")):
        return ChartSource("repo", url, chart, version_text)
    return ChartSource("unreachable", f"{kind} {name} has no usable url", chart)


def _repo_folder(declared: Resource, chart_path: str) -> Path | None:
    """A chart folder named relative to the repository root, found above the declaring file."""
    relative = chart_path.removeprefix("./").strip("/")
    if not relative:
        return None
    start = Path(declared.origin.file).absolute().parent
    for parent in (start, *start.parents):
        candidate = parent / relative
        if (candidate / "Chart.yaml").is_file():
            return candidate
    return None


def _argo_releases(resource: Resource) -> Iterable[Release]:
    """A release for each Helm source of an Argo CD Application (`spec.source` and each of
    `spec.sources`); a source that is not a chart is no release."""
    spec = resource.body.get("spec") if isinstance(resource.body.get("spec"), dict) else {}
    assert isinstance(spec, dict)
    destination = spec.get("destination") if isinstance(spec.get("destination"), dict) else {}
    assert isinstance(destination, dict)
    namespace = str(destination.get("namespace") or "") or None
    for path, source in _argo_sources(spec):
        chart_source = _argo_chart_source(resource, source)
        if chart_source is None:
            continue
        helm = source.get("helm") if isinstance(source.get("helm"), dict) else {}
        assert isinstance(helm, dict)
        values, problems = _argo_values(helm, chart_source)
        name = str(helm.get("releaseName") or resource.name)
        values_path = (*path, "helm", "valuesObject")
        yield Release(
            resource,
            f"Argo CD Application {resource.name}",
            name,
            namespace,
            chart_source,
            values,
            values_path,
            problems=problems,
        )


def _argo_sources(spec: dict[str, Any]) -> list[tuple[tuple[str | int, ...], dict[str, Any]]]:
    """Each source mapping with its path in the Application (`spec.source` first)."""
    sources: list[tuple[tuple[str | int, ...], Any]] = []
    if isinstance(spec.get("source"), dict):
        sources.append((("spec", "source"), spec["source"]))
    for i, item in enumerate(spec.get("sources") or []):
        sources.append((("spec", "sources", i), item))
    return [(path, source) for path, source in sources if isinstance(source, dict)]


def _argo_chart_source(resource: Resource, source: dict[str, Any]) -> ChartSource | None:
    """Where an Argo CD source's chart comes from: `chart` from a Helm repository (http) or
    an OCI registry (anything else), or a `path` with `helm` settings, a chart folder in a Git
    repository, rendered when it is a folder of this repo. None: not a Helm source."""
    repo_url = str(source.get("repoURL") or "")
    version = str(source.get("targetRevision") or "") or None
    if source.get("chart"):
        chart = str(source["chart"])
        if repo_url.startswith(("http://", "https://")):
            return ChartSource("repo", repo_url, chart, version)
        oci = repo_url if repo_url.startswith("oci://") else f"oci://{repo_url}"
        return ChartSource("oci", f"{oci.rstrip('/')}/{chart}", chart, version)
    if not (isinstance(source.get("helm"), dict) and isinstance(source.get("path"), str)):
        return None
    chart = source["path"].rstrip("/").rsplit("/", 1)[-1]
    folder = _repo_folder(resource, source["path"])
    if folder is None:
        where = f"chart folder {source['path']} of {repo_url} not in this repo"
        return ChartSource("unreachable", where, chart)
    return ChartSource("local", str(folder), chart, version)


def _argo_values(
    helm: dict[str, Any], chart_source: ChartSource
) -> tuple[dict[str, Any], list[str]]:
    """The values a source gives its chart, merged in Argo CD's order of precedence (value
    files, then `values`, then `valuesObject`, then `parameters`), and what was not read."""
    values, problems = _argo_value_files(helm, chart_source)
    text = helm.get("values")
    if isinstance(text, str) and text.strip():
        try:
            parsed = yaml.load(text, Loader=K8sLoader)
        except yaml.YAMLError:
            parsed = None
            problems.append("spec.source.helm.values is not valid YAML; ignored")
        if isinstance(parsed, dict):
            values = _deep_merge(values, parsed)
    if isinstance(helm.get("valuesObject"), dict):
        values = _deep_merge(values, copy.deepcopy(helm["valuesObject"]))
    for parameter in helm.get("parameters") or []:  # `--set name=value`, applied last
        if isinstance(parameter, dict) and parameter.get("name"):
            _set_path(values, str(parameter["name"]), parameter.get("value"))
    return values, problems


def _argo_value_files(
    helm: dict[str, Any], chart_source: ChartSource
) -> tuple[dict[str, Any], list[str]]:
    """`helm.valueFiles` merged in order, and a problem for each not read: only a local
    chart's files can be read (the others live in the chart's repository)."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for value_file in helm.get("valueFiles") or []:
        if chart_source.kind != "local" or not isinstance(value_file, str):
            problems.append(f"helm.valueFiles {value_file} (in the chart's repo) not read")
            continue
        try:
            loaded = yaml.load(read_file(Path(chart_source.url, value_file)), K8sLoader)
        except (ReadError, yaml.YAMLError, RecursionError, ValueError):
            loaded = None
        if isinstance(loaded, dict):
            values = _deep_merge(values, loaded)
        else:
            problems.append(f"helm.valueFiles {value_file} not readable; ignored")
    return values, problems


def _kustomize_charts(directory: Path) -> Iterable[Release]:
    file = kustomization_file(directory)
    try:
        data = yaml.load(read_file(file), Loader=K8sLoader)
    except (ReadError, yaml.YAMLError, RecursionError, ValueError):
        return
    charts = data.get("helmCharts") if isinstance(data, dict) else None
    if not isinstance(charts, list):
        return
    where = relative_to_cwd(file)
    for i, entry in enumerate(charts):
        if not isinstance(entry, dict) or not entry.get("name"):
            continue
        chart = str(entry["name"])
        repo = str(entry.get("repo") or "")
        version = str(entry.get("version") or "") or None
        if repo.startswith("oci://"):
            source = ChartSource("oci", f"{repo.rstrip('/')}/{chart}", chart, version)
        elif repo.startswith(("http://", "https://")):
            source = ChartSource("repo", repo, chart, version)
        else:
            local = directory / str(entry.get("chartHome") or "charts") / chart
            kind = "local" if (local / "Chart.yaml").is_file() else "unreachable"
            source = ChartSource(
                kind,
                str(local) if kind == "local" else f"chart {chart} has no repo",
                chart,
                version,
            )
        values: dict[str, Any] = {}
        values_file = entry.get("valuesFile")
        if isinstance(values_file, str):
            try:
                loaded = yaml.load(read_file(directory / values_file), Loader=K8sLoader)
            except (ReadError, yaml.YAMLError, RecursionError, ValueError):
                loaded = None
            if isinstance(loaded, dict):
                values = loaded
        if isinstance(entry.get("valuesInline"), dict):
            values = _deep_merge(values, copy.deepcopy(entry["valuesInline"]))
        holder = Resource(
            {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"},
            Origin(where, 0, 1, source_dir=relative_to_cwd(directory)),
        )
        name = str(entry.get("releaseName") or chart)
        namespace = str(entry.get("namespace") or data.get("namespace") or "") or None
        yield Release(
            holder,
            f"kustomize helmCharts {name}",
            name,
            namespace,
            source,
            values,
            ("helmCharts", i, "valuesInline"),
        )


def _merge_values_from(
    merged: dict[str, Any],
    ref: dict[str, Any],
    namespace: str | None,
    index: _Index,
    release: Release,
) -> None:
    kind, name = str(ref.get("kind", "")), str(ref.get("name", ""))
    key = str(ref.get("valuesKey") or "values.yaml")
    found = index.find(kind, name, namespace) if kind in ("ConfigMap", "Secret") else None
    text: str | None = None
    if found is not None:
        text = _data_value(found, key, release)
    if text is None:
        if not ref.get("optional"):
            release.problems.append(
                f"valuesFrom {kind} {name} (key {key}) not found in the repo; rendered without it"
            )
        return
    target = ref.get("targetPath")
    if target:
        _set_path(merged, str(target), text)
        return
    try:
        parsed = yaml.load(text, Loader=K8sLoader)
    except yaml.YAMLError:
        release.problems.append(f"valuesFrom {kind} {name} (key {key}) is not valid YAML; ignored")
        return
    if isinstance(parsed, dict):
        _deep_merge(merged, parsed)


def _data_value(found: Resource, key: str, release: Release) -> str | None:
    """A ConfigMap's or Secret's value for `key`; a Secret's values are remembered so that no
    message repeats them."""
    value = config_data(found).get(key)
    if value is not None and found.kind == "Secret":
        with contextlib.suppress(yaml.YAMLError):
            release.secret_strings.extend(_strings(yaml.safe_load(value)))
        release.secret_strings.append(value)
    return value


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [str(value)] if isinstance(value, (str, int, float)) and len(str(value)) >= 4 else []


def _set_path(values: dict[str, Any], dotted: str, value: Any) -> None:
    parts = [p for p in re.split(r"(?<!\\)\.", dotted) if p]
    node = values
    for part in parts[:-1]:
        node = node.setdefault(part.replace("\\.", "."), {})
        if not isinstance(node, dict):
            return
    if parts:
        node[parts[-1].replace("\\.", ".")] = value


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """Helm's merge: maps merge key by key, anything else from `top` wins (in place)."""
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = value
    return base


# --------------------------------------------------------------------------- interpreting


def _interpret(release: Release) -> list[Resource]:
    """app-template values as objects whose origin is the release's values."""
    objects = apptemplate.interpret(
        release.values, release.name, release.namespace, release.source.version
    )
    origin = release.resource.origin
    out: list[Resource] = []
    for item in objects:
        locator = ValuesLocator(release.resource, release.values_path, item.paths)
        line = locator.locate(()) or origin.line
        out.append(
            Resource(
                item.body,
                replace(
                    origin,
                    line=line,
                    values_of=locator,
                    helm_release=release.what,
                    source_mapped=False,
                ),
            )
        )
    return out


# --------------------------------------------------------------------------- rendering


class _Renderer:
    """Runs helm: pulls charts into the cache once per run, renders releases."""

    def __init__(self, options: HelmOptions) -> None:
        self.options = options
        self.helm = shutil.which("helm")
        self.failed: dict[tuple[str, str, str | None], str] = {}
        self.pulled: dict[tuple[str, str, str | None], Path] = {}
        base = options.cache_dir
        if base is None:
            from statekeeper.manifests.kustomize import default_cache_dir

            base = default_cache_dir()
        self.charts = base / "helm-charts"

    def _global_flags(self) -> list[str]:
        flags: list[str] = []
        if self.options.repository_config:
            flags += ["--repository-config", self.options.repository_config]
        if self.options.repository_cache:
            flags += ["--repository-cache", self.options.repository_cache]
        return flags

    def render(self, release: Release) -> list[Resource] | str:
        if self.helm is None:
            return f"chart {release.source.describe()} not rendered: helm is not on PATH"
        chart = self._chart(release.source)
        if isinstance(chart, str):
            return chart
        with tempfile.TemporaryDirectory(prefix="statekeeper-helm-") as tmp:
            values_file = Path(tmp, "values.yaml")
            fd = os.open(values_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                values = release.values if release.render_values is None else release.render_values
                yaml.safe_dump(values, handle, sort_keys=False)
            argv = [self.helm, "template", release.name, str(chart), "--values", str(values_file)]
            if release.namespace:
                argv += ["--namespace", release.namespace]
            done = self._run([*argv, *self._global_flags()])
            if isinstance(done, str):
                return self._redact(done, release)
            output = done.stdout
            if release.post_render:
                patched = _post_render(output, release.post_render, Path(tmp))
                if isinstance(patched, str):
                    return self._redact(patched, release)
                output = patched
        return self._objects(output, release)

    def prefetch(self, sources: Sequence[ChartSource]) -> None:
        """Pull every remote chart once, a few at a time: pulls wait on the network (offline,
        on a refused connection or a DNS failure), not on this machine."""
        if self.helm is None:
            return
        unique = list(
            {(s.url, s.chart, s.version): s for s in sources if s.kind in ("oci", "repo")}.values()
        )
        if len(unique) > 1:
            with ThreadPoolExecutor(max_workers=PULL_WORKERS) as pool:
                list(pool.map(self._chart, unique))

    def _chart(self, source: ChartSource) -> Path | str:
        """A local chart (folder or .tgz) for the source: pulled once, kept in the cache."""
        if source.kind == "local":
            return Path(source.url)
        key = (source.url, source.chart, source.version)
        if key in self.failed:
            return self.failed[key]
        if key in self.pulled:
            return self.pulled[key]
        digest = hashlib.sha256(repr(key).encode()).hexdigest()[:32]
        folder = self.charts / digest
        cached = sorted(folder.glob("*.tgz")) if folder.is_dir() else []
        if cached and source.version:
            return cached[0]
        argv: list[str] = [str(self.helm), "pull"]
        if source.kind == "oci":
            argv.append(source.url)
        else:
            argv += [source.chart, "--repo", source.url]
        if source.version:
            argv += ["--version", source.version]
        partial = Path(tempfile.mkdtemp(prefix="pull-", dir=self._ensure(self.charts)))
        done = self._run([*argv, "--destination", str(partial), *self._global_flags()])
        if isinstance(done, str):
            shutil.rmtree(partial, ignore_errors=True)
            offline = any(word in done for word in ("dial tcp", "no such host", "lookup "))
            if offline:
                reason = f"chart not reachable offline: {source.describe()}"
            else:
                reason = f"chart not fetched: {source.describe()} ({done})"
            self.failed[key] = reason
            return reason
        shutil.rmtree(folder, ignore_errors=True)
        try:
            partial.replace(folder)
        except OSError:  # another audit cached it meanwhile: use this run's copy
            folder = partial
        found = sorted(folder.glob("*.tgz"))
        if not found:
            return f"helm pull left no chart for {source.describe()}"
        self.pulled[key] = found[0]
        return found[0]

    @staticmethod
    def _ensure(directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    def _run(self, argv: list[str]) -> subprocess.CompletedProcess[bytes] | str:
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                timeout=HELM_TIMEOUT_S,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            return f"helm did not finish in {HELM_TIMEOUT_S:.0f} s"
        except OSError as err:
            return f"cannot run helm: {err.strerror or err}"
        if done.returncode != 0:
            return _first_line(done.stderr)
        return done

    def _redact(self, message: str, release: Release) -> str:
        for secret in release.secret_strings:
            message = message.replace(secret, "***")
        return f"helm template failed: {message}"

    def _objects(self, output: bytes, release: Release) -> list[Resource] | str:
        origin = release.resource.origin
        try:
            docs = parse_documents(output, f"{release.what} (helm template)")
        except ReadError as err:
            return f"helm output not readable: {err.reason}"
        out: list[Resource] = []
        for doc in docs:
            body = doc.data
            if not isinstance(body, dict) or not isinstance(body.get("kind"), str):
                continue
            metadata = body.setdefault("metadata", {})
            if (
                isinstance(metadata, dict)
                and release.namespace
                and body["kind"] not in CLUSTER_SCOPED
            ):
                metadata.setdefault("namespace", release.namespace)
            out.append(
                Resource(body, replace(origin, helm_release=release.what, source_mapped=False))
            )
        return out


def _first_line(stderr: bytes) -> str:
    """helm's error line (`Error: …`), not the log lines (`level=INFO msg=…`) before it."""
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines()]
    lines = [line for line in lines if line and not line.startswith(("level=", "WARNING:"))]
    errors = [line for line in lines if line.startswith("Error:")]
    text = (errors or lines or ["no error output"])[0].removeprefix("Error: ")
    return text if len(text) <= 300 else text[:300] + " …"


def _post_render(output: bytes, patches: list[dict[str, Any]], tmp: Path) -> bytes | str:
    """Flux `postRenderers[].kustomize`: patches applied to the rendered objects by kustomize."""
    from statekeeper.manifests.kustomize import first_error, kustomize_command

    command = kustomize_command()
    if command is None:
        return "postRenderers need kustomize (or kubectl) on PATH"
    current = output
    for index, item in enumerate(patches):
        folder = tmp / f"post-render-{index}"
        folder.mkdir()
        (folder / "helm-output.yaml").write_bytes(current)
        kustomization: dict[str, Any] = {"resources": ["helm-output.yaml"]}
        for key in ("patches", "patchesStrategicMerge", "patchesJson6902", "images"):
            if item.get(key):
                kustomization[key] = item[key]
        (folder / "kustomization.yaml").write_text(yaml.safe_dump(kustomization), "utf-8")
        try:
            done = subprocess.run(
                [*command, str(folder)], capture_output=True, timeout=HELM_TIMEOUT_S, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            return f"postRenderers: {err}"
        if done.returncode != 0:
            return f"postRenderers: {first_error(done.stderr)}"
        current = done.stdout
    return current
