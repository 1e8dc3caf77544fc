"""Read manifests from files, directories, stdin and rendered kustomization roots.

The sources' orchestration: walk each directory (`files`), find its kustomization roots and
render them (`kustomize`), read every other YAML file as it is (`yaml`), and sort documents into
Kubernetes objects, other mappings and notes. Nothing about one input stops the run: a root that
does not build and a file that cannot be read become `InputProblem`s (findings SK002/SK003),
unless `strict` asks for today's stop-at-the-first-error behaviour. A file named on the command
line, or stdin, that cannot be read is always an error (exit 2).

`python -m statekeeper.manifests PATH...` prints what would be read (debugging; the memory tests
use it).
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from statekeeper.errors import InputError
from statekeeper.findings import Note
from statekeeper.manifests import flux
from statekeeper.manifests.environments import EnvironmentMap, deployed_paths
from statekeeper.manifests.files import (
    KUSTOMIZATION_NAMES,
    MAX_FILE_BYTES,
    STDIN_NAME,
    Tree,
    is_kustomization,
    kustomization_file,
    norm,
    os_reason,
    read_file,
    read_stdin,
    relative_to_cwd,
    walk,
)
from statekeeper.manifests.helmoptions import HelmOptions
from statekeeper.manifests.resource import InputProblem, Origin, Resource
from statekeeper.manifests.yaml import (
    HELM_HINT,
    K8sLoader,
    ParsedDocument,
    ReadError,
    looks_like_helm_template,
    looks_like_manifest,
    parse_documents,
)

if TYPE_CHECKING:
    from statekeeper.manifests import kustomize

__all__ = [
    "KUSTOMIZATION_NAMES",
    "STDIN_NAME",
    "InputProblem",
    "K8sLoader",
    "LoadResult",
    "add_documents",
    "load_sources",
    "parse_documents",
    "relative_to_cwd",
]


@dataclass
class LoadResult:
    """Everything read from the sources given to `load_sources`."""

    resources: list[Resource] = field(default_factory=list)  # Kubernetes objects
    other: list[Resource] = field(default_factory=list)  # YAML mappings without apiVersion+kind
    notes: list[Note] = field(default_factory=list)  # things skipped
    sources: list[str] = field(default_factory=list)  # files and rendered roots read
    problems: list[InputProblem] = field(default_factory=list)  # SK002 / SK003


def add_documents(
    result: LoadResult,
    docs: Sequence[ParsedDocument],
    file: str,
    *,
    source_dir: str | None,
    tree_root: str | None = None,
    environment: str | None = None,
) -> None:
    """Sort parsed documents of one plain file into resources, other mappings and notes.
    `tree_root` is the directory argument the file was found below (app names never come
    from it or the folders above it); `environment` the one its path names."""
    for doc in docs:
        body = doc.data
        if body is None:
            continue  # empty document (`---` at the end of a file, ...)
        origin = Origin(
            file=file,
            document=doc.index,
            line=doc.line,
            environment=environment,
            source_dir=source_dir,
            tree_root=tree_root,
        )
        if not isinstance(body, dict):
            what = type(body).__name__
            result.notes.append(
                Note(f"document {doc.index + 1} is not a mapping ({what}); skipped", file, doc.line)
            )
            continue
        if not (isinstance(body.get("apiVersion"), str) and isinstance(body.get("kind"), str)):
            result.other.append(Resource(body, origin))
            continue
        if body["kind"].endswith("List") and isinstance(body.get("items"), list):
            _add_list_items(result, body["items"], origin)
            continue
        result.resources.append(Resource(body, origin))


def _add_list_items(result: LoadResult, items: list[Any], origin: Origin) -> None:
    """A `kind: List` (as `kubectl get -o yaml` writes) stands for its items."""
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("kind"), str):
            result.resources.append(Resource(item, origin))
        else:
            result.notes.append(
                Note(
                    f"document {origin.document + 1}: a List item is not an object; skipped",
                    origin.file,
                    origin.line,
                )
            )


def load_sources(
    paths: Sequence[str],
    *,
    render: bool = True,
    env: str | None = None,
    overlay_envs: Mapping[str, str] | None = None,
    env_paths: Mapping[str, Sequence[str]] | None = None,
    stdin: BinaryIO | None = None,
    max_workers: int | None = None,
    max_file_bytes: int = MAX_FILE_BYTES,
    strict: bool = False,
    quiet: bool = False,
    cache: bool = True,
    helm: HelmOptions | None = None,
) -> LoadResult:
    """Read every path (file, directory, `-` for stdin) into resources.

    With `render`, every kustomization root below a directory argument is rendered with
    kustomize (see `statekeeper.manifests.kustomize`; with `env`, only the roots of that
    environment and those whose environment is unknown), and the files a root reads are judged
    only as rendered. `overlay_envs` maps folder names (aliases) to environments,
    `env_paths` environments to path globs. A progress bar is shown on a terminal unless
    `quiet`. Helm releases (Flux HelmRelease, Argo CD Helm sources, kustomize helmCharts) are
    rendered, interpreted (app-template) or noted as `helm` says (`statekeeper.manifests.helm`;
    default: render when helm is on PATH). Raises InputError for usage errors, for a named
    file or stdin that cannot be read, and (with `strict`) for the first input problem.
    """
    # Parsed YAML holds no reference cycles (recursive aliases are refused), so the cyclic
    # garbage collector has nothing to find; left on, it re-scans every object kept so far
    # again and again and costs ~40% of the load time on a big repo.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        loader = _Loader(
            max_file_bytes=max_file_bytes,
            strict=strict,
            env_of=EnvironmentMap(overlay_envs or {}, env_paths),
        )
        loader.run(
            paths,
            render=render,
            env=env,
            stdin=stdin,
            max_workers=max_workers,
            quiet=quiet,
            cache=cache,
        )
        result = loader.result
        if render:
            flux.apply_flux(result.resources, result.notes, max_bytes=max_file_bytes)
        charts_read: Collection[Path] = ()
        if _may_hold_releases(result.resources, loader):
            # Imported only here: the Helm machinery is ~10 ms of a one-file audit's start-up.
            from statekeeper.manifests import helm as helm_releases

            summary = helm_releases.expand_releases(
                result.resources,
                result.notes,
                loader.kustomize_dirs,
                helm if helm is not None else HelmOptions(max_bytes=max_file_bytes),
                chart_dirs=loader.helm_charts,
            )
            charts_read = summary.charts_read
        # a chart of the repo rendered or interpreted by a release is audited; others are not
        for chart in loader.helm_charts:
            if chart.resolve() not in charts_read:
                result.notes.append(
                    Note(
                        "a Helm chart (Chart.yaml): its templates are not read; render it "
                        "with its values (helm template … | statekeeper audit -) to audit it",
                        relative_to_cwd(chart),
                    )
                )
        return result
    finally:
        if gc_was_enabled:
            gc.enable()


def _may_hold_releases(resources: Sequence[Resource], loader: _Loader) -> bool:
    """Whether `helm.expand_releases` could find a release: a HelmRelease or Application
    among the objects, a kustomization (`helmCharts:`) or a chart folder. A cheap superset of
    its own test, so that `helm` is imported only when it may have work."""
    if loader.kustomize_dirs or loader.helm_charts:
        return True
    return any(r.kind in ("HelmRelease", "Application") for r in resources)


@dataclass(frozen=True, slots=True)
class _Root:
    """A kustomization root to render: what it reads, its environment, its tree's root."""

    path: Path
    reach: kustomize.Reach
    environment: str | None
    tree_root: str
    namespace: str | None = None  # the namespace its Flux/Argo CD deployer puts objects in


