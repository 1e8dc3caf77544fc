"""Render kustomize overlays and map each rendered object back to the file that defined it.

An overlay is a directory `overlays/<name>/` holding a kustomization file. Each is built with
`kustomize build` (or `kubectl kustomize` when only kubectl is on PATH), in parallel threads,
through a throw-away wrapper kustomization that adds `buildMetadata: [originAnnotations]`:
kustomize then writes a `config.kubernetes.io/origin` annotation naming the source file of
every object (or the kustomization whose generator made it). The annotation is removed again
after it has been read, so rules never see it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from statekeeper.errors import InputError
from statekeeper.manifests.load import (
    KUSTOMIZATION_NAMES,
    K8sLoader,
    LoadResult,
    ParsedDocument,
    parse_documents,
    read_file,
    relative_to_cwd,
)
from statekeeper.manifests.resource import Origin, Resource

ORIGIN_ANNOTATION = "config.kubernetes.io/origin"
OVERLAYS_DIR = "overlays"
RENDER_TIMEOUT_S = 300.0


def overlay_dirs(kustomize_dirs: Iterable[Path]) -> list[Path]:
    """The kustomize directories that are overlays (`.../overlays/<name>/`), sorted."""
    return sorted(d for d in kustomize_dirs if d.parent.name == OVERLAYS_DIR)


def files_outside_rendered_trees(
    files: Sequence[Path], kustomize_dirs: Collection[Path], overlays: Sequence[Path]
) -> list[Path]:
    """The YAML files that rendering the overlays does not stand for, to be read as they are.

    A file is left to kustomize when it lies below the root of an overlay's tree (the
    directory holding `overlays/`) and a kustomization file there names it (as a resource,
    patch, generator input, values file, ...). Every other file is read as it is: files
    outside kustomize trees, and files no kustomization mentions (e.g. a Helm values file
    kept next to the manifests).
    """
    roots = {_norm(overlay.parent.parent) for overlay in overlays}
    if not roots:
        return list(files)
    referenced: set[str] = set()
    for directory in kustomize_dirs:
        if _under_any(_norm(directory), roots):
            referenced |= _referenced_paths(directory)
    return [f for f in files if not (_under_any(_norm(f), roots) and _norm(f) in referenced)]


def _norm(path: Path) -> str:
    return os.path.normpath(os.path.abspath(path))  # noqa: PTH100 - normalise, keep links


def _under_any(path: str, roots: Collection[str]) -> bool:
    return any(path == root or path.startswith(root + os.sep) for root in roots)


def _referenced_paths(directory: Path) -> set[str]:
    """Every string in the directory's kustomization file, read as a path relative to it."""
    try:
        data = yaml.load(_kustomization_file(directory).read_bytes(), Loader=K8sLoader)
    except (OSError, yaml.YAMLError, RecursionError):
        return set()  # kustomize itself reports a broken kustomization when it builds it
    found: set[str] = set()
    stack: list[Any] = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if "\n" not in value and len(value) < 4096:
                found.add(_norm(directory / value))
        elif isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return found


def kustomize_command() -> list[str]:
    """`kustomize build` if kustomize is on PATH, else `kubectl kustomize`."""
    kustomize = shutil.which("kustomize")
    if kustomize is not None:
        return [kustomize, "build"]
    kubectl = shutil.which("kubectl")
    if kubectl is not None:
        return [kubectl, "kustomize"]
    raise InputError(
        "kustomize overlays found but neither `kustomize` nor `kubectl` is on PATH: "
        "install kustomize (https://kubectl.docs.kubernetes.io/installation/kustomize/) "
        "or kubectl, or use --no-render to read the YAML files as they are"
    )


@dataclass(frozen=True, slots=True)
class Rendered:
    """The output of one overlay's build; `origin_base` is the directory that the paths in
    origin annotations are relative to."""

    overlay: Path
    output: bytes
    origin_base: Path


def render_overlay(overlay: Path, command: Sequence[str]) -> Rendered:
    """Build one overlay with origin annotations; fall back to a plain build."""
    with tempfile.TemporaryDirectory(prefix="statekeeper-kustomize-") as wrapper:
        target = os.path.relpath(Path(overlay).absolute(), wrapper)
        Path(wrapper, "kustomization.yaml").write_text(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            f"resources:\n- {_quote(target)}\nbuildMetadata: [originAnnotations]\n",
            encoding="utf-8",
        )
        done = _run(overlay, [*command, wrapper])
        if done.returncode == 0:
            return Rendered(overlay, done.stdout, Path(wrapper))
    # The wrapper failed: build the overlay itself, for its output or for an error message
    # that names the user's files rather than a temporary directory.
    done = _run(overlay, [*command, str(overlay)])
    if done.returncode != 0:
        raise InputError(
            f"{relative_to_cwd(overlay)}: kustomize build failed: {_first_error(done.stderr)}"
        )
    # Origin annotations, if the overlay asks for them itself, are relative to the overlay.
    return Rendered(overlay, done.stdout, overlay)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _run(overlay: Path, argv: list[str]) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            argv,
            capture_output=True,
            timeout=RENDER_TIMEOUT_S,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise InputError(
            f"{relative_to_cwd(overlay)}: kustomize build did not finish "
            f"in {RENDER_TIMEOUT_S:.0f} s"
        ) from None
    except OSError as err:
        raise InputError(f"{relative_to_cwd(overlay)}: cannot run {argv[0]}: {err}") from None


