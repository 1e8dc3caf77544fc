"""Which environment a kustomization root stands for, from the repository's own layout.

In order: the policy's `environments.<name>.paths` globs; the path itself (`overlays/<env>`,
`clusters/<env>`, `environments/<env>`, `<app>/<env>`, any folder named after an environment,
the deepest first); the Argo CD Applications (`spec.source.path`) and Flux Kustomizations
(`spec.path`) of the repository that deploy the folder, judged by their own path. Names are the
policy's environment names and aliases (`prod` → production); anything else is unknown (None).
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from statekeeper.manifests.files import norm, read_file
from statekeeper.manifests.yaml import ReadError, parse_documents

# Folders whose child folder names an environment.
_ENV_PARENTS = frozenset({"overlays", "clusters", "cluster", "environments", "envs", "env"})
_TEST_SUITES = frozenset({"test", "tests", "testing"})
# Kinds that deploy a folder of the repository, and where they name it.
_DEPLOYERS = (b"kustomize.toolkit.fluxcd.io", b"argoproj.io")

__all__ = ["Deployment", "EnvironmentMap", "deployed_paths"]


@lru_cache(maxsize=256)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A path glob: `**` any number of folders, `*` and `?` within one folder."""
    out = []
    i = 0
    text = pattern.strip("/")
    while i < len(text):
        if text.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif text.startswith("**", i):
            out.append(".*")
            i += 2
        elif text[i] == "*":
            out.append("[^/]*")
            i += 1
        elif text[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(text[i]))
            i += 1
    # A pattern naming a folder also covers what is below it.
    return re.compile("".join(out) + "(?:/.*)?$")


