"""Rule cases by rule id: the format of tests/rules/cases/<ID>.yaml, and how an entry is audited.

A case file holds `fail:` and `pass:` entries for one rule (the file name is the rule id). An
entry is audited through the public front door (`run_audit` on files written to a temporary
directory) and its expected findings compared as a set of (rule, kind, name). The format is
described for authors in tests/rules/cases/README.md; in short:

    fail:
      - name: no-integrity-init            # the pytest id: SK202-fail-no-integrity-init
        patch:                             # the compliant fixture, changed by kind/name
          Deployment/vaultwarden:          # a merge patch (see `merge`)
            spec: {template: {spec: {initContainers: [{name: integrity-check, $patch: delete}]}}}
        expect:
          - Deployment/vaultwarden         # a finding of this rule on that subject, or
          - {subject: Deployment/vaultwarden, message: "no integrity-check", line: 70}
          - {rule: SK203, subject: Deployment/vaultwarden}   # a finding of another rule
    pass:
      - name: check-in-restore-init
        manifests: |                       # standalone manifests instead of a patch
          apiVersion: apps/v1
          ...

An entry's input is exactly one of:
- `patch:` (`Kind/name` of a document of tests/rules/fixtures/compliant.yaml -> a merge patch,
  or null to delete the document) and/or `add:` (documents appended to the fixture): every
  rule is checked, so a patch that makes another rule fire must list that finding;
- `manifests:` a multi-document YAML text: the entry's rule, and the rules its `expect:` names,
  are checked;
- `files:` a tree (relative path -> text; `!!binary` for bytes; `{symlink: target}` for a
  link) audited with kustomize rendering, like `statekeeper audit <dir>` (SK002/SK003): the
  same rules as `manifests:` are checked. `audit:` lists the paths to audit (default `.`).

`env:` is the audit's `--env`, `policy:` a policy file's content (the built-in policy
otherwise), `xfail:` a reason the entry shows a known bug (strict xfail: it must fail).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from statekeeper.engine import run_audit
from statekeeper.findings import Finding, Report
from statekeeper.policy.load import load_policy

CASES = Path(__file__).parent / "cases"
COMPLIANT = Path(__file__).parent / "fixtures" / "compliant.yaml"
RULE_ID = re.compile(r"^SK\d{3}$")
ENTRY_NAME = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")

Doc = dict[str, Any]


# --- the merge patch -------------------------------------------------------------------------


def merge(target: Any, patch: Any) -> Any:
    """`target` changed by `patch`, the way a kustomize strategic-merge patch reads:

    - mappings merge key by key; a null value deletes the key; `$patch: replace` in a mapping
      replaces the mapping with the rest of the patch instead of merging;
    - a list of mappings that all have a `name` (containers, volumes, env, ...) merges item
      by item by name, volume mounts by `mountPath`: a new item is appended,
      `{name: x, $patch: delete}` deletes item x; a list starting with `{$patch: replace}`
      is replaced by its other items (also the way to reorder);
    - any other value replaces the target's.
    """
    if isinstance(patch, dict):
        if patch.get("$patch") == "replace":
            return {k: v for k, v in patch.items() if k != "$patch"}
        if not isinstance(target, dict):
            target = {}
        result = dict(target)
        for key, value in patch.items():
            if value is None:
                result.pop(key, None)
            else:
                result[key] = merge(result.get(key), value)
        return result
    if isinstance(patch, list):
        if patch and isinstance(patch[0], dict) and patch[0].get("$patch") == "replace":
            return [_strip(item) for item in patch[1:]]
        key = _merge_key(patch)
        if key and (target is None or (isinstance(target, list) and _merge_key(target) == key)):
            return _merge_keyed(target or [], patch, key)
        return [_strip(item) for item in patch]
    return patch


def _merge_key(items: list[Any]) -> str | None:
    """What list items are merged by, as in Kubernetes: volume mounts by `mountPath`, the
    other named lists (containers, volumes, env, ...) by `name`; None: the list is replaced."""
    if not items or not all(isinstance(i, dict) for i in items):
        return None
    return next((k for k in ("mountPath", "name") if all(k in i for i in items)), None)


def _merge_keyed(target: list[Doc], patch: list[Doc], key: str) -> list[Doc]:
    keys = [item[key] for item in target]
    if len(set(keys)) != len(keys):
        raise ValueError(f"cannot merge by {key}: duplicates in {keys}")
    result = list(target)
    for item in patch:
        index = next((i for i, t in enumerate(result) if t[key] == item[key]), None)
        if item.get("$patch") == "delete":
            if index is None:
                raise ValueError(f"$patch: delete of {item[key]!r}: no such item")
            del result[index]
        elif index is None:
            result.append(_strip(item))
        else:
            result[index] = merge(result[index], item)
    return result


def _strip(value: Any) -> Any:
    """A patch value as a plain value (directives only make sense where something merges)."""
    if isinstance(value, dict):
        if "$patch" in value:
            raise ValueError(f"$patch directive where nothing is merged: {value}")
        return {k: _strip(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


# --- the case files --------------------------------------------------------------------------


class Expected(BaseModel):
    """One expected finding: `subject` is `Kind/name` (the name may hold slashes)."""

    model_config = ConfigDict(extra="forbid")

    subject: str
    rule: str | None = None
    message: str | None = None  # a substring of the message
    environment: str | None = Field(default=None)
    line: int | None = None
    severity: Literal["error", "warning", "info"] | None = None

    @model_validator(mode="after")
    def _well_formed(self) -> Expected:
        if "/" not in self.subject.strip("/"):
            raise ValueError(f"subject {self.subject!r} is not Kind/name")
        if self.rule is not None and not RULE_ID.match(self.rule):
            raise ValueError(f"rule {self.rule!r} is not a rule id (SK###)")
        return self

    @property
    def kind(self) -> str:
        return self.subject.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.subject.split("/", 1)[1]

    def matches(self, finding: Finding) -> bool:
        """Does the finding (already of this rule and subject) have the listed details?"""
        if self.message is not None and self.message not in finding.message:
            return False
        if "environment" in self.model_fields_set and finding.environment != self.environment:
            return False
        if self.line is not None and finding.line != self.line:
            return False
        return self.severity is None or finding.severity.value == self.severity


class Entry(BaseModel):
    """One `fail:` or `pass:` entry of a case file."""

    model_config = ConfigDict(extra="forbid")

    name: str
    patch: dict[str, Doc | None] | None = None
    add: list[Doc] | None = None
    manifests: str | None = None
    files: dict[str, Any] | None = None
    audit: list[str] | None = None
    env: str | None = None
    policy: Doc | None = None
    expect: list[Expected] = Field(default_factory=list)
    xfail: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _short_expectations(cls, data: Any) -> Any:
        """`- Kind/name` and `- SK203 Kind/name` are short for `{subject: ...}`."""
        if isinstance(data, dict) and isinstance(data.get("expect"), list):
            data = dict(data)
            data["expect"] = [_expected(item) for item in data["expect"]]
        return data

    @model_validator(mode="after")
    def _one_input(self) -> Entry:
        if not ENTRY_NAME.match(self.name):
            raise ValueError(f"name {self.name!r} must be kebab-case (it is the test id)")
        forms = [
            self.patch is not None or self.add is not None,
            self.manifests is not None,
            self.files is not None,
        ]
        if sum(forms) != 1:
            raise ValueError(f"{self.name}: give exactly one of patch/add, manifests, files")
        if self.audit is not None and self.files is None:
            raise ValueError(f"{self.name}: audit: only goes with files:")
        return self

    @property
    def on_fixture(self) -> bool:
        return self.patch is not None or self.add is not None


def _expected(item: Any) -> Any:
    if not isinstance(item, str):
        return item
    rule, _, subject = item.partition(" ")
    return {"rule": rule, "subject": subject} if subject else {"subject": item}


class CaseFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fail: list[Entry] = Field(default_factory=list)
    pass_: list[Entry] = Field(default_factory=list, alias="pass")


@dataclass(frozen=True)
class Case:
    """One entry, ready to run: `outcome` is "fail" or "pass"."""

    rule: str
    outcome: str
    entry: Entry

    @property
    def id(self) -> str:
        return f"{self.rule}-{self.outcome}-{self.entry.name}"

    def expected(self) -> set[tuple[str, str, str]]:
        return {(e.rule or self.rule, e.kind, e.name) for e in self.entry.expect}

    def checked_rules(self, every_rule: Iterable[str]) -> set[str]:
        """The rules whose findings must be exactly the expected ones."""
        if self.entry.on_fixture:
            return set(every_rule)
        return {self.rule, *(e.rule for e in self.entry.expect if e.rule)}


def case_files() -> dict[str, Path]:
    """Rule id -> its case file."""
    return {path.stem: path for path in sorted(CASES.glob("*.yaml"))}


def load_cases(path: Path) -> list[Case]:
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader) or {}
    parsed = CaseFile.model_validate(data)
    rule = path.stem
    return [Case(rule, "fail", e) for e in parsed.fail] + [
        Case(rule, "pass", e) for e in parsed.pass_
    ]


def all_cases() -> list[Case]:
    return [case for path in case_files().values() for case in load_cases(path)]


# --- running an entry ------------------------------------------------------------------------


@cache
def _compliant() -> tuple[Doc, ...]:
    text = COMPLIANT.read_text(encoding="utf-8")
    return tuple(d for d in yaml.load_all(text, Loader=yaml.CSafeLoader) if d)


def compliant_docs() -> list[Doc]:
    """A fresh copy of the compliant fixture's documents."""
    return copy.deepcopy(list(_compliant()))


