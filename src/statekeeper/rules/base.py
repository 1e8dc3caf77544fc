"""Rule, Violation, the registry, and small helpers rules share.

A rule is a small class: an id users put in ignore annotations (`SK103`), a slug, a severity, a
title, a rationale quoting the strategy, a remediation, a bad and a good example (the docs pages
in docs/rules/ are generated from them), and `check(inventory, policy)`. Rules never parse YAML,
never print, and never build a `Finding`:

- `check` yields one `Violation(subject, message, path=None)` per problem. `subject` is what the
  problem is about: usually a `Resource` (the finding names it, and takes the app and environment
  the inventory gives it); for what has no resource of its own (a Namespace known only by name,
  a Schedule from chart values, a StatefulSet's volumeClaimTemplate, an input that could not be
  read) a `Subject` says kind, name, namespace, app and environment, and where it is reported.
- `path` is the offending field inside the subject's document (`("spec", "storageClassName")`):
  the engine reports the line of that field (or of the kustomize patch that set it), else the
  document's first line.
- `severity` on a violation lowers or raises that one problem (SK302: too often is only info;
  a joined finding takes the most severe); the policy's `rules:` severity still wins.
- The engine adds rule, severity, remediation, app, environment, file and line, then applies
  suppressions. A rule with `joins_violations = True` has its violations about one subject,
  yielded one after another, reported as one finding: `<topic>: <message>; <message>` (at the
  line of the first path; `distinct` drops repeated messages). Otherwise each violation is its
  own finding.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal, TypeVar

from statekeeper.errors import InputError
from statekeeper.findings import Severity
from statekeeper.inventory.model import FieldPath, Inventory
from statekeeper.manifests.resource import Origin, Resource
from statekeeper.policy.model import Policy

_REGISTRY: dict[str, type[Rule]] = {}


@dataclass(frozen=True, slots=True, eq=False)
class Subject:
    """What a violation is about when that is not one `Resource` as the inventory sees it.

    `at` is where the finding is reported: the document that holds the subject (a violation's
    `path` is looked up in it), or, for what no document holds, a file and line. App and
    environment are the subject's own (None: none), not the inventory's for `at`. Compared by
    identity, like a Resource: "the same subject" is the same object.
    """

    kind: str
    name: str
    at: Resource | Origin
    namespace: str | None = None
    app: str | None = None
    environment: str | None = None

    @property
    def origin(self) -> Origin:
        return self.at.origin if isinstance(self.at, Resource) else self.at


@dataclass(frozen=True, slots=True)
class Violation:
    """One problem a rule found: about `subject`, at the field `path` of its document if known.

    `severity` (rarely set) replaces the rule's severity for this problem; `topic` heads the
    message of the finding a joining rule makes of several violations (`<topic>: a; b`).
    """

    subject: Resource | Subject
    message: str
    path: FieldPath | None = None
    severity: Severity | None = None
    topic: str = ""


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
    # True: consecutive violations about one subject make one finding (see the module docstring).
    joins_violations: ClassVar[bool] = False

    def check(self, inventory: Inventory, policy: Policy) -> Iterable[Violation]:
        raise NotImplementedError


R = TypeVar("R", bound=type[Rule])


def register(cls: R) -> R:
    """Class decorator: add a rule to the registry."""
    if cls.id in _REGISTRY and _REGISTRY[cls.id] is not cls:
        raise ValueError(f"duplicate rule id {cls.id}")
    _REGISTRY[cls.id] = cls
    return cls


@functools.cache
def _rule_modules() -> tuple[str, ...]:
    """Every `rules/sk###_<slug>.py`: one rule a file, found by its name (a new rule needs no
    list to be added to)."""
    here = [str(Path(__file__).parent)]
    found = (m.name for m in pkgutil.iter_modules(here) if _RULE_FILE.fullmatch(m.name))
    return tuple(f"{__package__}.{name}" for name in sorted(found))


_RULE_FILE = re.compile(r"sk\d{3}_[a-z0-9_]+")


def all_rules() -> list[Rule]:
    """Every rule, ordered by id."""
    for module in _rule_modules():
        importlib.import_module(module)
    return [_REGISTRY[rule_id]() for rule_id in sorted(_REGISTRY)]


# --------------------------------------------------------------------------------------------
# Fixers and rule selection (by rule id or slug). The fixer of a rule is named as text: rules
# never import statekeeper.fix (fix depends on the rules, and ruamel.yaml is slow to import);
# statekeeper.fix.engine resolves the names and builds FIXABLE, the not-fixable reasons and
# `fix --help`'s list of rules from these declarations.

FixBatch = Literal["each", "per_workload", "all_at_once"]


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
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
        raise InputError(_unknown_rules(unknown, candidates, fixable))
    chosen = {by_key[key.lower()].id for key in wanted}
    return [rule for rule in candidates if rule.id in chosen]


def _unknown_rules(unknown: list[str], candidates: list[Rule], fixable: bool) -> str:
    """The one-line error for keys that name no (fixable) rule; fix names them by id."""
    valid = ", ".join(sorted(rule.id for rule in candidates))
    if not fixable:
        return f"--rule: unknown rule {unknown[0]!r}; known rules: {valid}"
    rules = all_rules()
    ids = {r.id.lower(): r.id for r in rules} | {r.slug.lower(): r.id for r in rules}
    named = sorted({ids.get(key.lower(), key.upper()) for key in unknown})
    return f"--rule {','.join(named)}: not a fixable rule (fixable: {valid})"


# --------------------------------------------------------------------------------------------


T = TypeVar("T")


def cached(inventory: Inventory, key: str, compute: Callable[[], T]) -> T:
    """A per-inventory analysis shared by several rules, computed once."""
    if key not in inventory.cache:
        inventory.cache[key] = compute()
    value: T = inventory.cache[key]
    return value


def distinct(violations: Iterable[Violation]) -> Iterator[Violation]:
    """The violations, each message once (the first violation saying it)."""
    seen: set[str] = set()
    for violation in violations:
        if violation.message not in seen:
            seen.add(violation.message)
            yield violation
