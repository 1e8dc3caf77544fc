"""`run_fix`, the library entry point of `statekeeper fix`; rule selection by id or slug; the
fixable rules in `fix --help`, read from the rules' declarations only when that help is shown."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from statekeeper.errors import InputError
from statekeeper.fix import FIXABLE, run_fix
from statekeeper.rules.base import all_rules, select_rules
from tests.fix.test_golden import EXPECTED, HOMELAB, snapshot


@pytest.fixture
def homelab_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "homelab"
    shutil.copytree(HOMELAB, copy)
    return copy


def test_run_fix_dry_run_is_the_commands_diff_and_summary(homelab_copy: Path) -> None:
    before = snapshot(homelab_copy)
    run = run_fix(homelab_copy, dry_run=True)
    assert run.diff == (EXPECTED / "homelab.diff").read_text()
    assert run.written == []
    assert snapshot(homelab_copy) == before
    summary = run.summary()
    assert summary[-1] == "--diff: 16 file(s) would change, nothing written"
    assert any(
        line.startswith("cannot fix SK501 Deployment home-automation/esphome") for line in summary
    )
    assert any(line.startswith("note: mealie-data → mealie-data-pvc") for line in summary)
    assert run.exit_code == 1  # SK501 needs a person
    assert {item.rule for item in run.result.fixed} <= set(FIXABLE)


def test_run_fix_writes_and_converges(homelab_copy: Path) -> None:
    first = run_fix(homelab_copy, rules=["velero-daily-all-namespaces"])
    assert first.diff == ""  # shown only with dry_run
    assert first.result.fixed and {item.rule for item in first.result.fixed} == {"SK401"}
    assert first.summary()[-1] == "wrote 1 file(s): cluster/velero/schedule.yaml"
    second = run_fix(homelab_copy, rules=["SK401"])
    assert second.written == [] and second.summary() == ["nothing to fix"]
    assert second.exit_code == 0


@pytest.mark.parametrize("key", ["SK999", "SK501", "ignore-needs-reason"])
def test_run_fix_refuses_a_rule_it_cannot_fix_before_auditing(tmp_path: Path, key: str) -> None:
    with pytest.raises(InputError, match=rf"^--rule {key}: not a fixable rule \(fixable: SK101, "):
        run_fix(tmp_path, rules=[key], policy=tmp_path / "not read")  # the policy comes later


def test_select_rules_by_id_or_slug_in_any_case() -> None:
    chosen = select_rules(["PVC-Name,sk101", " SK401 "])
    assert [rule.id for rule in chosen] == ["SK101", "SK103", "SK401"]
    every = [rule.id for rule in all_rules()]
    assert [r.id for r in select_rules(None)] == [r.id for r in select_rules([" , "])] == every
    assert [r.id for r in select_rules(fixable=True)] == sorted(FIXABLE)


def test_select_rules_names_the_valid_ids_for_an_unknown_key() -> None:
    ids = ", ".join(rule.id for rule in all_rules())
    with pytest.raises(InputError) as caught:
        select_rules(["SK101", "nope", "SK998"])
    assert str(caught.value) == f"--rule nope,SK998: unknown rule (rules: {ids})"


def test_fix_help_lists_every_fixable_rule_in_run_order() -> None:
    from statekeeper.cli.fix import fixable_rules_table

    table = fixable_rules_table().splitlines()
    assert all(len(line) <= 78 for line in table)
    listed = [line.split()[0] for line in table[1:] if line.startswith("  SK")]
    assert listed == list(FIXABLE)
    assert "  SK103  pvc_name.py       PVC names follow <app>-<purpose>-pvc" in table
    shown = subprocess.run(
        [sys.executable, "-m", "statekeeper", "fix", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "100", "PATH": "/usr/bin:/bin", "NO_COLOR": "1"},
    )
    assert shown.returncode == 0, shown.stderr
    assert "SK401  velero.py" in shown.stdout
    assert "{rules}" not in shown.stdout


def test_root_help_loads_no_rule() -> None:
    """The table is built when `fix --help` is shown: `statekeeper --help` (and --version)
    must not import the rules (start-up time)."""
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['statekeeper', '--help']\n"
        "try:\n"
        "    runpy.run_module('statekeeper', run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    code = exit.code\n"
        "print(code, 'statekeeper.rules.base' in sys.modules, file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60
    )
    assert result.stderr.strip().splitlines()[-1] == "0 False", result.stderr
    assert "Fix the audit's findings in the source files" in result.stdout