def patched_fixture(entry: Entry) -> str:
    """The compliant fixture with the entry's patch and added documents, as YAML text."""
    docs = compliant_docs()
    for subject, patch in (entry.patch or {}).items():
        kind, _, name = subject.partition("/")
        index = next(
            (i for i, d in enumerate(docs) if d["kind"] == kind and d["metadata"]["name"] == name),
            None,
        )
        if index is None:
            raise ValueError(f"{entry.name}: patch target {subject} is not in compliant.yaml")
        if patch is None:
            del docs[index]
        else:
            docs[index] = merge(docs[index], patch)
    docs.extend(_strip(doc) for doc in entry.add or [])
    return yaml.dump_all(docs, Dumper=yaml.CSafeDumper, sort_keys=False, width=1000)


def write_tree(root: Path, files: dict[str, Any]) -> None:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, dict) and set(content) == {"symlink"}:
            path.symlink_to(content["symlink"])
        elif isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            raise ValueError(f"files: {relative}: give text, !!binary or {{symlink: target}}")


def run_entry(entry: Entry, root: Path) -> Report:
    """Audit the entry's input with `run_audit`, from files written to `root`, which must be
    the current directory (files are audited by relative paths, as a user in their repo would;
    a policy goes beside `root`, not in the audited tree)."""
    policy = load_policy()
    if entry.policy is not None:
        policy_file = root.parent / "policy.yaml"
        policy_file.write_text(yaml.safe_dump(entry.policy), encoding="utf-8")
        policy = load_policy(policy_file)
    if entry.files is not None:
        write_tree(root, entry.files)
        return run_audit(entry.audit or ["."], policy=policy, env=entry.env, quiet=True)
    text = patched_fixture(entry) if entry.on_fixture else entry.manifests or ""
    (root / "manifests.yaml").write_text(text, encoding="utf-8")
    return run_audit(["manifests.yaml"], policy=policy, env=entry.env, render=False, quiet=True)


def unmatched_details(case: Case, findings: list[Finding]) -> list[Expected]:
    """Expectations with details (message, line, ...) no finding of their subject has."""
    missing = []
    for expected in case.entry.expect:
        rule = expected.rule or case.rule
        of_subject = [
            f for f in findings if (f.rule, f.kind, f.name) == (rule, expected.kind, expected.name)
        ]
        if of_subject and not any(expected.matches(f) for f in of_subject):
            missing.append(expected)
    return missing


def describe(findings: Iterable[Finding]) -> str:
    return "\n".join(
        f"  {f.rule} {f.kind}/{f.name} [{f.severity.value}, {f.environment}, line {f.line}]: "
        f"{f.message}"
        for f in findings
    )
