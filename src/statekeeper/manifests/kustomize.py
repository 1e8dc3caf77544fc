"""Kustomization roots: find them, render them (in parallel, cached), map objects to sources.

A *root* is a directory holding a kustomization file that no other kustomization of the tree
references (as a resource, base or component): what a GitOps tool would build and deploy.
Components (`kind: Component`) are never roots. Each root is built with `kustomize build` (or
`kubectl kustomize` when only kubectl is on PATH) through a throw-away wrapper kustomization that
adds `buildMetadata: [originAnnotations, transformerAnnotations]` — the user's files are never
edited: kustomize then writes a `config.kubernetes.io/origin` annotation naming the source file of
every object (or the kustomization whose generator made it) and an
`alpha.config.kubernetes.io/transformations` annotation naming the kustomizations whose patches
changed it (`manifests.lines.patch_location` finds the patch line from them). Both are removed
again after they have been read, so rules never see them.

A root that does not build is a `ReadError` for the caller to report (SK002); when the only cause
is a remote base that cannot be fetched (offline CI) `RenderFailure.remote` says so. A root that
fails only because kustomize wants `--enable-helm` for its `helmCharts:` is built again from a
temporary copy of what it reads with those fields removed: its other objects are audited, and its
charts are the Helm reader's (manifests/helm.py renders, interprets or names each in a note).

Renders are cached under the user cache directory, keyed by the content of every file the root
can read (its kustomization folders, bases and components included, and every file they name)
and by the kustomize binary; roots with remote bases are never cached.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from statekeeper.manifests.files import (
    KUSTOMIZATION_NAMES,
    YAML_SUFFIXES,
    kustomization_file,
    norm,
    read_file,
    relative_to_cwd,
)
from statekeeper.manifests.resource import Origin
from statekeeper.manifests.yaml import K8sLoader, ParsedDocument, ReadError, parse_documents

ORIGIN_ANNOTATION = "config.kubernetes.io/origin"
WRAPPER_METADATA = "buildMetadata: [originAnnotations, transformerAnnotations]"
TRANSFORMATIONS_ANNOTATION = "alpha.config.kubernetes.io/transformations"
_PATCHERS = frozenset(
    {"PatchTransformer", "PatchStrategicMergeTransformer", "PatchJson6902Transformer"}
)
RENDER_TIMEOUT_S = 300.0
CACHE_VERSION = "3"  # bump when the wrapper or the cached locations change
# References kustomize fetches over the network rather than reading from the tree.
_REMOTE = re.compile(r"^(?:https?://|git@|ssh://|git::|github\.com/|gitlab\.com/|bitbucket\.org/)")
_PATCH_KEYS = ("patches", "patchesStrategicMerge", "patchesJson6902")
_CHILD_KEYS = ("resources", "bases", "components")


# --------------------------------------------------------------------------- the graph


@dataclass
class Kustomization:
    """One kustomization file and what it names."""

    directory: Path
    component: bool = False
    children: list[str] = field(default_factory=list)  # normalised dirs with a kustomization
    files: set[str] = field(default_factory=set)  # normalised local files it names
    folders: set[str] = field(default_factory=set)  # named local folders without one
    patches: set[str] = field(default_factory=set)  # normalised patch files
    remote: list[str] = field(default_factory=list)  # remote resources/bases


def read_kustomization(directory: Path) -> Kustomization:
    """What the kustomization file of `directory` names. A file that cannot be read names
    nothing here: building its root reports the error."""
    try:
        data = yaml.load(read_file(kustomization_file(directory)), Loader=K8sLoader)
    except (ReadError, yaml.YAMLError, RecursionError, ValueError):
        return Kustomization(directory)
    if not isinstance(data, dict):
        return Kustomization(directory)
    files, folders = _named_paths(directory, data)
    return Kustomization(
        directory,
        component=data.get("kind") == "Component",
        children=_children(directory, data),
        files=files,
        folders=folders,
        patches=_patch_files(directory, data),
        remote=_remote_references(data),
    )


def _remote_references(data: dict[str, Any]) -> list[str]:
    """Resources, bases and components kustomize fetches over the network (a warning offline)."""
    return [
        entry
        for key in _CHILD_KEYS
        for entry in _as_list(data.get(key))
        if isinstance(entry, str) and _REMOTE.match(entry)
    ]


def _patch_files(directory: Path, data: dict[str, Any]) -> set[str]:
    """The patch files named (a string or a `path:`), so a finding can point at the patch."""
    patches: set[str] = set()
    for key in _PATCH_KEYS:
        for entry in _as_list(data.get(key)):
            ref = entry.get("path") if isinstance(entry, dict) else entry
            # An inline patch (a YAML string with a newline) names no file.
            if isinstance(ref, str) and "\n" not in ref and ref.endswith(YAML_SUFFIXES):
                patches.add(norm(directory / ref))
    return patches


def _children(directory: Path, data: dict[str, Any]) -> list[str]:
    """The local directories with a kustomization it builds on (graph edges; itself excluded)."""
    children: list[str] = []
    for key in _CHILD_KEYS:
        for entry in _as_list(data.get(key)):
            if not isinstance(entry, str) or "\0" in entry:
                continue
            path = norm(directory / entry)
            if path != norm(directory) and _has_kustomization(path):
                children.append(path)
    return children


def _named_paths(directory: Path, data: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(files, folders) named anywhere in the file: every other string may be a path
    (resources, generators' files, values files, ...). A folder counts unless it has its own
    kustomization (a child) or holds this one."""
    files: set[str] = set()
    folders: set[str] = set()
    inside = norm(directory)
    for value in _strings_in(data):
        path = _path_named(directory, value)
        if path is None:
            continue
        if os.path.isdir(path):  # noqa: PTH112 - str path
            if not (_has_kustomization(path) or inside == path or inside.startswith(path)):
                folders.add(path)
        elif os.path.isfile(path):  # noqa: PTH113
            files.add(path)
    return files, folders