# kubectl may log its error as `E1127 08:05:18.848314  8403 run.go:72] "command failed" err="…"`.
_KLOG_PREFIX = re.compile(r"^[EWIF]\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+ \S+\] ")
_KLOG_ERR = re.compile(r'^"command failed" err=("(?:[^"\\]|\\.)*")')


def _first_error(stderr: bytes) -> str:
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
    # kustomize chains causes on one line; the end holds the actual cause.
    return first if len(first) <= 400 else f"{first[:150]} … {first[-240:]}"


def render_overlays(
    result: LoadResult,
    overlays: Sequence[Path],
    *,
    env: str | None,
    overlay_envs: Mapping[str, str],
    max_workers: int | None,
    max_file_bytes: int,
) -> None:
    """Render every overlay (in parallel) and add its objects to `result`, in overlay order."""
    command = kustomize_command()
    workers = max(1, min(max_workers or os.cpu_count() or 2, len(overlays), 8))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kustomize") as pool:
        rendered = list(pool.map(lambda overlay: render_overlay(overlay, command), overlays))
    mapper = _SourceMapper(max_file_bytes)
    for item in rendered:
        environment = env if env is not None else overlay_envs.get(item.overlay.name)
        _add_rendered(result, item, environment, mapper)


def _kustomization_file(overlay: Path) -> Path:
    for name in KUSTOMIZATION_NAMES:
        if (overlay / name).is_file():
            return overlay / name
    return overlay / KUSTOMIZATION_NAMES[0]


def _add_rendered(
    result: LoadResult, item: Rendered, environment: str | None, mapper: _SourceMapper
) -> None:
    overlay_name = relative_to_cwd(item.overlay)
    fallback_file = relative_to_cwd(_kustomization_file(item.overlay))
    result.sources.append(overlay_name)
    docs = parse_documents(item.output, f"{overlay_name} (rendered)")
    for doc in docs:
        body = doc.data
        if not isinstance(body, dict):
            continue  # kustomize only writes objects; nothing else to report
        where = _pop_origin(body)
        origin = Origin(fallback_file, doc.index, 1, overlay_name, environment)
        extras: dict[str, Any] = {"source_mapped": False}
        if where is not None:
            origin, extras = mapper.locate(body, where, item.origin_base, origin)
        target = result.resources
        if not (isinstance(body.get("apiVersion"), str) and isinstance(body.get("kind"), str)):
            target = result.other
        target.append(Resource(body, origin, extras))


def _pop_origin(body: dict[str, Any]) -> dict[str, Any] | None:
    """Remove kustomize's origin annotation from `body` and return it parsed."""
    metadata = body.get("metadata")
    if not isinstance(metadata, dict):
        return None
    annotations = metadata.get("annotations")
    if not isinstance(annotations, dict) or ORIGIN_ANNOTATION not in annotations:
        return None
    text = annotations.pop(ORIGIN_ANNOTATION)
    if not annotations:
        del metadata["annotations"]
    try:
        parsed = yaml.load(str(text), Loader=K8sLoader)
    except yaml.YAMLError:
        return None
    return parsed if isinstance(parsed, dict) else None


class _SourceMapper:
    """Finds the document in a source file that a rendered object came from (files cached)."""

    def __init__(self, max_file_bytes: int) -> None:
        self._max_bytes = max_file_bytes
        self._docs: dict[Path, list[ParsedDocument] | None] = {}

    def locate(
        self, body: dict[str, Any], where: dict[str, Any], base: Path, fallback: Origin
    ) -> tuple[Origin, dict[str, Any]]:
        if where.get("repo"):  # a remote base: no local file to point at
            return fallback, {"source_mapped": False}
        path_text = where.get("path")
        generated = path_text is None
        path_text = path_text if path_text is not None else where.get("configuredIn")
        if not isinstance(path_text, str):
            return fallback, {"source_mapped": False}
        source = Path(os.path.normpath(base / path_text))
        file = relative_to_cwd(source)
        extras: dict[str, Any] = {"source_dir": relative_to_cwd(source.parent)}
        if generated:  # made by a generator in this kustomization: point at the kustomization
            extras["source_mapped"] = False
            return Origin(file, 0, 1, fallback.overlay, fallback.environment), extras
        doc = self._match(source, body)
        if doc is None:
            extras["source_mapped"] = False
            return Origin(file, 0, 1, fallback.overlay, fallback.environment), extras
        extras["source_mapped"] = True
        return Origin(file, doc.index, doc.line, fallback.overlay, fallback.environment), extras

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
            except InputError:
                self._docs[source] = None  # kustomize read it; we just cannot point inside it
        return self._docs[source]
