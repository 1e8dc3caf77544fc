"""The engine: suppressions, SK001, rule selection, severity overrides, report fields."""

from __future__ import annotations

from pathlib import Path

import pytest

from statekeeper.engine import evaluate, run_audit
from statekeeper.errors import InputError
from statekeeper.findings import Severity
from statekeeper.policy.load import load_policy
from statekeeper.rules.annotations import parse_ignore
from statekeeper.rules.base import all_rules
from statekeeper.rules.docs import render_pages, stale_pages
from tests.rules.util import audit, fixture, found, inventory_of

REPO = Path(__file__).resolve().parents[2]

BIG_CONFIG_PVC = """\
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: esphome-config-pvc
  annotations:
    statekeeper.io/ignore: {ignore}
spec:
  storageClassName: synelia-iscsi-retain
  resources: {{requests: {{storage: 5Gi}}}}
"""


def test_ignore_with_reason_moves_finding_to_suppressed() -> None:
    text = BIG_CONFIG_PVC.format(ignore='"SK104: PlatformIO toolchains, 5Gi measured"')
    report = audit(text, env="prod")
    assert report.findings == []
    (suppressed,) = report.suppressed
    assert suppressed.finding.rule == "SK104"
    assert suppressed.reason == "PlatformIO toolchains, 5Gi measured"


def test_ignore_by_slug_and_several_entries() -> None:
    text = BIG_CONFIG_PVC.format(ignore='"pvc-size: measured, SK106: not relevant"')
    report = audit(text, env="prod")
    assert [s.finding.rule for s in report.suppressed] == ["SK104"]
    assert report.findings == []


def test_ignore_without_reason_is_not_honoured_and_is_a_finding() -> None:
    report = audit(BIG_CONFIG_PVC.format(ignore="SK104"), env="prod")
    assert found(report) == [
        ("SK001", "PersistentVolumeClaim", "esphome-config-pvc"),
        ("SK104", "PersistentVolumeClaim", "esphome-config-pvc"),
    ]
    assert report.suppressed == []


def test_sk001_cannot_be_suppressed() -> None:
    report = audit(BIG_CONFIG_PVC.format(ignore='"SK104, SK001: no"'), env="prod")
    assert ("SK001", "PersistentVolumeClaim", "esphome-config-pvc") in found(report)


def test_unknown_rule_in_ignore_is_a_note() -> None:
    report = audit(BIG_CONFIG_PVC.format(ignore='"SK999: typo"'), env="prod")
    assert any("unknown rule 'SK999'" in note.message for note in report.notes)


def test_suppression_is_per_environment_object() -> None:
    """The annotation on the prod copy does not silence the dev copy of the same PVC."""
    prod = BIG_CONFIG_PVC.format(ignore='"SK104: measured"')
    dev = BIG_CONFIG_PVC.format(ignore='"SK103: other"')
    resources_prod = inventory_of(prod, overlay="overlays/prod", environment="prod").resources
    resources_dev = inventory_of(dev, overlay="overlays/dev", environment="dev").resources
    from statekeeper.inventory.build import build_inventory

    policy = load_policy()
    inventory = build_inventory([*resources_prod, *resources_dev], [], policy)
    report = evaluate(inventory, policy, only=["SK104"])
    assert [(f.rule, f.environment) for f in report.findings] == [("SK104", "development")]
    assert [(s.finding.rule, s.finding.environment) for s in report.suppressed] == [
        ("SK104", "production")
    ]


def test_pod_template_annotation_suppresses_workload_finding() -> None:
    text = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: syncthing, namespace: sync}
spec:
  template:
    metadata:
      annotations:
        statekeeper.io/ignore: "SK301: synced by the NAS snapshot job"
    spec:
      containers:
        - name: syncthing
          image: syncthing/syncthing
          volumeMounts: [{name: config, mountPath: /config}]
      volumes: [{name: config, persistentVolumeClaim: {claimName: syncthing-config-pvc}}]