def _strings_in(data: Any) -> Iterator[str]:
    """Every string inside `data`, at any depth (mapping keys excluded)."""
    stack: list[Any] = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str):
            yield value


def _path_named(directory: Path, value: str) -> str | None:
    """The normalised path a string could name (`key=path` read as its path), or None for one
    that cannot be a path: several lines, empty or huge, or holding a NUL."""
    if "\n" in value or not 0 < len(value) < 4096:
        return None
    text = value.split("=", 1)[-1] if "=" in value else value  # `files: [key=path]`
    path = norm(directory / text)
    return None if "\0" in path else path  # os.path would refuse it


def _has_kustomization(path: str) -> bool:
    return any(os.path.isfile(os.path.join(path, n)) for n in KUSTOMIZATION_NAMES)  # noqa: PTH113,PTH118


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


@dataclass
class Graph:
    """The kustomizations of a tree: roots and what each root reaches."""

    nodes: dict[str, Kustomization]

    @classmethod
    def build(cls, directories: Iterable[Path]) -> Graph:
        return cls({norm(d): read_kustomization(d) for d in sorted(directories)})

    def roots(self) -> list[Path]:
        """Directories no other kustomization references; components excluded."""
        referenced = {child for node in self.nodes.values() for child in node.children}
        return [
            node.directory
            for key, node in self.nodes.items()
            if key not in referenced and not node.component
        ]

    def components(self) -> list[Path]:
        return [n.directory for n in self.nodes.values() if n.component]

    def closure(self, root: Path) -> Reach:
        """Everything `root` reads: its kustomizations (bases, components), files, folders."""
        reach = Reach()
        stack = [norm(root)]
        while stack:
            key = stack.pop()
            if key in reach.directories:
                continue
            reach.directories.add(key)
            node = self.nodes.get(key) or read_kustomization(Path(key))
            self.nodes.setdefault(key, node)
            reach.files |= node.files
            reach.folders |= node.folders
            reach.patches |= node.patches
            reach.remote.extend(node.remote)
            stack.extend(node.children)
        return reach

    def patch_owners(self) -> dict[str, Path]:
        """Each patch file (normalised) → the directory of a kustomization listing it."""
        owners: dict[str, Path] = {}
        for node in self.nodes.values():
            for patch in sorted(node.patches):
                owners.setdefault(patch, node.directory)
        return owners

    def listed_dirs(self) -> dict[str, Path]:
        """Folders holding a kustomization (normalised → as found): their files are deployed
        only when a kustomization names them."""
        return {key: node.directory for key, node in self.nodes.items()}