@dataclass
class _Plan:
    """What rendering stands for: roots, the files they read, patches, kustomization dirs."""

    patches: dict[str, Path]
    roots: list[_Root] = field(default_factory=list)
    covered: set[str] = field(default_factory=set)
    listed_dirs: dict[str, Path] = field(default_factory=dict)


class _Loader:
    """One load: the result so far, what was read, and how problems are handled."""

    def __init__(self, *, max_file_bytes: int, strict: bool, env_of: EnvironmentMap) -> None:
        self.result = LoadResult()
        self.max_bytes = max_file_bytes
        self.strict = strict
        self.env_of = env_of
        self.seen: set[str] = set()
        self.kustomize_dirs: set[Path] = set()  # for kustomize `helmCharts` entries
        self.helm_charts: list[Path] = []  # chart folders (umbrella charts of app-template)

    # ------------------------------------------------------------------ problems

    def problem(
        self, kind: str, err: ReadError, *, remote: bool = False, env: str | None = None
    ) -> None:
        if self.strict:
            raise err
        self.result.problems.append(
            InputProblem(kind, err.where, err.reason, err.line, err.column, remote, env)
        )

    def _strict_raise(self, err: ReadError) -> None:
        if self.strict:
            raise err

    # ------------------------------------------------------------------ the run

    def run(
        self,
        paths: Sequence[str],
        *,
        render: bool,
        env: str | None,
        stdin: BinaryIO | None,
        max_workers: int | None,
        quiet: bool,
        cache: bool,
    ) -> None:
        items = list(_expand(paths))  # every argument exists before anything is read
        trees: dict[int, Tree] = {}
        for index, (kind, path) in enumerate(items):
            if kind == "dir":
                assert path is not None
                trees[index] = self._walk(path)
        kustomize_dirs = {d for tree in trees.values() for d in tree.kustomize_dirs}
        self.kustomize_dirs = kustomize_dirs
        plan = _Plan(patches={})
        if kustomize_dirs:
            # Imported only when there is a kustomization (start-up time of one-file audits).
            from statekeeper.manifests import kustomize

            graph = kustomize.Graph.build(kustomize_dirs)
            plan = _Plan(patches=graph.patch_owners())
            if render:
                plan = self._plan(list(trees.values()), graph, env)
        for index, (kind, path) in enumerate(items):
            if kind == "stdin":
                data = read_stdin(stdin if stdin is not None else sys.stdin.buffer, self.max_bytes)
                self.result.sources.append(STDIN_NAME)
                docs = parse_documents(data, STDIN_NAME)
                add_documents(self.result, docs, STDIN_NAME, source_dir=None)
            elif kind == "file":
                assert path is not None
                if is_kustomization(path.name):
                    hint = relative_to_cwd(path.parent)
                    self.result.notes.append(
                        Note(
                            f"a kustomization file, not manifests; to audit it pass {hint}",
                            str(path),
                        )
                    )
                elif self._first_visit(path):
                    self._load_named_file(path)
            else:
                self._read_files(trees[index], plan)
        if plan.roots:
            self._render(plan, env=env, max_workers=max_workers, quiet=quiet, cache=cache)

    def _walk(self, path: Path) -> Tree:
        tree = walk(path, self._strict_raise)
        for err in tree.problems:
            self.problem("read", err)
        found = tree.yaml_files or tree.kustomize_dirs or tree.helm_charts
        if not found and not tree.problems:
            self.result.notes.append(Note("no YAML files in this directory or below", str(path)))
        self.helm_charts.extend(tree.helm_charts)  # noted after the Helm reader, if unread
        return tree

    def _plan(self, trees: list[Tree], graph: kustomize.Graph, env: str | None) -> _Plan:
        """The roots to render (with `env`, only that environment's and unknown ones) and
        the files they stand for."""
        from statekeeper.manifests import kustomize

        plan = _Plan(patches=graph.patch_owners(), listed_dirs=graph.listed_dirs())
        # Only a known environment selects roots (an unknown --env name is kept for all).
        wanted = self.env_of.alias(env) if env is not None else None
        other_env = 0
        reached: set[str] = set()
        seen: set[Path] = set()
        for tree in trees:
            deployed = deployed_paths(tree.yaml_files, tree.root, self.env_of, self.max_bytes)
            env_of = EnvironmentMap.with_deployed(self.env_of, deployed.environments)
            for root in sorted(graph.roots()):
                if root in seen or not kustomize.under_any(norm(root), [norm(tree.root)]):
                    continue
                seen.add(root)
                reach = graph.closure(root)
                plan.covered |= reach.files | reach.patches
                reached |= reach.directories
                root_env = env_of.of_root(root, tree.root, reach.directories)
                if wanted is not None and root_env is not None and root_env != wanted:
                    other_env += 1
                    continue
                namespace = deployed.namespace_of(root)
                plan.roots.append(
                    _Root(root, reach, root_env, relative_to_cwd(tree.root), namespace)
                )
        if other_env:
            self.result.notes.append(
                Note(
                    f"--env {env}: {other_env} kustomization root(s) of other environments "
                    "not rendered"
                )
            )
        for key, node in sorted(graph.nodes.items()):
            if key in reached:
                continue
            plan.covered |= node.files
            what = "a kustomize Component" if node.component else "a kustomization"
            self.result.notes.append(
                Note(
                    f"{what} no kustomization here uses (e.g. used by a Flux Kustomization's "
                    "`spec.components`): its files are not judged on their own",
                    relative_to_cwd(kustomization_file(node.directory)),
                )
            )
        return plan

    def _render(
        self,
        plan: _Plan,
        *,
        env: str | None,
        max_workers: int | None,
        quiet: bool,
        cache: bool,
    ) -> None:
        from statekeeper.manifests import kustomize

        command = kustomize.kustomize_command()
        if command is None:
            raise InputError(kustomize.MISSING_KUSTOMIZE)
        render_cache = (
            kustomize.RenderCache(kustomize.default_cache_dir(), command, self.max_bytes)
            if cache
            else None
        )
        with _progress(len(plan.roots), quiet) as advance:
            rendered = kustomize.render_roots(
                [(root.path, root.reach) for root in plan.roots],
                command,
                max_workers=max_workers,
                cache=render_cache,
                on_done=advance,
            )
        mapper = kustomize.SourceMapper(self.max_bytes)
        for root, item in zip(plan.roots, rendered, strict=True):
            environment = env if env is not None else root.environment
            if isinstance(item, kustomize.RenderFailure):
                self.problem("build", item.error, remote=item.remote, env=environment)
                continue
            locations = self._add_rendered(
                item, environment, mapper, root.tree_root, root.namespace
            )
            if render_cache is not None and item.key and not item.cached and locations:
                render_cache.put(item.key, item, locations)

    # ------------------------------------------------------------------ files

    def _read_files(self, tree: Tree, plan: _Plan) -> None:
        """Read the files that no rendered root stands for; patches are skipped with a note,
        and so are the objects of files a kustomization leaves out (not deployed)."""
        patches, covered, listed_dirs = plan.patches, plan.covered, plan.listed_dirs
        for file in tree.yaml_files:
            key = norm(file)
            if key in covered:
                continue  # judged as rendered
            owner = patches.get(key)
            if owner is not None:
                # A patch is a fragment of an object, not an object: judged on its own it
                # would be a Deployment without containers' context, in a made-up app.
                where = relative_to_cwd(kustomization_file(owner))
                self.result.notes.append(
                    Note(f"a kustomize patch listed in {where}; skipped", relative_to_cwd(file))
                )
                continue
            # A file next to a kustomization that does not list it is not deployed (often
            # commented out): its objects are not judged; Helm values in it still count.
            unlisted = listed_dirs.get(norm(file.parent))
            if self._first_visit(file):
                self._load_walked_file(file, relative_to_cwd(tree.root), unlisted)

    def _first_visit(self, path: Path) -> bool:
        key = norm(path)
        if key in self.seen:
            return False
        self.seen.add(key)
        return True

    def _load_named_file(self, path: Path) -> None:
        where = relative_to_cwd(path)
        docs = parse_documents(read_file(path, self.max_bytes, named=True), where)
        self._add_file(path, where, docs)

    def _load_walked_file(self, path: Path, tree_root: str, unlisted: Path | None = None) -> None:
        where = relative_to_cwd(path)
        try:
            data = read_file(path, self.max_bytes)
        except ReadError as err:
            self.problem("read", err)
            return
        try:
            docs = parse_documents(data, where)
        except ReadError as err:
            self._unparsable(err, data)
            return
        if unlisted is None:
            self._add_file(path, where, docs, tree_root)
            return
        objects = len(self.result.resources)
        self._add_file(path, where, docs, tree_root)
        skipped = len(self.result.resources) - objects
        if skipped:
            del self.result.resources[objects:]
            owner = relative_to_cwd(kustomization_file(unlisted))
            self.result.notes.append(
                Note(f"not listed in {owner} (not deployed): {skipped} object(s) skipped", where)
            )

    def _unparsable(self, err: ReadError, data: bytes) -> None:
        """A walked file that does not parse: a Helm template or a non-Kubernetes file with
        invalid YAML is skipped with a note; anything else is SK003."""
        if self.strict:
            raise err
        helm_line = looks_like_helm_template(data)
        if helm_line is not None:
            self.result.notes.append(
                Note(
                    f"a template (Helm or Jinja), not YAML; skipped: {HELM_HINT}",
                    err.where,
                    helm_line,
                )
            )
        elif "invalid YAML" in err.reason and not looks_like_manifest(data):
            self.result.notes.append(
                Note(
                    f"not a Kubernetes manifest and not valid YAML; skipped ({err.reason})",
                    err.where,
                    err.line,
                )
            )
        else:
            self.problem("read", err)

    def _add_file(
        self, path: Path, where: str, docs: list[ParsedDocument], tree_root: str | None = None
    ) -> None:
        self.result.sources.append(where)
        if not docs:
            self.result.notes.append(Note("no YAML documents; skipped", where, None))
            return
        environment = None
        if tree_root is not None:
            environment = self.env_of.of_path(os.path.relpath(norm(path.parent), norm(tree_root)))
        add_documents(
            self.result,
            docs,
            where,
            source_dir=relative_to_cwd(path.parent),
            tree_root=tree_root,
            environment=environment,
        )

    # ------------------------------------------------------------------ rendered roots

    def _add_rendered(
        self,
        item: kustomize.Rendered,
        environment: str | None,
        mapper: kustomize.SourceMapper,
        tree_root: str,
        namespace: str | None = None,
    ) -> list[Any] | None:
        """Add a root's objects; return where each document came from (for the cache), or
        None when its output could not be read. `namespace` is set on namespaced objects, as
        Flux's `targetNamespace` (or Argo CD's destination namespace) does."""
        from statekeeper.manifests import kustomize

        root_name = relative_to_cwd(item.root)
        fallback_file = relative_to_cwd(kustomization_file(item.root))
        try:
            docs = parse_documents(item.output, f"{root_name} (rendered)")
        except ReadError as err:
            self.problem("build", ReadError(fallback_file, err.reason), env=environment)
            return None
        self.result.sources.append(root_name)
        cached = (
            item.locations
            if item.locations is not None and len(item.locations) == len(docs)
            else None
        )
        locations: list[Any] = []
        for index, doc in enumerate(docs):
            body = doc.data
            if not isinstance(body, dict):
                locations.append(None)
                continue  # kustomize only writes objects; nothing else to report
            where = kustomize.pop_origin(body)
            if namespace is not None and kustomize.is_namespaced(body):
                metadata = body.setdefault("metadata", {})
                if isinstance(metadata, dict):
                    metadata["namespace"] = namespace
            patched_in = kustomize.pop_patched_in(body, item.origin_base)
            origin = Origin(fallback_file, doc.index, 1, root_name, environment)
            if cached is not None and cached[index] is not None:
                origin = _origin_from_cache(cached[index], root_name, environment)
            elif where is not None:
                origin = mapper.locate(body, where, item.origin_base, origin)
            if patched_in:
                origin = replace(origin, patched_in=tuple(patched_in))
            locations.append(_cached_location(origin))
            source_dir = root_name if origin.source_dir is None else origin.source_dir
            origin = replace(origin, source_dir=source_dir, tree_root=tree_root)
            target = self.result.resources
            if not (isinstance(body.get("apiVersion"), str) and isinstance(body.get("kind"), str)):
                target = self.result.other
            target.append(Resource(body, origin))
        return locations


