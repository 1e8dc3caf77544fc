"""Read manifests from files, directories, stdin and rendered kustomize overlays.

The hot path is libyaml (`yaml.CSafeLoader`) composing each document's node tree in C, then
a lean builder turning the tree into dicts and lists (PyYAML's constructor only for what it
does not handle: aliases, merge keys, explicit tags), plus one `Resource` per object. Safety checks
that need a Python walk over the node graph (alias expansion) only run on files whose raw
bytes could contain an alias; nesting depth is bounded by libyaml itself (1000 levels), and a
`RecursionError` from anywhere below is turned into an `InputError` too.

Scalars are typed the way kubectl (sigs.k8s.io/yaml) types them, not the way PyYAML's YAML 1.1
resolver does: no timestamps (dates stay strings), `y`/`n` are booleans, `0o755` is octal,
`1e3` is a float, `1:30` is a string. See docs/inputs.md.

Run `python -m statekeeper.manifests.load PATH...` to print what would be read (debugging and
the memory tests use it).
"""

from __future__ import annotations

import gc
import json
import os
import re
import stat
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from statekeeper.errors import InputError
from statekeeper.findings import Note
from statekeeper.manifests.resource import Origin, Resource

STDIN_NAME = "<stdin>"
YAML_SUFFIXES = (".yaml", ".yml")
KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
# An alias may expand to at most this many nodes before the document counts as a "billion
# laughs" attack (and, above it, to at most ALIAS_RATIO times the document's own node count).
ALIAS_EXPANSION_LIMIT = 100_000
ALIAS_RATIO = 10