@dataclass
class Reach:
    """What one root reads (normalised paths)."""

    directories: set[str] = field(default_factory=set)
    files: set[str] = field(default_factory=set)
    folders: set[str] = field(default_factory=set)
    patches: set[str] = field(default_factory=set)
    remote: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- rendering


def kustomize_command() -> list[str] | None:
    """`kustomize build` if kustomize is on PATH, else `kubectl kustomize`; None if neither."""
    kustomize = shutil.which("kustomize")
    if kustomize is not None:
        return [kustomize, "build"]
    kubectl = shutil.which("kubectl")
    if kubectl is not None:
        return [kubectl, "kustomize"]
    return None


MISSING_KUSTOMIZE = (
    "kustomize overlays found but neither `kustomize` nor `kubectl` is on PATH: "
    "install kustomize (https://kubectl.docs.kubernetes.io/installation/kustomize/) "
    "or kubectl, or use --no-render to read the YAML files as they are"
)


@dataclass(frozen=True, slots=True)
class Rendered:
    """The output of one root's build; `origin_base` is the directory that the paths in
    origin annotations are relative to."""

    root: Path
    output: bytes
    origin_base: Path
    cached: bool = False
    key: str | None = None  # its render-cache key, if it may be cached
    # From the cache: where each rendered document came from, as `locations_of` made them.
    locations: list[Any] | None = None


@dataclass(frozen=True, slots=True)
class RenderFailure:
    """A root that did not build: `error` names its kustomization file; `remote` when only a
    remote base could not be fetched."""

    root: Path
    error: ReadError
    remote: bool = False


def render_root(root: Path, command: Sequence[str], reach: Reach) -> Rendered | RenderFailure:
    """Build one root with origin annotations; fall back to a plain build."""
    with tempfile.TemporaryDirectory(prefix="statekeeper-kustomize-") as wrapper:
        target = os.path.relpath(Path(root).absolute(), wrapper)
        Path(wrapper, "kustomization.yaml").write_text(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            f"resources:\n- {_quote(target)}\n{WRAPPER_METADATA}\n",
            encoding="utf-8",
        )
        done = _run(root, [*command, wrapper])
        if isinstance(done, RenderFailure):
            return done
        if done.returncode == 0:
            return Rendered(root, done.stdout, Path(wrapper))
    # The wrapper failed: build the root itself, for its output or for an error message
    # that names the user's files rather than a temporary directory.
    done = _run(root, [*command, str(root)])
    if isinstance(done, RenderFailure):
        return done
    if done.returncode != 0 and _HELM_NEEDED in done.stderr:
        without_helm = _render_without_helm_charts(root, command, reach)
        if without_helm is not None:
            return without_helm
    if done.returncode != 0:
        message = first_error(done.stderr)
        where = relative_to_cwd(kustomization_file(root))
        full = done.stderr.decode("utf-8", "replace")
        remote = bool(reach.remote) and _is_fetch_error(full, reach.remote)
        if remote:
            reason = f"remote base cannot be fetched (offline?), not audited: {message}"
        else:
            reason = f"kustomize build failed: {message}"
        return RenderFailure(root, ReadError(where, reason), remote)
    # Origin annotations, if the root asks for them itself, are relative to the root.
    return Rendered(root, done.stdout, root)


# kustomize's refusal to inflate `helmCharts:` without --enable-helm.
_HELM_NEEDED = b"must specify --enable-helm"
_HELM_KEYS = ("helmCharts", "helmGlobals", "helmChartInflationGenerator")
_MIRROR_WRAPPER = ".statekeeper-wrapper"