"""
    report = audit(text, only=["SK301"])
    assert report.findings == []
    assert [s.reason for s in report.suppressed] == ["synced by the NAS snapshot job"]


@pytest.mark.parametrize(
    ("value", "rules", "bad"),
    [
        ("SK103: a, b, SK104: c", [("SK103", "a, b"), ("SK104", "c")], []),
        ("SK103: one\nSK104: two", [("SK103", "one"), ("SK104", "two")], []),
        ("SK103", [("SK103", "")], []),
        ("pvc-name: renamed later", [("pvc-name", "renamed later")], []),
        ("just words", [], ["just words"]),
    ],
)
def test_parse_ignore(value: str, rules: list[tuple[str, str]], bad: list[str]) -> None:
    entries, unparsable = parse_ignore(value)
    assert [(e.rule, e.reason) for e in entries] == rules
    assert unparsable == bad


def test_backup_none_needs_a_reason() -> None:
    text = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: scratch
  annotations: {{statekeeper.io/backup: "{value}"}}
spec:
  template:
    spec:
      containers:
        - name: app
          image: ghcr.io/example/app
          volumeMounts: [{{name: config, mountPath: /config}}]
      volumes: [{{name: config, persistentVolumeClaim: {{claimName: scratch-config-pvc}}}}]
"""
    assert found(audit(text.format(value="none: cache only, rebuilt at start"))) == []
    assert found(audit(text.format(value="none"))) == [
        ("SK001", "Deployment", "scratch"),
        ("SK301", "Deployment", "scratch"),
    ]


def test_only_severity_override_and_disable() -> None:
    text = BIG_CONFIG_PVC.format(ignore="SK104").replace(
        "  storageClassName: synelia-iscsi-retain\n", ""
    )
    assert {f.rule for f in audit(text, env="prod").findings} == {"SK001", "SK104", "SK106"}
    assert {f.rule for f in audit(text, env="prod", only=["pvc-size"]).findings} == {"SK104"}
    tmp = REPO / "tests" / "rules" / "fixtures" / "override-policy.yaml"
    policy = load_policy(tmp)
    report = audit(text, env="prod", policy=policy)
    assert {f.rule: f.severity for f in report.findings} == {
        "SK001": Severity.WARNING,
        "SK104": Severity.INFO,
    }


def test_report_apps_and_counts() -> None:
    text = BIG_CONFIG_PVC.format(ignore='"SK104: ok"').replace(
        "  annotations:", "  labels: {app: esphome}\n  annotations:"
    )
    report = audit(text, env="dev")
    assert report.apps == {"esphome": {"development"}}
    assert report.resources == 1


def test_run_audit_reads_files_and_skips_non_kubernetes(tmp_path: Path) -> None:
    pvc = BIG_CONFIG_PVC.format(ignore='"SK104: ok"')
    (tmp_path / "pvc.yaml").write_text(
        pvc.replace("  annotations:", "  labels: {app: esphome}\n  annotations:")
    )
    (tmp_path / "values.yaml").write_text("replicaCount: 2\nimage: {tag: x}\n")
    report = run_audit([str(tmp_path)], policy=load_policy(), env="production", render=False)
    assert report.findings == []
    assert len(report.suppressed) == 1
    assert any(n.message == "skipped: not a Kubernetes object" for n in report.notes)


def test_rule_docs_are_up_to_date() -> None:
    """docs/rules/ is generated from the rules: run `make docs` after changing a rule."""
    assert stale_pages(REPO / "docs" / "rules") == []
    pages = render_pages()
    assert "README.md" in pages
    assert len(pages) == len(all_rules()) + 1  # one page per rule and the index
    for name, text in pages.items():
        if name != "README.md":
            assert "## Why" in text and "## Non-compliant" in text and "## Compliant" in text


def test_evaluate_only_selects_rules_none_is_all_and_empty_is_none() -> None:
    text = fixture("compliant.yaml").replace("esphome-config-pvc", "esphomeconfig")  # SK103
    inventory = inventory_of(text, env="production")
    policy = load_policy()
    assert "SK103" in {f.rule for f in evaluate(inventory, policy).findings}
    assert {f.rule for f in evaluate(inventory, policy, only=["pvc-name"]).findings} == {"SK103"}
    assert evaluate(inventory, policy, only=[]).findings == []
    with pytest.raises(InputError, match=r"^--rule: unknown rule 'SK999'; known rules: SK001, "):
        evaluate(inventory, policy, only=["SK999"])