__all__ = [
    "KUSTOMIZATION_NAMES",
    "STDIN_NAME",
    "LoadResult",
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
    sources: list[str] = field(default_factory=list)  # files and rendered overlays read


# --------------------------------------------------------------------------- YAML typing


_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class K8sLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """libyaml's parser with PyYAML's safe constructor and kubectl's implicit scalar types."""


def _int_kubectl(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    """Ints as go-yaml v2 reads them: `0755` and `0o755` octal, `0x1f` hex, `0b101` binary."""
    text = str(node.value).replace("_", "")
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-")
    if digits.startswith(("0x", "0X")):
        return sign * int(digits[2:], 16)
    if digits.startswith(("0b", "0B")):
        return sign * int(digits[2:], 2)
    if digits.startswith(("0o", "0O")):
        return sign * int(digits[2:], 8)
    if len(digits) > 1 and digits.startswith("0") and not set(digits) & {"8", "9"}:
        return sign * int(digits[1:], 8)
    return sign * int(digits)


def _str_kubectl(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> str:
    return str(node.value)


def _bool_kubectl(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> bool:
    return str(node.value).lower() in ("y", "yes", "true", "on")


def _float_kubectl(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> float:
    text = str(node.value).replace("_", "").lower()
    if text.endswith((".inf", ".nan")):
        return float(text.replace(".", ""))
    return float(text)


def _install_kubectl_resolvers(cls: type[yaml.SafeLoader]) -> None:
    """Replace PyYAML's YAML 1.1 bool/int/float/timestamp resolvers with go-yaml v2's."""
    replaced = {
        "tag:yaml.org,2002:bool",
        "tag:yaml.org,2002:int",
        "tag:yaml.org,2002:float",
        "tag:yaml.org,2002:timestamp",
    }
    cls.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in replaced]
        for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
    }
    cls.add_implicit_resolver(
        "tag:yaml.org,2002:bool",
        re.compile(
            r"^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE"
            r"|on|On|ON|off|Off|OFF)$"
        ),
        list("yYnNtTfFoO"),
    )
    cls.add_implicit_resolver(
        "tag:yaml.org,2002:int",
        re.compile(r"^[-+]?(?:0[bB][01_]+|0[oO]?[0-7_]+|0[xX][0-9a-fA-F_]+|[0-9][0-9_]*)$"),
        list("-+0123456789"),
    )
    cls.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(
            r"^(?:[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?"
            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
        ),
        list("-+.0123456789"),
    )
    cls.add_constructor("tag:yaml.org,2002:int", _int_kubectl)
    cls.add_constructor("tag:yaml.org,2002:bool", _bool_kubectl)
    cls.add_constructor("tag:yaml.org,2002:float", _float_kubectl)
    # An explicit !!timestamp stays a string too: bodies must stay JSON-serialisable.
    cls.add_constructor("tag:yaml.org,2002:timestamp", _str_kubectl)
    # Unknown tags (`!reference`, `!Ref`, ...) are ignored, as kubectl ignores them.
    cls.add_constructor(None, _ignore_tag)


def _ignore_tag(loader: yaml.SafeLoader, node: Node) -> Any:
    if isinstance(node, SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, MappingNode):
        return loader.construct_mapping(node, deep=True)
    return str(node.value)


_install_kubectl_resolvers(K8sLoader)

_STR = "tag:yaml.org,2002:str"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
_MERGE = "tag:yaml.org,2002:merge"
_NULL = "tag:yaml.org,2002:null"


def _install_lean_resolve(cls: type[yaml.SafeLoader]) -> None:
    """`resolve` without PyYAML's generality (path resolvers, wildcard resolvers): libyaml
    calls it once per scalar, so it is on the hot path."""
    table = {first: tuple(rs) for first, rs in cls.yaml_implicit_resolvers.items()}
    assert None not in table  # no wildcard resolvers to honour

    def resolve(self: yaml.SafeLoader, kind: type, value: str, implicit: tuple[bool, bool]) -> str:
        if kind is ScalarNode:
            if implicit[0]:
                for tag, regexp in table.get(value[:1], ()):
                    if regexp.match(value):
                        return str(tag)
            return _STR
        return _SEQ if kind is SequenceNode else _MAP

    def no_path_resolvers(self: yaml.SafeLoader, *args: object) -> None:
        return None

    cls.resolve = resolve  # type: ignore[method-assign,assignment]
    cls.descend_resolver = no_path_resolvers  # type: ignore[method-assign,assignment]
    cls.ascend_resolver = no_path_resolvers  # type: ignore[method-assign,assignment]


_install_lean_resolve(K8sLoader)

_ScalarMaker = Callable[[Any, ScalarNode], Any]
_SCALARS: dict[str, _ScalarMaker] = {
    _NULL: lambda loader, node: None,
    "tag:yaml.org,2002:bool": _bool_kubectl,
    "tag:yaml.org,2002:int": _int_kubectl,
    "tag:yaml.org,2002:float": _float_kubectl,
}


class _NotPlain(Exception):
    """A node the lean builder leaves to PyYAML's constructor (merge key, explicit tag...)."""


def _build(node: Node, loader: Any) -> Any:
    """Python objects for an alias-free node tree: what SafeConstructor makes for plain
    Kubernetes YAML, without its per-node bookkeeping (about twice as fast)."""
    kind = node.__class__
    if kind is ScalarNode:
        if node.tag == _STR:
            return node.value
        make = _SCALARS.get(node.tag)
        if make is None:
            raise _NotPlain
        return make(loader, node)  # type: ignore[arg-type]
    if kind is MappingNode and node.tag == _MAP:
        out: dict[Any, Any] = {}
        for key, value in node.value:
            if key.__class__ is not ScalarNode or key.tag == _MERGE:
                raise _NotPlain
            out[_build(key, loader)] = _build(value, loader)
        return out
    if kind is SequenceNode and node.tag == _SEQ:
        return [_build(item, loader) for item in node.value]
    raise _NotPlain


# --------------------------------------------------------------------------- parsing

# Raw-byte hints that a file may use aliases (a "billion laughs" needs both an anchor and an
# alias). False positives (shell `&&`, cron `*/5`) only cost the slower, exact check.
# Sound: a YAML anchor or alias can only follow whitespace, `[`, `{`, `,` or `:` (a flow
# `"key":*a`), or start a line; an alias needs an anchor. Files where either regex finds
# nothing hold no aliases, so their node trees are trees (no shared nodes).
_MAYBE_ANCHOR = re.compile(rb"(?:^|[\s\[{,:])&[^\s,\[\]{}]", re.MULTILINE)
_MAYBE_ALIAS = re.compile(rb"(?:^|[\s\[{,:])\*[^\s,\[\]{}]", re.MULTILINE)
# Helm's own objects and `include`: `{{ .Values.x }}`, `{{- if .Release.IsInstall }}`,
# `{{ include "x" . }}`. Other `{{ }}` (Alertmanager and Prometheus templates, Argo
# parameters) live inside strings and are fine.
_HELM_ACTION = re.compile(
    rb"\{\{-?[^}\n]*?(?:\.Values|\.Release|\.Chart|\.Capabilities|\.Files)\b"
    rb"|\{\{-?\s*include\s"
)
HELM_HINT = "render it first: helm template … | statekeeper audit -"


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    """One YAML document: its index in the stream, first line (1-based) and parsed data."""

    index: int
    line: int
    data: Any


def parse_documents(data: bytes, where: str) -> list[ParsedDocument]:
    """Parse every document of `data`; `where` names the source in error messages.

    Raises InputError (one line, naming `where`, the document and the line) for anything
    that is not safe, valid YAML.
    """
    if b"\x00" in data:
        raise InputError(f"{where}: binary file (contains NUL bytes), not YAML")
    templated = b"{{" in data
    if templated and (match := _HELM_ACTION.search(data)) is not None:
        line = data.count(b"\n", 0, match.start()) + 1
        raise InputError(f"{where}: line {line}: looks like a Helm template; {HELM_HINT}")
    check_aliases = (
        b"&" in data
        and b"*" in data
        and _MAYBE_ANCHOR.search(data) is not None
        and _MAYBE_ALIAS.search(data) is not None
    )
    docs: list[ParsedDocument] = []
    loader = K8sLoader(data)
    index = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            if check_aliases:  # aliases share objects: PyYAML's constructor keeps them shared
                _check_alias_expansion(node, where, index)
                value = loader.construct_document(node)
            else:
                try:
                    value = _build(node, loader)
                except (_NotPlain, RecursionError):
                    value = loader.construct_document(node)
            docs.append(ParsedDocument(index, node.start_mark.line + 1, value))
            index += 1
    except yaml.reader.ReaderError as err:
        line = data.count(b"\n", 0, max(err.position, 0)) + 1
        what = "not valid UTF-8" if "UTF-8" in err.reason else err.reason
        raise InputError(f"{where}: line {line}: {what} (not a UTF-8 YAML text file)") from None
    except yaml.MarkedYAMLError as err:
        raise InputError(_yaml_error_message(err, where, index, templated)) from None
    except RecursionError:
        raise InputError(f"{where}: document {index + 1}: nested too deeply") from None
    except (ValueError, OverflowError) as err:  # e.g. an integer literal of 100 000 digits
        reason = "an integer literal too long" if "digits" in str(err) else str(err)
        raise InputError(f"{where}: document {index + 1}: cannot read a value: {reason}") from None
    finally:
        loader.dispose()
    return docs


def _yaml_error_message(err: yaml.MarkedYAMLError, where: str, index: int, templated: bool) -> str:
    mark = err.problem_mark or err.context_mark
    at = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "?"
    problem = " ".join(str(err.problem or err.context or "invalid YAML").split())
    if "maximum nesting depth" in problem:
        return f"{where}: document {index + 1}, {at}: nested too deeply (more than 1000 levels)"
    hint = f"; if it is a Helm template, {HELM_HINT}" if templated else ""
    return f"{where}: document {index + 1}, {at}: invalid YAML: {problem}{hint}"


def _check_alias_expansion(root: Node, where: str, index: int) -> None:
    """Refuse a document whose aliases expand to far more nodes than it holds, or that
    contains itself (a recursive alias).

    Memoised per node, so the walk is linear in the document's own size even for a
    billion-laughs document; iterative, so depth cannot overflow the stack.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if isinstance(node, SequenceNode):
            children: list[Node] = node.value
        elif isinstance(node, MappingNode):
            children = [n for pair in node.value for n in pair]
        else:
            sizes[id(node)] = 1
            continue
        if children_done:
            open_nodes.discard(id(node))
            total = 1 + sum(sizes[id(child)] for child in children)
            sizes[id(node)] = total
            if total > ALIAS_EXPANSION_LIMIT and total > ALIAS_RATIO * len(sizes):
                raise InputError(
                    f"{where}: document {index + 1}, line {node.start_mark.line + 1}: excessive "
                    f"aliasing (aliases expand to more than {ALIAS_EXPANSION_LIMIT} nodes)"
                )
            continue
        if id(node) in sizes:
            continue
        if id(node) in open_nodes:
            raise InputError(
                f"{where}: document {index + 1}, line {node.start_mark.line + 1}: "
                "recursive alias (a node contains itself)"
            )
        open_nodes.add(id(node))
        stack.append((node, True))
        stack.extend((child, False) for child in children if id(child) not in sizes)


# --------------------------------------------------------------------------- sources


def relative_to_cwd(path: str | os.PathLike[str]) -> str:
    """`path` relative to the working directory when it lies below it, else absolute."""
    text = os.fspath(path)
    if not os.path.isabs(text):  # noqa: PTH117 - str in, str out
        normal = os.path.normpath(text)
        if normal != ".." and not normal.startswith(".." + os.sep):
            return normal  # already relative to the working directory (the common case)
    absolute = os.path.abspath(text)  # noqa: PTH100 - normalises `..` without resolving links
    cwd = os.getcwd()  # noqa: PTH109 - a str, compared as text
    if absolute == cwd:
        return "."
    if absolute.startswith(cwd + os.sep):
        return absolute[len(cwd) + 1 :]
    return absolute


def _is_kustomization(name: str) -> bool:
    return name in KUSTOMIZATION_NAMES


@dataclass
class _Tree:
    """What a walk below one directory argument found."""

    yaml_files: list[Path] = field(default_factory=list)
    kustomize_dirs: set[Path] = field(default_factory=set)


def _walk(root: Path) -> _Tree:
    """Every *.yaml/*.yml file below `root` (sorted, hidden directories skipped) and every
    directory holding a kustomization file. Symlinked directories are followed once; a link
    back to one of its own ancestors is a symlink loop and an error."""
    tree = _Tree()
    visited: set[tuple[int, int]] = set()

    def visit(directory: Path, ancestors: frozenset[tuple[int, int]]) -> None:
        try:
            info = directory.stat()
        except OSError as err:
            raise InputError(
                f"{relative_to_cwd(directory)}: cannot read: {_os_reason(err)}"
            ) from None
        ident = (info.st_dev, info.st_ino)
        if ident in ancestors:
            raise InputError(f"{relative_to_cwd(directory)}: symlink loop (links back to a parent)")
        if ident in visited:
            return  # a second link to a directory already read
        visited.add(ident)
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as err:
            raise InputError(
                f"{relative_to_cwd(directory)}: cannot read: {_os_reason(err)}"
            ) from None
        subdirs: list[Path] = []
        for entry in entries:
            if entry.name.startswith("."):
                continue  # .git, .github, .gitlab-ci.yml, .pre-commit-config.yaml: not manifests
            path = directory / entry.name
            try:
                is_dir = entry.is_dir()  # follows symlinks
            except OSError as err:
                raise InputError(
                    f"{relative_to_cwd(path)}: cannot read: {_os_reason(err)}"
                ) from None
            if is_dir:
                subdirs.append(path)
            elif _is_kustomization(entry.name):
                tree.kustomize_dirs.add(directory)
            elif entry.name.endswith(YAML_SUFFIXES):
                tree.yaml_files.append(path)
        for sub in subdirs:
            visit(sub, ancestors | {ident})

    visit(root, frozenset())
    return tree


def _os_reason(err: OSError) -> str:
    if err.errno == 40:  # ELOOP
        return "symlink loop"
    return err.strerror or str(err)


def read_file(path: Path, max_bytes: int, *, named: bool = False) -> bytes:
    """The bytes of `path`, at most `max_bytes`. Only a regular file is read, except that a
    pipe named on the command line (`statekeeper audit <(helm template …)`) is too."""
    where = relative_to_cwd(path)
    try:
        info = path.stat()
    except OSError as err:
        reason = _os_reason(err)
        if path.is_symlink() and reason != "symlink loop":
            reason = f"broken symlink ({reason})"
        raise InputError(f"{where}: cannot read: {reason}") from None
    piped = named and stat.S_ISFIFO(info.st_mode)
    if not (stat.S_ISREG(info.st_mode) or piped):
        raise InputError(f"{where}: cannot read: not a regular file")
    if info.st_size > max_bytes:
        raise InputError(f"{where}: file too large ({info.st_size} bytes; limit {max_bytes})")
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as err:
        raise InputError(f"{where}: cannot read: {_os_reason(err)}") from None
    if len(data) > max_bytes:
        raise InputError(f"{where}: file too large (more than {max_bytes} bytes)")
    return data


def _read_stdin(stream: BinaryIO, max_bytes: int) -> bytes:
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InputError(f"{STDIN_NAME}: input too large (more than {max_bytes} bytes)")
    return data


def add_documents(
    result: LoadResult,
    docs: Sequence[ParsedDocument],
    file: str,
    *,
    source_dir: str | None,
) -> None:
    """Sort parsed documents of one plain file into resources, other mappings and notes."""
    extras: dict[str, Any] = {} if source_dir is None else {"source_dir": source_dir}
    for doc in docs:
        body = doc.data
        if body is None:
            continue  # empty document (`---` at the end of a file, ...)
        origin = Origin(file=file, document=doc.index, line=doc.line)
        if not isinstance(body, dict):
            what = type(body).__name__
            result.notes.append(
                Note(f"document {doc.index + 1} is not a mapping ({what}); skipped", file, doc.line)
            )
            continue
        if not (isinstance(body.get("apiVersion"), str) and isinstance(body.get("kind"), str)):
            result.other.append(Resource(body, origin, dict(extras)))
            continue
        if body["kind"].endswith("List") and isinstance(body.get("items"), list):
            _add_list_items(result, body["items"], origin, extras)
            continue
        result.resources.append(Resource(body, origin, dict(extras)))


def _add_list_items(
    result: LoadResult, items: list[Any], origin: Origin, extras: dict[str, Any]
) -> None:
    """A `kind: List` (as `kubectl get -o yaml` writes) stands for its items."""
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("kind"), str):
            result.resources.append(Resource(item, origin, dict(extras)))
        else:
            result.notes.append(
                Note(
                    f"document {origin.document + 1}: a List item is not an object; skipped",
                    origin.file,
                    origin.line,
                )
            )


def _load_file(result: LoadResult, path: Path, max_bytes: int, *, named: bool = False) -> None:
    where = relative_to_cwd(path)
    docs = parse_documents(read_file(path, max_bytes, named=named), where)
    result.sources.append(where)
    if not docs:
        result.notes.append(Note("no YAML documents; skipped", where, None))
        return
    add_documents(result, docs, where, source_dir=relative_to_cwd(path.parent))


def _expand(paths: Sequence[str], render: bool) -> Iterator[tuple[str, Path | None, _Tree | None]]:
    """Each argument as ("stdin", None, None), ("file", path, None) or ("dir", path, tree)."""
    for raw in paths:
        if raw == "-":
            yield "stdin", None, None
            continue
        path = Path(raw)
        try:
            is_dir = path.is_dir()
            exists = is_dir or path.exists() or path.is_symlink()
        except OSError as err:
            raise InputError(f"{raw}: cannot read: {_os_reason(err)}") from None
        if not exists:
            raise InputError(f"{raw}: no such file or directory")
        if is_dir:
            yield "dir", path, _walk(path)
        else:
            yield "file", path, None


def load_sources(
    paths: Sequence[str],
    *,
    render: bool = True,
    env: str | None = None,
    overlay_envs: Mapping[str, str] | None = None,
    stdin: BinaryIO | None = None,
    max_workers: int | None = None,
    max_file_bytes: int = 16 * 1024 * 1024,
) -> LoadResult:
    """Read every path (file, directory, `-` for stdin) into resources.

    With `render`, every `overlays/<env>/kustomization.yaml` below a directory argument is
    rendered with kustomize (see `statekeeper.manifests.kustomize`) and the YAML files of the
    kustomize trees those overlays belong to are not read on their own. Raises InputError.
    """
    # Parsed YAML holds no reference cycles (recursive aliases are refused), so the cyclic
    # garbage collector has nothing to find; left on, it re-scans every object kept so far
    # again and again and costs ~40% of the load time on a big repo.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _load_sources(
            paths,
            render=render,
            env=env,
            overlay_envs=overlay_envs or {},
            stdin=stdin,
            max_workers=max_workers,
            max_file_bytes=max_file_bytes,
        )
    finally:
        if gc_was_enabled:
            gc.enable()


def _load_sources(
    paths: Sequence[str],
    *,
    render: bool,
    env: str | None,
    overlay_envs: Mapping[str, str],
    stdin: BinaryIO | None,
    max_workers: int | None,
    max_file_bytes: int,
) -> LoadResult:
    from statekeeper.manifests import kustomize

    result = LoadResult()
    seen_files: set[Path] = set()
    overlays: list[Path] = []
    for kind, path, tree in _expand(paths, render):
        if kind == "stdin":
            data = _read_stdin(stdin if stdin is not None else sys.stdin.buffer, max_file_bytes)
            result.sources.append(STDIN_NAME)
            add_documents(result, parse_documents(data, STDIN_NAME), STDIN_NAME, source_dir=None)
            continue
        assert path is not None
        if kind == "file":
            if _is_kustomization(path.name):
                hint = relative_to_cwd(path.parent)
                result.notes.append(
                    Note(f"a kustomization file, not manifests; to audit it pass {hint}", str(path))
                )
            elif _first_visit(seen_files, path):
                _load_file(result, path, max_file_bytes, named=True)
            continue
        assert tree is not None
        if not tree.yaml_files and not tree.kustomize_dirs:
            result.notes.append(Note("no YAML files in this directory or below", str(path)))
        files = tree.yaml_files
        if render:
            found = kustomize.overlay_dirs(tree.kustomize_dirs)
            overlays.extend(o for o in found if o not in overlays)
            files = kustomize.files_outside_rendered_trees(files, tree.kustomize_dirs, found)
        patches = _kustomize_patch_files(tree.kustomize_dirs)
        for file in files:
            if Path(os.path.normpath(file)) in patches:
                # A patch is a fragment of an object, not an object: judged on its own it
                # would be a Deployment without containers' context, in a made-up app.
                where = relative_to_cwd(patches[Path(os.path.normpath(file))])
                result.notes.append(
                    Note(f"a kustomize patch listed in {where}; skipped", relative_to_cwd(file))
                )
            elif _first_visit(seen_files, file):
                _load_file(result, file, max_file_bytes)
    if overlays:
        kustomize.render_overlays(
            result,
            overlays,
            env=env,
            overlay_envs=overlay_envs,
            max_workers=max_workers,
            max_file_bytes=max_file_bytes,
        )
    return result


def _kustomize_patch_files(kustomize_dirs: set[Path]) -> dict[Path, Path]:
    """The patch files (`patches[].path`, `patchesStrategicMerge`, `patchesJson6902[].path`)
    that the kustomization files of `kustomize_dirs` list, each → its kustomization file.
    A kustomization that cannot be read lists nothing here (rendering reports its errors)."""
    found: dict[Path, Path] = {}
    for directory in sorted(kustomize_dirs):
        for name in KUSTOMIZATION_NAMES:
            kfile = directory / name
            try:
                data = yaml.load(kfile.read_bytes(), Loader=_BaseLoader)
            except (OSError, yaml.YAMLError, RecursionError):
                continue
            if not isinstance(data, dict):
                continue
            entries: list[Any] = []
            for key in ("patches", "patchesStrategicMerge", "patchesJson6902"):
                value = data.get(key)
                if isinstance(value, list):
                    entries.extend(value)
            for entry in entries:
                ref = entry.get("path") if isinstance(entry, dict) else entry
                # An inline patch (a YAML string with a newline) names no file.
                if isinstance(ref, str) and "\n" not in ref and ref.endswith(YAML_SUFFIXES):
                    found.setdefault(Path(os.path.normpath(directory / ref)), kfile)
            break
    return found


def _first_visit(seen: set[Path], path: Path) -> bool:
    key = Path(os.path.abspath(path))  # noqa: PTH100 - normalise, keep links
    if key in seen:
        return False
    seen.add(key)
    return True


# --------------------------------------------------------------------------- debug entry


def main(argv: Sequence[str]) -> int:
    """`python -m statekeeper.manifests.load [--no-render] [--env E] PATH...`: a summary as JSON."""
    args = list(argv)
    render = "--no-render" not in args
    args = [a for a in args if a != "--no-render"]
    env = None
    if "--env" in args:
        at = args.index("--env")
        env = args[at + 1]
        del args[at : at + 2]
    try:
        result = load_sources(args or ["."], render=render, env=env)
    except InputError as err:
        sys.stderr.write(f"statekeeper: error: {err}\n")
        return err.exit_code
    summary = {
        "resources": len(result.resources),
        "other": len(result.other),
        "notes": [n.message for n in result.notes],
        "sources": result.sources,
        "origins": [
            [r.kind, r.name, r.origin.file, r.origin.line, r.origin.overlay, r.origin.environment]
            for r in result.resources[:50]
        ],
    }
    sys.stdout.write(json.dumps(summary, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