def _render_without_helm_charts(
    root: Path, command: Sequence[str], reach: Reach
) -> Rendered | None:
    """Build a copy of everything `root` reads with the `helmCharts:` fields removed, so the
    root's other objects are audited; its charts are the Helm reader's (manifests/helm.py:
    rendered, interpreted as app-template or named in a note). None when that build fails
    too: the caller then reports the root's own error."""
    local = [*reach.directories, *reach.files, *reach.folders]
    if not local:
        return None
    top = Path(os.path.commonpath(local))
    if not top.name or top.name == _MIRROR_WRAPPER:
        return None
    # <tmp>/<top's name> mirrors `top`; the wrapper is its sibling, as it would be beside `top`
    with tempfile.TemporaryDirectory(prefix="statekeeper-kustomize-") as tmp:
        mirror = Path(tmp, top.name)
        try:
            for folder in reach.folders:
                shutil.copytree(folder, mirror / os.path.relpath(folder, top))
            for file in reach.files:
                target = mirror / os.path.relpath(file, top)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(file, target)
            for directory in reach.directories:
                source = kustomization_file(Path(directory))
                data = yaml.load(read_file(source), Loader=K8sLoader)
                if isinstance(data, dict):
                    for key in _HELM_KEYS:
                        data.pop(key, None)
                target = mirror / os.path.relpath(source, top)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(yaml.safe_dump(data), encoding="utf-8")
        except (OSError, ReadError, yaml.YAMLError, ValueError, shutil.Error):
            return None
        wrapper = Path(tmp, _MIRROR_WRAPPER)
        wrapper.mkdir()
        target_dir = os.path.relpath(mirror / os.path.relpath(root, top), wrapper)
        (wrapper / "kustomization.yaml").write_text(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            f"resources:\n- {_quote(target_dir)}\n{WRAPPER_METADATA}\n",
            encoding="utf-8",
        )
        done = _run(root, [*command, str(wrapper)])
        if isinstance(done, RenderFailure) or done.returncode != 0:
            return None
    # origin paths are relative to the wrapper: the same place beside the user's `top`
    return Rendered(root, done.stdout, top.parent / _MIRROR_WRAPPER)


def _is_fetch_error(message: str, remote: Sequence[str]) -> bool:
    text = message.lower()
    return any(ref.lower() in text for ref in remote) or any(
        word in text
        for word in ("git clone", "git fetch", "no such host", "dial tcp", "git ", "connect to")
    )


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _run(root: Path, argv: list[str]) -> subprocess.CompletedProcess[bytes] | RenderFailure:
    where = relative_to_cwd(kustomization_file(root))
    try:
        return subprocess.run(
            argv,
            capture_output=True,
            timeout=RENDER_TIMEOUT_S,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        reason = f"kustomize build did not finish in {RENDER_TIMEOUT_S:.0f} s"
        return RenderFailure(root, ReadError(where, reason))
    except OSError as err:
        return RenderFailure(root, ReadError(where, f"cannot run {argv[0]}: {err}"))


# kubectl may log its error as `E1127 08:05:18.848314  8403 run.go:72] "command failed" err="…"`.
_KLOG_PREFIX = re.compile(r"^[EWIF]\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+ \S+\] ")
_KLOG_ERR = re.compile(r'^"command failed" err=("(?:[^"\\]|\\.)*")')


def first_error(stderr: bytes) -> str:
    """The first meaningful line(s) of kustomize's stderr, without its `Error:` prefix."""
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines()]
    lines = [line for line in lines if line and not line.startswith(("Usage:", "Examples:"))]
    if not lines:
        return "no error output"
    first = _KLOG_PREFIX.sub("", lines[0])
    if (quoted := _KLOG_ERR.match(first)) is not None:  # kubectl's klog form: err="..."
        try:
            first = json.loads(quoted.group(1))
        except ValueError:
            first = quoted.group(1)
    for prefix in ("Error: ", "error: "):
        first = first.removeprefix(prefix)
    if len(lines) > 1 and len(first) < 80:
        first = f"{first} {lines[1]}"
    first = " ".join(first.split())
    # kustomize chains causes on one line; the end holds the actual cause.
    return first if len(first) <= 300 else f"{first[:100]} … {first[-180:]}"


def render_roots(
    roots: Sequence[tuple[Path, Reach]],
    command: Sequence[str],
    *,
    max_workers: int | None,
    cache: RenderCache | None,
    on_done: Callable[[], None] | None = None,
) -> list[Rendered | RenderFailure]:
    """Render every root (in parallel, from the cache when it can), in the order given."""

    def one(item: tuple[Path, Reach]) -> Rendered | RenderFailure:
        root, reach = item
        key = cache.key(root, reach) if cache is not None else None
        hit = cache.get(root, key) if cache is not None and key is not None else None
        found: Rendered | RenderFailure = hit or render_root(root, command, reach)
        if hit is None and key is not None and isinstance(found, Rendered):
            found = dataclasses.replace(found, key=key)  # the caller caches it once mapped
        if on_done is not None:
            on_done()
        return found

    workers = max(1, min(max_workers or os.cpu_count() or 2, len(roots), 8))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kustomize") as pool:
        return list(pool.map(one, roots))


