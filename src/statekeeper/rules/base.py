"""Rule, the registry, and helpers every rule uses to build findings.

A rule is a small class: an id users put in ignore annotations (`SK103`), a slug, a severity, a
title, a rationale quoting the strategy, a remediation, a bad and a good example (the docs pages
in docs/rules/ are generated from them), and `check(inventory, policy)` yielding findings. Rules
never parse YAML and never print.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Literal, TypeVar

from statekeeper.errors import InputError
from statekeeper.findings import Finding, Severity
from statekeeper.inventory.model import FieldPath, Inventory
from statekeeper.manifests.resource import Resource
from statekeeper.policy.model import Policy

_RULE_MODULES = (
    "statekeeper.rules.annotations",
    "statekeeper.rules.inputs",
    "statekeeper.rules.storage",
    "statekeeper.rules.sqlite",
    "statekeeper.rules.config",
    "statekeeper.rules.velero",
    "statekeeper.rules.credentials",
)
_REGISTRY: dict[str, type[Rule]] = {}


class Rule:
    """One requirement of the strategy. Subclasses set the class attributes and `check`."""

    id: ClassVar[str]
    slug: ClassVar[str]
    severity: ClassVar[Severity]
    title: ClassVar[str]
    rationale: ClassVar[str]  # quotes STORAGE-STRATEGY.md
    remediation: ClassVar[str]
    bad_example: ClassVar[str]
    good_example: ClassVar[str]
    # Which fixer of `statekeeper fix` repairs it, or why none does (see FixedBy below).
    fix: ClassVar[FixedBy | NotFixable]
    # Extra documentation (how the rule decides), shown on its docs page.
    details: ClassVar[str] = ""

    def check(self, inventory: Inventory, policy: Policy) -> Iterable[Finding]:
        raise NotImplementedError

    def finding(
        self,
        inventory: Inventory,
        resource: Resource,
        message: str,
        *,
        kind: str | None = None,
        name: str | None = None,
        namespace: str | type[_Default] | None = None,
        app: str | type[_Default] | None = None,
        environment: str | type[_Default] | None = None,
        path: FieldPath | None = None,
    ) -> Finding:
        """A finding about `resource` (or the object named by kind/name), at the document's
        first line. `path` (the offending field inside the resource) is kept aside in the
        inventory; the engine turns it into the field's exact line for the findings it reports,
        reading each file once (see `resolve_lines`)."""
        if namespace is None:
            namespace = resource.namespace
        elif namespace is _Default:
            namespace = None
        finding = Finding(
            rule=self.id,
            slug=self.slug,
            severity=self.severity,
            message=message,
            remediation=self.remediation,
            kind=kind or resource.kind,
            name=name if name is not None else resource.name,
            namespace=namespace if isinstance(namespace, str) else None,
            app=_pick(app, inventory.app(resource)),
            environment=_pick(environment, inventory.environment(resource)),
            file=resource.origin.file,
            line=resource.origin.line,
        )
        if path is not None:
            pending_locations(inventory)[id(finding)] = (resource, path)
        return finding


class _Default:
    """Marker: "no value" where None already means "use the resource's"."""


NONE = _Default


def _pick(value: str | type[_Default] | None, fallback: str | None) -> str | None:
    if value is _Default:
        return None
    if value is None:
        return fallback
    return value if isinstance(value, str) else None


_field_line: Callable[[Resource, FieldPath], int | None] | None = None
_patch_location: Callable[[Resource, FieldPath], tuple[str, int] | None] | None = None
_field_line_loaded = False


def locate(resource: Resource, path: FieldPath | None) -> int:
    """The line of `path` in the resource's file (lazily, via the loader), else its first line."""
    global _field_line, _patch_location, _field_line_loaded
    if not _field_line_loaded:
        _field_line_loaded = True
        try:
            module = importlib.import_module("statekeeper.manifests.lines")
            _field_line = getattr(module, "field_line", None)
            _patch_location = getattr(module, "patch_location", None)
        except ImportError:
            _field_line = None
    if path is not None and _field_line is not None:
        try:
            line = _field_line(resource, path)
        except Exception:  # a locator problem must never hide a finding
            line = None
        if line:
            return line
    return resource.origin.line


def locate_patch(resource: Resource, path: FieldPath | None) -> tuple[str, int] | None:
    """(file, line) of the kustomize patch that set `path` in a rendered resource, if one did."""
    if path is None or not resource.origin.patched_in:
        return None
    locate(resource, None)  # loads the locators once
    if _patch_location is None:
        return None
    try:
        return _patch_location(resource, path)
    except Exception:  # a locator problem must never hide a finding
        return None


def pending_locations(inventory: Inventory) -> dict[int, tuple[Resource, FieldPath]]:
    """id(finding) -> (resource, field path) for findings whose exact line is still to find."""
    table: dict[int, tuple[Resource, FieldPath]] = inventory.cache.setdefault("_locations", {})
    return table


