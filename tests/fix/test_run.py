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


@pytest.mark.parametrize(
    ("keys", "named"),
    [
        (["SK999"], "SK999"),
        (["sk501"], "SK501"),
        (["ignore-needs-reason,SK999,sk999"], "SK001,SK999"),
    ],
)
def test_run_fix_refuses_a_rule_it_cannot_fix_before_auditing(
    tmp_path: Path, keys: list[str], named: str
) -> None:
    """Named by id, sorted, once (as before run_fix), and before the long audit."""
    expected = rf"^--rule {named}: not a fixable rule \(fixable: SK101, "
    with pytest.raises(InputError, match=expected):
        run_fix(tmp_path, rules=keys, policy=tmp_path / "not read")  # the policy comes later


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
    assert str(caught.value) == f"--rule: unknown rule 'nope'; known rules: {ids}"


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


CLAIM_OF_A_SQLITE_APP = """\
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: vaultwarden-data-pvc, namespace: vaultwarden}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: synelia-iscsi-retain
  resources:
    requests:
      storage: 2Gi
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: vaultwarden, namespace: vaultwarden}
spec:
  selector:
    matchLabels: {app: vaultwarden}
  template:
    metadata:
      labels: {app: vaultwarden}
    spec:
      containers:
        - name: vaultwarden
          image: vaultwarden/server:1.30.0
          volumeMounts: [{name: data, mountPath: /data}]
      volumes:
        - name: data
          persistentVolumeClaim: {claimName: vaultwarden-data-pvc}
"""


def test_sk104_grows_a_claim_to_the_category_the_audit_judged_it_by(tmp_path: Path) -> None:
    """`data` names no category; the audit sizes the claim as a database because the SQLite app
    mounting it keeps its database there. fix takes that judgement from the audit itself (it
    once read it back from the message, and missed it whenever the message gave evidence)."""
    (tmp_path / "app.yaml").write_text(CLAIM_OF_A_SQLITE_APP, encoding="utf-8")
    run = run_fix(tmp_path, rules=["SK104"], dry_run=True)
    assert [(item.rule, item.what) for item in run.result.fixed] == [
        ("SK104", "storage request 10Gi (database) in app.yaml")
    ]
    assert "-      storage: 2Gi\n+      storage: 10Gi\n" in run.diff
    assert run.result.cannot == []