# --------------------------------------------------------------------------- render cache


def default_cache_dir() -> Path:
    """`$STATEKEEPER_CACHE_DIR`, else `$XDG_CACHE_HOME/statekeeper`, else ~/.cache/statekeeper."""
    explicit = os.environ.get("STATEKEEPER_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "statekeeper"


class RenderCache:
    """Rendered output by content hash; a file per entry, written atomically."""

    def __init__(self, directory: Path, command: Sequence[str], max_file_bytes: int) -> None:
        self.directory = directory / "render"
        self._max_bytes = max_file_bytes
        self._digests: dict[str, str] = {}
        binary = Path(command[0])
        try:
            info = binary.stat()
            tool = f"{binary}:{info.st_size}:{info.st_mtime_ns}"
        except OSError:
            tool = str(binary)
        self._salt = f"{CACHE_VERSION}\0{WRAPPER_METADATA}\0{' '.join(command)}\0{tool}"

    def key(self, root: Path, reach: Reach) -> str | None:
        """The content hash of everything `root` reads; None for roots with remote bases."""
        if reach.remote:
            return None
        files: set[str] = set(reach.files) | reach.patches
        for folder in reach.directories:
            files.update(_files_in(folder, recursive=False))
        for folder in reach.folders:
            files.update(_files_in(folder, recursive=True))
        digest = hashlib.sha256(self._salt.encode())
        digest.update(norm(root).encode())
        for path in sorted(files):
            digest.update(b"\0" + path.encode() + b"\0" + self._digest(path).encode())
        return digest.hexdigest()

    def _digest(self, path: str) -> str:
        if path not in self._digests:
            try:
                data = read_file(Path(path), self._max_bytes)
                self._digests[path] = hashlib.sha256(data).hexdigest()
            except ReadError:
                self._digests[path] = "unreadable"
        return self._digests[path]

    def get(self, root: Path, key: str) -> Rendered | None:
        try:
            data = (self.directory / key[:2] / key).read_bytes()
        except OSError:
            return None
        header, _, output = data.partition(b"\n")
        try:
            meta = json.loads(header)
            base, locations = meta["origin_base"], meta["locations"]
        except (ValueError, KeyError, TypeError):
            return None
        return Rendered(root, output, Path(base), cached=True, key=key, locations=locations)

    def put(self, key: str, item: Rendered, locations: list[Any]) -> None:
        """Keep a root's output and where its documents came from (JSON-able)."""
        folder = self.directory / key[:2]
        try:
            folder.mkdir(parents=True, exist_ok=True)
            meta = {"origin_base": str(item.origin_base), "locations": locations}
            header = json.dumps(meta, separators=(",", ":")).encode()
            fd, temp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
            with os.fdopen(fd, "wb") as handle:
                handle.write(header + b"\n" + item.output)
            Path(temp).replace(folder / key)
        except OSError:
            return  # a cache that cannot be written only costs speed


def _files_in(folder: str, *, recursive: bool) -> list[str]:
    found: list[str] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return found
    for entry in entries:
        try:
            if entry.is_file():
                found.append(norm(entry.path))
            elif recursive and entry.is_dir(follow_symlinks=False):
                found.extend(_files_in(entry.path, recursive=True))
        except OSError:
            continue
    return found


# --------------------------------------------------------------------------- origins


# Cluster-scoped kinds a GitOps repo holds (Flux's targetNamespace leaves them alone).
_CLUSTER_SCOPED = frozenset(
    {
        "Namespace", "StorageClass", "PersistentVolume", "CustomResourceDefinition",
        "PriorityClass", "IngressClass", "RuntimeClass", "CSIDriver", "VolumeSnapshotClass",
        "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "APIService",
        "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "Node",
    }
)  # fmt: skip


def is_namespaced(body: dict[str, Any]) -> bool:
    """Whether an object lives in a namespace (kinds named `Cluster…` are cluster-wide)."""
    kind = str(body.get("kind", ""))
    return kind not in _CLUSTER_SCOPED and not kind.startswith("Cluster")


def _pop_annotation(body: dict[str, Any], key: str) -> Any:
    """Remove the annotation `key` (kustomize's build metadata) from `body`; its YAML value
    parsed, or None when absent or unreadable."""
    metadata = body.get("metadata")
    if not isinstance(metadata, dict):
        return None
    annotations = metadata.get("annotations")
    if not isinstance(annotations, dict) or key not in annotations:
        return None
    text = annotations.pop(key)
    if not annotations:
        del metadata["annotations"]
    try:
        return yaml.load(str(text), Loader=K8sLoader)
    except yaml.YAMLError:
        return None


def pop_origin(body: dict[str, Any]) -> dict[str, Any] | None:
    """Remove kustomize's origin annotation from `body` and return it parsed."""
    parsed = _pop_annotation(body, ORIGIN_ANNOTATION)
    return parsed if isinstance(parsed, dict) else None


def pop_patched_in(body: dict[str, Any], base: Path) -> list[str]:
    """Remove kustomize's transformations annotation from `body`; return the kustomization
    files (relative to the working directory) whose patches changed the object."""
    parsed = _pop_annotation(body, TRANSFORMATIONS_ANNOTATION)
    found: list[str] = []
    for entry in parsed if isinstance(parsed, list) else []:
        if not isinstance(entry, dict) or entry.get("repo"):
            continue
        by = entry.get("configuredBy")
        where = entry.get("configuredIn")
        if isinstance(by, dict) and by.get("kind") in _PATCHERS and isinstance(where, str):
            file = relative_to_cwd(os.path.normpath(base / where))
            if file not in found:
                found.append(file)
    return found


class SourceMapper:
    """Finds the document in a source file that a rendered object came from (files cached)."""

    def __init__(self, max_file_bytes: int) -> None:
        self._max_bytes = max_file_bytes
        self._docs: dict[Path, list[ParsedDocument] | None] = {}

    def locate(
        self, body: dict[str, Any], where: dict[str, Any], base: Path, fallback: Origin
    ) -> Origin:
        """The source document of a rendered object from kustomize's origin annotation
        (`where`), with its source directory; `fallback` (as given: not source-mapped) when
        there is no local file to point at."""
        if where.get("repo"):  # a remote base: no local file to point at
            return fallback
        path_text = where.get("path")
        generated = path_text is None
        path_text = path_text if path_text is not None else where.get("configuredIn")
        if not isinstance(path_text, str):
            return fallback
        source = Path(os.path.normpath(base / path_text))
        file = relative_to_cwd(source)
        source_dir = relative_to_cwd(source.parent)
        doc = None if generated else self._match(source, body)
        if doc is None:  # a generator's object (the kustomization) or not found: the file only
            return Origin(file, 0, 1, fallback.overlay, fallback.environment, source_dir)
        return Origin(
            file,
            doc.index,
            doc.line,
            fallback.overlay,
            fallback.environment,
            source_dir,
            source_mapped=True,
        )

    def _match(self, source: Path, body: dict[str, Any]) -> ParsedDocument | None:
        docs = self._parsed(source)
        if not docs:
            return None
        kind = body.get("kind")
        name = str((body.get("metadata") or {}).get("name", ""))
        same_kind = [d for d in docs if isinstance(d.data, dict) and d.data.get("kind") == kind]
        names = [(d, str((d.data.get("metadata") or {}).get("name", ""))) for d in same_kind]
        for doc, source_name in names:
            if source_name == name:
                return doc
        # namePrefix / nameSuffix: the longest source name contained in the rendered one.
        contained = [(len(n), d) for d, n in names if n and n in name]
        if contained:
            return max(contained, key=lambda pair: pair[0])[1]
        return same_kind[0] if len(same_kind) == 1 else None

    def _parsed(self, source: Path) -> list[ParsedDocument] | None:
        if source not in self._docs:
            try:
                self._docs[source] = parse_documents(
                    read_file(source, self._max_bytes), relative_to_cwd(source)
                )
            except ReadError:
                self._docs[source] = None  # kustomize read it; we just cannot point inside it
        return self._docs[source]


def under_any(path: str, folders: Collection[str]) -> bool:
    return any(path == folder or path.startswith(folder + os.sep) for folder in folders)