def _cached_location(origin: Origin) -> list[Any]:
    """Where a rendered document came from, as the render cache keeps it: paths absolute, since
    the next audit may run from another working directory (origins are cwd-relative).
    `patched_in` is not kept: it is recomputed from the body."""
    kept: dict[str, Any] = {"source_mapped": origin.source_mapped}
    if origin.source_dir is not None:
        kept["source_dir"] = os.path.abspath(origin.source_dir)  # noqa: PTH100 - str in, str out
    return [os.path.abspath(origin.file), origin.document, origin.line, kept]  # noqa: PTH100


def _origin_from_cache(location: list[Any], overlay: str, environment: str | None) -> Origin:
    """The origin `_cached_location` kept, back relative to the working directory."""
    file, document, line, kept = location
    source_dir = kept.get("source_dir")
    return Origin(
        relative_to_cwd(file),
        document,
        line,
        overlay,
        environment,
        source_dir=relative_to_cwd(source_dir) if isinstance(source_dir, str) else None,
        source_mapped=bool(kept.get("source_mapped", False)),
    )


def _expand(paths: Sequence[str]) -> Iterator[tuple[str, Path | None]]:
    """Each argument as ("stdin", None), ("file", path) or ("dir", path)."""
    for raw in paths:
        if raw == "-":
            yield "stdin", None
            continue
        path = Path(raw)
        try:
            is_dir = path.is_dir()
            exists = is_dir or path.exists() or path.is_symlink()
        except OSError as err:
            raise InputError(f"{raw}: cannot read: {os_reason(err)}") from None
        if not exists:
            raise InputError(f"{raw}: no such file or directory")
        yield ("dir" if is_dir else "file"), path


class _progress:
    """A rich progress bar on stderr while roots render: only on a terminal, never if quiet."""

    def __init__(self, total: int, quiet: bool) -> None:
        self.total = total
        self.quiet = quiet
        self._bar: Any = None

    def __enter__(self) -> Callable[[], None]:
        if self.quiet or self.total < 2 or not sys.stderr.isatty():
            return lambda: None
        from rich.console import Console
        from rich.progress import Progress

        self._bar = Progress(transient=True, console=Console(stderr=True))
        self._bar.start()
        task = self._bar.add_task("rendering kustomizations", total=self.total)
        return lambda: self._bar.advance(task)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
