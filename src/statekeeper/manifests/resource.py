"""One Kubernetes object as a plain dict, plus where it came from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


class FieldLocator(Protocol):
    """Finds the line that set a field of an object read from somewhere other than its own
    document (`helm.ValuesLocator`: the Helm values line an app-template object came from)."""

    def locate(self, path: Sequence[str | int]) -> int | None: ...


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a resource was read, and what the loaders learnt on the way.

    `file` is the path as the user would recognise it (relative to the scanned root when
    possible); for a rendered overlay it is the overlay's kustomization.yaml, or the source
    file when kustomize's origin annotations make it known. `line` is 1-based: the first line
    of the document. `overlay` is the overlay directory for rendered resources and
    `environment` the environment that overlay (or `--env`) stands for, if known. The fields
    after those are provenance a loader sets (`dataclasses.replace`); None/False/() when not
    known or not applicable.
    """

    file: str
    document: int = 0
    line: int = 1
    overlay: str | None = None
    environment: str | None = None
    # The object's source directory (its source file's, or a plain file's): names the app.
    source_dir: str | None = None
    # The directory argument the object was found below: app names never come from above it.
    tree_root: str | None = None
    # A rendered object whose file/document/line are its source document's, not the overlay's.
    source_mapped: bool = False
    # kustomization files whose patches transformed the object, outermost last (kustomize's
    # transformer annotations): where `lines.patch_location` looks for a field.
    patched_in: tuple[str, ...] = ()
    # Maps a field to the Helm values line that set it, for objects interpreted from values.
    values_of: FieldLocator | None = field(default=None, compare=False)
    # The HelmRelease (or helmCharts entry) that made the object, as `helm.Release.what`.
    helm_release: str | None = None
    # The name of the Flux Kustomization whose components made the object.
    flux_kustomization: str | None = None


@dataclass(slots=True, eq=False)
class Resource:
    """A Kubernetes object (`body` is the parsed document) and its origin.

    Compared and hashed by identity: the same manifest read twice (two environments) is two
    resources, so a Resource can key a dict of facts about it (its environment, its app)."""

    body: dict[str, Any]
    origin: Origin

    @property
    def api_version(self) -> str:
        return str(self.body.get("apiVersion", ""))

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", ""))

    @property
    def metadata(self) -> dict[str, Any]:
        meta = self.body.get("metadata")
        return meta if isinstance(meta, dict) else {}

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", ""))

    @property
    def namespace(self) -> str | None:
        ns = self.metadata.get("namespace")
        return str(ns) if ns is not None else None

    @property
    def labels(self) -> dict[str, str]:
        labels = self.metadata.get("labels")
        return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}

    @property
    def annotations(self) -> dict[str, str]:
        ann = self.metadata.get("annotations")
        return {str(k): str(v) for k, v in ann.items()} if isinstance(ann, dict) else {}

    @property
    def key(self) -> tuple[str, str, str]:
        """(kind, namespace, name): identifies the object within one environment."""
        return (self.kind, self.namespace or "", self.name)


@dataclass(frozen=True, slots=True)
class InputProblem:
    """An input that could not be judged, kept for the rules that report it.

    `kind` is "build" for a kustomization root that does not build (SK002; `remote` when the
    only cause is a remote base that cannot be fetched) and "read" for a file that cannot be
    read or parsed (SK003). `file` is the kustomization file or the unreadable file; `reason`
    says what went wrong, without the file name; `line`/`column` are 1-based when known.
    """

    kind: str
    file: str
    reason: str
    line: int | None = None
    column: int | None = None
    remote: bool = False
    environment: str | None = None
