"""Parse YAML the way kubectl reads it, safely.

The hot path is libyaml (`yaml.CSafeLoader`) composing each document's node tree in C, then
a lean builder turning the tree into dicts and lists (PyYAML's constructor only for what it
does not handle: aliases, merge keys, explicit tags). Safety checks that need a Python walk over
the node graph (alias expansion) only run on files whose raw bytes could contain an alias;
nesting depth is bounded by libyaml itself (1000 levels), and a `RecursionError` from anywhere
below is turned into a `ReadError` too.

Scalars are typed the way kubectl (sigs.k8s.io/yaml) types them, not the way PyYAML's YAML 1.1
resolver does: no timestamps (dates stay strings), `y`/`n` are booleans, `0o755` is octal,
`1e3` is a float, `1:30` is a string. An anchor defined twice is read as kubectl reads it: the
later definition wins for the aliases after it. See docs/inputs.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from statekeeper.errors import InputError

# An alias may expand to at most this many nodes before the document counts as a "billion
# laughs" attack (and, above it, to at most ALIAS_RATIO times the document's own node count).
ALIAS_EXPANSION_LIMIT = 100_000
ALIAS_RATIO = 10

__all__ = [
    "HELM_HINT",
    "K8sLoader",
    "ParsedDocument",
    "ReadError",
    "looks_like_helm_template",
    "looks_like_manifest",
    "parse_documents",
]


class ReadError(InputError):
    """A source that cannot be read as YAML: `str()` is the one-line message naming `where`;
    `reason` is the same without `where`, `line`/`column` (1-based) where known."""

    def __init__(
        self, where: str, reason: str, line: int | None = None, column: int | None = None
    ) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason
        self.line = line
        self.column = column


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
# `{{ include "x" . }}`. Only used to explain a file that does not parse: YAML that parses is
# data (Flux HelmRelease values, helmfile, Alertmanager templates), whatever its strings hold.
_HELM_ACTION = re.compile(
    rb"\{\{-?[^}\n]*?(?:\.Values|\.Release|\.Chart|\.Capabilities|\.Files)\b"
    rb"|\{\{-?\s*include\s"
    rb"|^\s*\{\{-?\s*(?:if|end|range|with|define|template|else)\b"
    rb"|\{%-?\s*(?:if|for|end|set|else|macro|include)",  # Jinja (Ansible, Salt)
    re.MULTILINE,
)
# A Kubernetes manifest names its apiVersion and kind at the top level of a document.
_API_VERSION = re.compile(rb"^(?:- )?apiVersion:[ \t]*\S", re.MULTILINE)
_KIND = re.compile(rb"^(?:- )?kind:[ \t]*\S", re.MULTILINE)
HELM_HINT = "render it first: helm template … | statekeeper audit -"


def looks_like_helm_template(data: bytes) -> int | None:
    """The 1-based line of the first Helm (or Jinja) template action in `data`, if any."""
    match = _HELM_ACTION.search(data) if b"{{" in data or b"{%" in data else None
    return None if match is None else data.count(b"\n", 0, match.start()) + 1


def looks_like_manifest(data: bytes) -> bool:
    """True when the raw text has top-level `apiVersion:` and `kind:` keys."""
    return _API_VERSION.search(data) is not None and _KIND.search(data) is not None


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    """One YAML document: its index in the stream, first line (1-based) and parsed data."""

    index: int
    line: int
    data: Any


def parse_documents(data: bytes, where: str) -> list[ParsedDocument]:
    """Parse every document of `data`; `where` names the source in error messages.

    Raises ReadError (one line, naming `where`, the document and the line) for anything
    that is not safe, valid YAML.
    """
    if b"\x00" in data:
        raise ReadError(where, "binary file (contains NUL bytes), not YAML")
    try:
        return _parse(data, where, K8sLoader)
    except ReadError as err:
        if "found duplicate anchor" not in err.reason:
            raise
    # kubectl (go-yaml) lets a later anchor replace an earlier one: so does this slower loader.
    return _parse(data, where, _LaterAnchorWinsLoader)


def _parse(data: bytes, where: str, loader_class: type[yaml.SafeLoader]) -> list[ParsedDocument]:
    check_aliases = (
        b"&" in data
        and b"*" in data
        and _MAYBE_ANCHOR.search(data) is not None
        and _MAYBE_ALIAS.search(data) is not None
    )
    docs: list[ParsedDocument] = []
    loader = loader_class(data)
    index = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            assert node is not None  # check_node() said there is one
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
        raise ReadError(where, f"line {line}: {what} (not a UTF-8 YAML text file)", line) from None
    except yaml.MarkedYAMLError as err:
        raise _yaml_error(err, where, index, b"{{" in data) from None
    except RecursionError:
        raise ReadError(where, f"document {index + 1}: nested too deeply") from None
    except (ValueError, OverflowError) as err:  # e.g. an integer literal of 100 000 digits
        reason = "an integer literal too long" if "digits" in str(err) else str(err)
        raise ReadError(where, f"document {index + 1}: cannot read a value: {reason}") from None
    finally:
        loader.dispose()
    return docs


def _yaml_error(err: yaml.MarkedYAMLError, where: str, index: int, templated: bool) -> ReadError:
    mark = err.problem_mark or err.context_mark
    line = mark.line + 1 if mark is not None else None
    column = mark.column + 1 if mark is not None else None
    at = f"line {line}, column {column}" if mark is not None else "?"
    problem = " ".join(str(err.problem or err.context or "invalid YAML").split())
    if "maximum nesting depth" in problem:
        reason = f"document {index + 1}, {at}: nested too deeply (more than 1000 levels)"
        return ReadError(where, reason, line, column)
    if err.context and "duplicate anchor" in err.context:
        problem = "found duplicate anchor"
    hint = f"; if it is a Helm template, {HELM_HINT}" if templated else ""
    reason = f"document {index + 1}, {at}: invalid YAML: {problem}{hint}"
    return ReadError(where, reason, line, column)


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
                raise ReadError(
                    where,
                    f"document {index + 1}, line {node.start_mark.line + 1}: excessive "
                    f"aliasing (aliases expand to more than {ALIAS_EXPANSION_LIMIT} nodes)",
                    node.start_mark.line + 1,  # the reason names the line already: no column
                )
            continue
        if id(node) in sizes:
            continue
        if id(node) in open_nodes:
            raise ReadError(
                where,
                f"document {index + 1}, line {node.start_mark.line + 1}: "
                "recursive alias (a node contains itself)",
                node.start_mark.line + 1,
            )
        open_nodes.add(id(node))
        stack.append((node, True))
        stack.extend((child, False) for child in children if id(child) not in sizes)


class _LaterAnchorWinsLoader(yaml.SafeLoader):
    """PyYAML's pure-Python loader with kubectl's typing, where an anchor defined again
    replaces the earlier one (go-yaml's behaviour) instead of being an error."""

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if not self.check_event(AliasEvent):
            anchor = self.peek_event().anchor  # type: ignore[no-untyped-call]
            if anchor is not None:
                self.anchors.pop(anchor, None)
        return super().compose_node(parent, index)


_install_kubectl_resolvers(_LaterAnchorWinsLoader)
_install_lean_resolve(_LaterAnchorWinsLoader)