class EnvironmentMap:
    """Environment of a folder: see the module docstring for the order."""

    def __init__(
        self,
        aliases: Mapping[str, str],
        path_globs: Mapping[str, Sequence[str]] | None = None,
        deployed: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self._aliases = {k.lower(): v for k, v in aliases.items()}
        self._globs = [
            (env, _glob_regex(p)) for env, patterns in (path_globs or {}).items() for p in patterns
        ]
        # normalised folder -> environments of the deployers naming it
        self._deployed = {k: sorted(set(v)) for k, v in (deployed or {}).items()}

    @classmethod
    def with_deployed(
        cls, base: EnvironmentMap, deployed: Mapping[str, Sequence[str]]
    ) -> EnvironmentMap:
        """`base` plus the folders that deployers in the repository name."""
        copy = cls({})
        copy._aliases = base._aliases
        copy._globs = base._globs
        copy._deployed = {k: sorted(set(v)) for k, v in deployed.items()}
        return copy

    def _of_folder(self, folder: str, base: Path) -> str | None:
        """By the path below the audited directory; for the audited directory itself (`audit
        overlays/prod`) or a folder outside it, by its whole path."""
        relative = os.path.relpath(folder, norm(base))
        outside = relative == "." or relative.startswith("..")
        return self.of_path(folder if outside else relative)

    def alias(self, name: str) -> str | None:
        return self._aliases.get(name.lower())

    def of_path(self, relative: str) -> str | None:
        """The environment a relative (posix) path stands for by globs and folder names."""
        relative = relative.replace(os.sep, "/").strip("/")
        for env, regex in self._globs:
            if regex.match(relative):
                return env
        parts = [p for p in relative.split("/") if p not in ("", ".")]
        for parent, child in itertools.pairwise(parts):
            if parent.lower() in _ENV_PARENTS and (named := self.alias(child)) is not None:
                return named
        for part in reversed(parts):
            if part.lower() in _TEST_SUITES:
                continue  # `test/` at large holds test suites, not the test environment
            if (named := self.alias(part)) is not None:
                return named
        return None

    def of_root(self, root: Path, base: Path, reads: Iterable[str] = ()) -> str | None:
        """The environment of the kustomization root `root`, found below `base`; `reads` are
        the kustomization folders it builds on: when its own path says nothing and they all
        name one environment (a root whose only resource is `overlays/prod`), that one."""
        found = self._of_folder(norm(root), base)
        if found is not None:
            return found
        named = {env for folder in reads if (env := self._of_folder(folder, base)) is not None}
        if len(named) == 1:
            return named.pop()
        key = norm(root)
        best: tuple[int, list[str]] | None = None
        for folder, envs in self._deployed.items():
            inside = key == folder or key.startswith(folder + os.sep)
            if inside and (best is None or len(folder) > best[0]):
                best = (len(folder), envs)
        if best is not None and len(best[1]) == 1:
            return best[1][0]
        return None


@dataclass(frozen=True, slots=True)
class Deployment:
    """What the Flux Kustomizations and Argo CD Applications of a repository deploy: folder
    (normalised) → the environments of the files naming them (when known) and the namespaces
    they put its objects in (Flux `spec.targetNamespace`, Argo `spec.destination.namespace`)."""

    environments: dict[str, list[str]] = field(default_factory=dict)
    namespaces: dict[str, list[str]] = field(default_factory=dict)

    def namespace_of(self, folder: Path) -> str | None:
        """The single target namespace of the deepest deployed folder holding `folder`."""
        key = norm(folder)
        best: tuple[int, list[str]] | None = None
        for deployed, names in self.namespaces.items():
            inside = key == deployed or key.startswith(deployed + os.sep)
            if inside and (best is None or len(deployed) > best[0]):
                best = (len(deployed), names)
        return best[1][0] if best is not None and len(set(best[1])) == 1 else None


def deployed_paths(
    files: Iterable[Path], base: Path, env_of: EnvironmentMap, max_bytes: int
) -> Deployment:
    """The folders that Flux Kustomizations and Argo CD Applications in `files` deploy.

    Their paths are relative to the repository's top (the folder holding `.git`, else `base`).
    Files that cannot be read are left to the loader, which reports them.
    """
    top = _repository_top(base)
    found = Deployment()
    for file in files:
        try:
            data = read_file(file, max_bytes)  # regular files only: a FIFO would block
        except ReadError:
            continue
        if b"path:" not in data or not any(d in data for d in _DEPLOYERS):
            continue
        env = env_of.of_path(os.path.relpath(norm(file), norm(base)))
        try:
            docs = parse_documents(data, str(file))
        except ReadError:
            continue
        for doc in docs:
            targets, namespace = _deploy_targets(doc.data)
            for target in targets:
                folder = norm(top / target)
                if env is not None:
                    found.environments.setdefault(folder, []).append(env)
                if namespace is not None:
                    found.namespaces.setdefault(folder, []).append(namespace)
    return found


def _deploy_targets(body: Any) -> tuple[list[str], str | None]:
    """(folders deployed, target namespace) of a Flux Kustomization or Argo CD Application."""
    if not isinstance(body, dict):
        return [], None
    api = str(body.get("apiVersion", ""))
    kind = body.get("kind")
    spec = body.get("spec")
    if not isinstance(spec, dict):
        return [], None
    if api.startswith("kustomize.toolkit.fluxcd.io/") and kind == "Kustomization":
        path, namespace = spec.get("path"), spec.get("targetNamespace")
        return (
            [path] if isinstance(path, str) else [],
            namespace if isinstance(namespace, str) and namespace else None,
        )
    if api.startswith("argoproj.io/") and kind == "Application":
        sources = [spec.get("source"), *(spec.get("sources") or [])]
        destination = spec.get("destination")
        namespace = destination.get("namespace") if isinstance(destination, dict) else None
        return (
            [s["path"] for s in sources if isinstance(s, dict) and isinstance(s.get("path"), str)],
            namespace if isinstance(namespace, str) and namespace else None,
        )
    return [], None


def _repository_top(base: Path) -> Path:
    current = Path(norm(base))
    for folder in (current, *current.parents):
        if (folder / ".git").exists():
            return folder
    return current
