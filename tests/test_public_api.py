"""The public API of `statekeeper/__init__.py`: lazily imported names, and README's example."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import statekeeper
from statekeeper.engine import evaluate, run_audit
from statekeeper.errors import StatekeeperError
from statekeeper.findings import Finding, Report, Severity
from statekeeper.policy.load import load_policy
from statekeeper.policy.model import Policy

REPO = Path(__file__).resolve().parent.parent

# The objects the names stand for, imported from their modules here (the test's own map).
PUBLIC: dict[str, Any] = {
    obj.__name__: obj
    for obj in (
        run_audit, evaluate, load_policy, Policy, Report, Finding, Severity, StatekeeperError
    )
}  # fmt: skip


def _imported_by(code: str) -> list[str]:
    """Every module `python -X importtime -c code` reports importing, in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    # lines: "import time: self [us] | cumulative | imported package"
    rows = [line.split("|") for line in done.stderr.splitlines() if line.startswith("import time:")]
    return [row[-1].strip() for row in rows if len(row) == 3]


def test_import_statekeeper_loads_no_rule_inventory_or_pydantic_module() -> None:
    modules = _imported_by("import statekeeper")
    assert "statekeeper" in modules  # the report was parsed
    heavy = [
        m
        for m in modules
        if m.startswith(("statekeeper.rules", "statekeeper.inventory", "pydantic"))
    ]
    assert heavy == []
    assert [m for m in modules if m.startswith("statekeeper")] == ["statekeeper"]


def test_the_parse_sees_a_heavy_import_when_there_is_one() -> None:
    # The same check on a name that needs the engine: it must find the modules it forbids above.
    modules = _imported_by("import statekeeper; statekeeper.run_audit")
    assert "statekeeper.rules.base" in modules and "pydantic" in modules


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_each_public_name_is_the_object_of_its_module(name: str) -> None:
    assert getattr(statekeeper, name) is PUBLIC[name]


def test_all_lists_the_public_names_and_unknown_names_fail() -> None:
    assert sorted(statekeeper.__all__) == sorted(PUBLIC)
    assert set(PUBLIC) <= set(dir(statekeeper))
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = statekeeper.no_such_name  # type: ignore[attr-defined]


def _readme_example() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("<!-- python-api:start")
    region = text[start : text.index("<!-- python-api:end", start)]
    return region.split("```python\n", 1)[1].split("```", 1)[0]


def test_readme_example_runs_and_prints_the_audit_counts() -> None:
    code = _readme_example()
    assert len(code.strip().splitlines()) <= 5
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env
    )
    assert done.returncode == 0, done.stderr
    report = statekeeper.run_audit(
        [str(REPO / "examples/homelab")], policy=statekeeper.load_policy(), quiet=True
    )
    errors = [f for f in report.findings if f.severity is statekeeper.Severity.ERROR]
    assert errors, "the homelab example has error findings"
    assert done.stdout == f"{len(report.findings)} findings, {len(errors)} errors\n"
