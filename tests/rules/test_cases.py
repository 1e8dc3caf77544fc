"""Every rule's cases, found by its id: tests/rules/cases/<ID>.yaml (format: casefile.py and
tests/rules/cases/README.md).

One test per entry (`SK202-fail-no-integrity-init`): the entry is audited through `run_audit`
and the findings of the checked rules must be exactly the expected ones, as a set of
(rule, kind, name), with the details (message substring, environment, line, severity) an
expectation lists. Patches of the compliant fixture check every rule, so a case that breaks
more than it means to shows up.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from statekeeper.rules.base import all_rules
from tests.rules.casefile import (
    Case,
    all_cases,
    case_files,
    describe,
    load_cases,
    merge,
    run_entry,
    unmatched_details,
)

CASES = all_cases()
RULE_IDS = sorted(rule.id for rule in all_rules())


def _param(case: Case) -> object:
    marks = []
    if case.entry.xfail:
        marks.append(pytest.mark.xfail(reason=case.entry.xfail, strict=True))
    return pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_case(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    monkeypatch.chdir(root)
    report = run_entry(case.entry, root)
    checked = case.checked_rules(RULE_IDS)
    findings = [f for f in report.findings if f.rule in checked]
    actual = {(f.rule, f.kind, f.name) for f in findings}
    assert actual == case.expected(), "findings:\n" + describe(report.findings)
    assert unmatched_details(case, findings) == [], "findings:\n" + describe(findings)


def test_every_rule_has_fail_and_pass_cases() -> None:
    files = case_files()
    assert sorted(files) == RULE_IDS, "a case file per registered rule, and no other"
    for path in files.values():
        outcomes = {case.outcome for case in load_cases(path)}
        assert outcomes == {"fail", "pass"}, f"{path.name} needs fail: and pass: entries"


def test_entries_say_what_they_show() -> None:
    """Fail entries expect a finding of their rule, pass entries none; ids are unique."""
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
    for case in CASES:
        own = {rule for rule, _, _ in case.expected() if rule == case.rule}
        assert bool(own) == (case.outcome == "fail"), case.id
        unknown = {rule for rule, _, _ in case.expected()} - set(RULE_IDS)
        assert not unknown, f"{case.id} names unknown rules {unknown}"


def test_patches_merge_like_strategic_merge_patches() -> None:
    target = {
        "spec": {
            "strategy": {"type": "Recreate"},
            "containers": [
                {"name": "app", "args": ["a", "b"], "volumeMounts": [
                    {"name": "data", "mountPath": "/data"},
                    {"name": "cfg", "mountPath": "/etc/cfg"},
                ]},
                {"name": "sidecar"},
            ],
        }
    }  # fmt: skip
    patch = {
        "spec": {
            "strategy": {"$patch": "replace", "type": "RollingUpdate"},
            "containers": [
                {"name": "app", "args": ["c"], "volumeMounts": [
                    {"mountPath": "/etc/cfg", "$patch": "delete"},
                    {"name": "other", "mountPath": "/data"},
                ]},
                {"name": "sidecar", "$patch": "delete"},
                {"name": "new"},
            ],
        }
    }  # fmt: skip
    assert merge(target, patch) == {
        "spec": {
            "strategy": {"type": "RollingUpdate"},
            "containers": [
                {"name": "app", "args": ["c"],
                 "volumeMounts": [{"name": "other", "mountPath": "/data"}]},
                {"name": "new"},
            ],
        }
    }  # fmt: skip
    assert merge({"a": 1, "b": 2}, {"a": None}) == {"b": 2}
    reordered = merge([{"name": "x"}, {"name": "y"}], [{"$patch": "replace"}, {"name": "y"}])
    assert reordered == [{"name": "y"}]
    with pytest.raises(ValueError, match="no such item"):
        merge([{"name": "x"}], [{"name": "typo", "$patch": "delete"}])


def test_a_rule_id_names_its_code_cases_and_docs_files() -> None:
    """From `SK301` alone: src/statekeeper/rules/sk301_*.py (which declares its fixer),
    tests/rules/cases/SK301.yaml and docs/rules/SK301-*.md, each exactly one file."""
    repo = Path(__file__).resolve().parents[2]
    for rule in all_rules():
        code = list((repo / "src/statekeeper/rules").glob(f"{rule.id.lower()}_*.py"))
        assert [p.name for p in code] == [f"{rule.id.lower()}_{rule.slug.replace('-', '_')}.py"]
        assert type(rule).__module__ == f"statekeeper.rules.{code[0].stem}"
        assert (repo / "tests/rules/cases" / f"{rule.id}.yaml").is_file()
        assert [p.name for p in (repo / "docs/rules").glob(f"{rule.id}-*.md")] == [
            f"{rule.id}-{rule.slug}.md"
        ]
