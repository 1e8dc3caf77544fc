"""Where each object of a rendered overlay is written in the source tree.

The audit judges rendered overlays; a fix has to edit the files they are built from. This index
reads every YAML file below the fixed directory once (libyaml), follows each
`overlays/<env>/kustomization.yaml` through its `resources`/`components`, and answers: which
source document defines PersistentVolumeClaim `x` as seen in environment `production`, which
overlays include that file, and what can't be edited (remote bases, Helm charts and values).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from statekeeper.errors import InputError
from statekeeper.generate.strategy import Strategy
from statekeeper.policy.model import Environment

if TYPE_CHECKING:
    from statekeeper.manifests.environments import EnvironmentMap

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(slots=True)
class SourceDoc:
    """One Kubernetes object as written in a source file."""

    file: Path
    index: int
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", ""))

    @property
    def name(self) -> str:
        meta = self.body.get("metadata")
        return str(meta.get("name", "")) if isinstance(meta, dict) else ""

    @property
    def namespace(self) -> str | None:
        meta = self.body.get("metadata")
        ns = meta.get("namespace") if isinstance(meta, dict) else None
        return str(ns) if ns else None


@dataclass(slots=True)
class Kustomization:
    """A kustomization file and what it pulls in."""

    file: Path
    data: dict[str, Any]
    resource_files: list[Path] = field(default_factory=list)
    children: list[Path] = field(default_factory=list)  # directories with a kustomization
    remote: list[str] = field(default_factory=list)
    patch_files: list[Path] = field(default_factory=list)

    @property
    def dir(self) -> Path:
        return self.file.parent

    @property
    def namespace(self) -> str | None:
        ns = self.data.get("namespace")
        return str(ns) if ns else None

    @property
    def helm_charts(self) -> list[dict[str, Any]]:
        charts = self.data.get("helmCharts")
        return [c for c in charts if isinstance(c, dict)] if isinstance(charts, list) else []


@dataclass(frozen=True, slots=True)
class Overlay:
    """`overlays/<name>/` and the environment its name stands for."""

    dir: Path
    environment: Environment


@dataclass(frozen=True, slots=True)
class Placement:
    """A source document as it appears in one overlay: its effective namespace there."""

    doc: SourceDoc
    namespace: str | None


def _is_remote(entry: str) -> bool:
    return (
        "://" in entry
        or entry.startswith(("github.com/", "git@", "gitlab.com/"))
        or ("?ref=" in entry)
    )


def find_kustomization(directory: Path) -> Path | None:
    for name in KUSTOMIZATION_NAMES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


@dataclass(slots=True)
class SourceIndex:
    """Every Kubernetes document and kustomization below `root`."""

    root: Path
    strategy: Strategy
    docs: dict[Path, list[SourceDoc]] = field(default_factory=dict)
    other_yaml: dict[Path, Any] = field(default_factory=dict)  # YAML that is not Kubernetes
    kustomizations: dict[Path, Kustomization] = field(default_factory=dict)  # by directory
    overlays: list[Overlay] = field(default_factory=list)
    _namespaces: dict[tuple[Path, int], set[str | None]] = field(default_factory=dict)

    @classmethod
    def build(cls, root: Path, strategy: Strategy) -> SourceIndex:
        root = root.resolve()
        index = cls(root=root, strategy=strategy)
        for path in _yaml_files(root):
            index._read(path)
        for kdir in list(index.kustomizations):
            index._resolve(index.kustomizations[kdir])
        index.overlays = index._roots()
        return index

    def _roots(self) -> list[Overlay]:
        """The kustomization roots (as the audit renders them) whose environment is known:
        `overlays/<env>`, `<app>/<env>`, `clusters/<env>/…`, the policy's path globs."""
        from statekeeper.manifests.kustomize import Graph

        env_map = self._environment_map()
        graph = Graph.build(self.kustomizations)
        base = self.root if self.root.is_dir() else self.root.parent
        overlays: dict[Path, Overlay] = {}
        for root in sorted(graph.roots()):
            root = root.resolve()
            name = env_map.of_root(root, base, graph.closure(root).directories)
            if name is None and root.parent.name == "overlays":
                name = root.name
            if name is None or root not in self.kustomizations:
                continue
            try:
                overlays[root] = Overlay(root, self.strategy.environment(name))
            except InputError:
                continue
        return list(overlays.values())

    def _read(self, path: Path) -> None:
        try:
            docs = list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=_LOADER))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            return  # the audit reports unreadable files; fix only edits what it can read
        if path.name in KUSTOMIZATION_NAMES:
            data = docs[0] if docs and isinstance(docs[0], dict) else {}
            self.kustomizations[path.parent] = Kustomization(file=path, data=data)
            return
        kube = [
            SourceDoc(path, i, d)
            for i, d in enumerate(docs)
            if isinstance(d, dict) and "kind" in d and "apiVersion" in d
        ]
        if kube:
            self.docs[path] = kube
        elif docs:
            self.other_yaml[path] = docs

    def _resolve(self, kust: Kustomization) -> None:
        entries: list[str] = []
        for key in ("resources", "components", "bases"):
            value = kust.data.get(key)
            if isinstance(value, list):
                entries += [str(v) for v in value]
        for entry in entries:
            if _is_remote(entry):
                kust.remote.append(entry)
                continue
            target = (kust.dir / entry).resolve()
            if target.is_dir():
                kust.children.append(target)
            elif target.is_file():
                kust.resource_files.append(target)
        patches = kust.data.get("patches")
        for patch in patches if isinstance(patches, list) else []:
            if isinstance(patch, dict) and isinstance(patch.get("path"), str):
                kust.patch_files.append((kust.dir / patch["path"]).resolve())
        psm = kust.data.get("patchesStrategicMerge")
        for entry in psm if isinstance(psm, list) else []:
            if isinstance(entry, str) and "\n" not in entry:
                kust.patch_files.append((kust.dir / entry).resolve())

    # --- queries --------------------------------------------------------------------------------

    def overlays_for(self, environment: str | None) -> list[Overlay]:
        if environment is None:
            return list(self.overlays)
        try:
            env = self.strategy.environment(environment)
        except InputError:
            return []
        return [o for o in self.overlays if o.environment.name == env.name]

    def placements(self, overlay_dir: Path) -> Iterator[Placement]:
        """Every local source document an overlay builds, with its effective namespace."""
        yield from self._walk(overlay_dir, None, set())

    def _walk(self, kdir: Path, outer_ns: str | None, seen: set[Path]) -> Iterator[Placement]:
        if kdir in seen or kdir not in self.kustomizations:
            return
        seen.add(kdir)
        kust = self.kustomizations[kdir]
        ns = outer_ns or kust.namespace
        for file in kust.resource_files:
            for doc in self.docs.get(file, []):
                yield Placement(doc, ns or doc.namespace)
        for child in kust.children:
            yield from self._walk(child, ns, seen)

    def chain(self, overlay_dir: Path) -> list[Kustomization]:
        """The overlay's kustomization and every local one it includes."""
        result: list[Kustomization] = []
        stack, seen = [overlay_dir], set()
        while stack:
            kdir = stack.pop()
            if kdir in seen or kdir not in self.kustomizations:
                continue
            seen.add(kdir)
            kust = self.kustomizations[kdir]
            result.append(kust)
            stack.extend(kust.children)
        return result

    def locate(
        self, kind: str, name: str, namespace: str | None, environment: str | None
    ) -> list[tuple[Overlay | None, Placement]]:
        """Where object kind/namespace/name is defined, per overlay of the environment. Files that
        no overlay includes are searched too (plain manifests)."""
        found: list[tuple[Overlay | None, Placement]] = []
        for overlay in self.overlays_for(environment):
            for placement in self.placements(overlay.dir):
                if _same(placement, kind, name, namespace):
                    found.append((overlay, placement))
        if not found:
            # Files an overlay renders are found above; a kustomization no overlay uses (a lone
            # base/) is read as plain files by the audit, so it is searched like them.
            included = {p.doc.file for o in self.overlays for p in self.placements(o.dir)}
            for file, docs in self.docs.items():
                if file in included:
                    continue
                for doc in docs:
                    placement = Placement(doc, doc.namespace)
                    if _same(placement, kind, name, namespace):
                        found.append((None, placement))
        return found

    def namespaces_of(self, doc: SourceDoc) -> set[str | None]:
        """The namespaces a document ends up in, over every overlay (empty: in no overlay)."""
        if not self._namespaces:
            for overlay in self.overlays:
                for placement in self.placements(overlay.dir):
                    key = (placement.doc.file, placement.doc.index)
                    self._namespaces.setdefault(key, set()).add(placement.namespace)
        return self._namespaces.get((doc.file, doc.index), set())

    def overlays_including(self, file: Path) -> list[Overlay]:
        return [o for o in self.overlays if any(p.doc.file == file for p in self.placements(o.dir))]

    def namespace_at_patch_time(self, overlay_dir: Path, placement: Placement) -> str | None:
        """The claim's namespace when kustomize applies `overlay_dir`'s patches: kustomize sets
        a kustomization's own `namespace:` after its patches, so only the namespace the object
        brings from below counts (a target naming the later one never matches)."""
        kust = self.kustomizations.get(overlay_dir)
        if kust is None or kust.namespace is None:
            return placement.namespace
        if placement.doc.file in kust.resource_files:
            return placement.doc.namespace
        for child in kust.children:
            for inner in self._walk(child, None, set()):
                if inner.doc is placement.doc:
                    return inner.namespace
        return placement.doc.namespace

    def environment_of(self, folder: Path) -> str | None:
        """The environment a folder's path names (`overlays/prod`, `clusters/dev/…`), if any."""
        env_map = self._environment_map()
        try:
            relative = folder.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return None
        return env_map.of_path(relative)

    def _environment_map(self) -> EnvironmentMap:
        """Folder names and path globs -> environment, as the audit reads them."""
        from statekeeper.manifests.environments import EnvironmentMap

        policy = self.strategy.policy
        return EnvironmentMap(policy.overlay_environments(), policy.environment_paths())

    def remote_bases(self, overlay_dir: Path) -> list[str]:
        return [r for k in self.chain(overlay_dir) for r in k.remote]

    def helm_charts(self, overlay_dir: Path) -> list[tuple[Kustomization, dict[str, Any]]]:
        return [(k, c) for k in self.chain(overlay_dir) for c in k.helm_charts]


def _same(placement: Placement, kind: str, name: str, namespace: str | None) -> bool:
    doc = placement.doc
    if doc.kind != kind or doc.name != name:
        return False
    return namespace is None or placement.namespace in (None, namespace)


def _yaml_files(root: Path) -> Iterator[Path]:
    if root.is_file():
        yield root
        return
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath, name)
            # Regular files only: reading a FIFO named *.yaml would block.
            if (name.endswith((".yaml", ".yml")) or name == "Kustomization") and path.is_file():
                yield path