def resolve_lines(
    findings: list[tuple[Finding, tuple[Resource, FieldPath] | None]],
) -> list[Finding]:
    """Findings with the exact line of their field, visiting files in order so each file is
    re-read at most once (the loader's line cache holds a few files)."""
    order = sorted(range(len(findings)), key=lambda i: findings[i][0].file or "")
    result: list[Finding] = [finding for finding, _ in findings]
    for index in order:
        finding, location = findings[index]
        if location is None:
            continue
        patched = locate_patch(*location)
        if patched is not None and patched != (finding.file, finding.line):
            result[index] = dataclasses.replace(finding, file=patched[0], line=patched[1])
            continue
        line = locate(*location)
        if line != finding.line:
            result[index] = dataclasses.replace(finding, line=line)
    return result


R = TypeVar("R", bound=type[Rule])


def register(cls: R) -> R:
    """Class decorator: add a rule to the registry."""
    if cls.id in _REGISTRY and _REGISTRY[cls.id] is not cls:
        raise ValueError(f"duplicate rule id {cls.id}")
    _REGISTRY[cls.id] = cls
    return cls


def all_rules() -> list[Rule]:
    """Every rule, ordered by id."""
    for module in _RULE_MODULES:
        importlib.import_module(module)
    return [_REGISTRY[rule_id]() for rule_id in sorted(_REGISTRY)]


# --------------------------------------------------------------------------------------------
# Fixers and rule selection (by rule id or slug). The fixer of a rule is named as text: rules
# never import statekeeper.fix (fix depends on the rules, and ruamel.yaml is slow to import);
# statekeeper.fix.engine resolves the names and builds FIXABLE, the not-fixable reasons and
# `fix --help`'s list of rules from these declarations.

FixBatch = Literal["each", "per_workload", "all_at_once"]


@dataclasses.dataclass(frozen=True, slots=True)
class FixedBy:
    """`statekeeper fix` repairs the rule with `target`, a function named like an entry point:
    `"statekeeper.fix.pvc_name:fix"` is `fix()` in `src/statekeeper/fix/pvc_name.py`.

    `step` orders the fixers (lower first; rules sharing a fixer give the same step).
    `batch` says how the fixer takes the findings, grouped per (rule, object):
      each          `function(ctx, group)`, once per group
      per_workload  `function(ctx, groups)`, once per workload, with its groups of every rule
                    this fixer repairs (one edit of the pod adds the whole backup)
      all_at_once   `function(ctx, groups)`, once, with every group (one cluster-wide object)
    """

    target: str
    step: int
    batch: FixBatch = "each"

    def __post_init__(self) -> None:
        module, sep, function = self.target.partition(":")
        if not (sep and function.isidentifier() and module.startswith("statekeeper.fix.")):
            raise ValueError(f"FixedBy({self.target!r}): not 'statekeeper.fix.<module>:<function>'")

    @property
    def module(self) -> str:
        """The module to import, `statekeeper.fix.pvc_name`."""
        return self.target.partition(":")[0]

    @property
    def function(self) -> str:
        return self.target.partition(":")[2]

    @property
    def file(self) -> str:
        """The fixer's file, `statekeeper/fix/pvc_name.py`."""
        return self.module.replace(".", "/") + ".py"


@dataclasses.dataclass(frozen=True, slots=True)
class NotFixable:
    """`statekeeper fix` does not repair the rule: `reason` says why, and what to do instead
    (shown for each such finding, and on the rule's docs page)."""

    reason: str


def fixable_rules() -> list[Rule]:
    """The rules `statekeeper fix` repairs, ordered by id."""
    return [rule for rule in all_rules() if isinstance(rule.fix, FixedBy)]


def select_rules(keys: Iterable[str] | None = None, *, fixable: bool = False) -> list[Rule]:
    """The rules named by `keys`, ordered by id; every rule when no key is given.

    A key is an id (`SK103`) or a slug (`pvc-name`), in any case; one value may hold several,
    comma-separated (`--rule SK101,pvc-name`). With `fixable`, only the rules with a fixer are
    candidates. An unknown key is an InputError naming the valid ids. `audit --rule`,
    `fix --rule` and the fix planner all select rules here."""
    candidates = fixable_rules() if fixable else all_rules()
    wanted = [k.strip() for value in keys or () for k in value.split(",") if k.strip()]
    if not wanted:
        return candidates
    by_key = {rule.id.lower(): rule for rule in candidates}
    by_key.update((rule.slug.lower(), rule) for rule in candidates)
    unknown = [key for key in wanted if key.lower() not in by_key]
    if unknown:
        valid = ", ".join(rule.id for rule in candidates)
        problem = "not a fixable rule (fixable" if fixable else "unknown rule (rules"
        raise InputError(f"--rule {','.join(unknown)}: {problem}: {valid})")
    chosen = {by_key[key.lower()].id for key in wanted}
    return [rule for rule in candidates if rule.id in chosen]


# --------------------------------------------------------------------------------------------


T = TypeVar("T")


def cached(inventory: Inventory, key: str, compute: Callable[[], T]) -> T:
    """A per-inventory analysis shared by several rules, computed once."""
    if key not in inventory.cache:
        inventory.cache[key] = compute()
    value: T = inventory.cache[key]
    return value


def join_problems(problems: list[str]) -> str:
    return "; ".join(problems)


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def shown(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)
