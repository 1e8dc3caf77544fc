"""`--format json`: the versioned document described in docs/audit.md."""

from __future__ import annotations

import json

from statekeeper import __version__
from statekeeper.findings import Report
from statekeeper.report import render

from .sample import sample_report

FINDING_KEYS = [
    "rule",
    "slug",
    "severity",
    "message",
    "remediation",
    "kind",
    "name",
    "namespace",
    "app",
    "environment",
    "file",
    "line",
]


def test_top_level_shape_and_key_order() -> None:
    data = json.loads(render(sample_report(), "json"))
    assert list(data) == ["version", "tool", "findings", "suppressed", "notes", "summary"]
    assert data["version"] == 1
    assert data["tool"] == {"name": "statekeeper", "version": __version__}


def test_findings_are_finding_dicts_in_report_order() -> None:
    report = sample_report()
    data = json.loads(render(report, "json"))
    assert all(list(f) == FINDING_KEYS for f in data["findings"])
    assert [(f["app"], f["environment"], f["rule"]) for f in data["findings"]] == [
        ("mealie", "development", "SK201"),
        ("mealie", "production", "SK201"),
        ("mealie", "production", "SK103"),
        ("syncthing", "production", "SK301"),
        (None, "development", "SK102"),
    ]
    assert data["findings"][2]["severity"] == "warning"
    assert data["findings"][2]["line"] == 2
    assert data["findings"][3]["file"] is None


def test_suppressed_carry_reason_and_notes_their_place() -> None:
    data = json.loads(render(sample_report(), "json"))
    (item,) = data["suppressed"]
    assert list(item) == [*FINDING_KEYS, "reason"]
    assert item["rule"] == "SK104" and item["reason"] == "ESPHome build caches need 5Gi"
    assert data["notes"] == [
        {"message": "skipped: not Kubernetes YAML", "file": "README.md", "line": None},
        {
            "message": "environment unknown for namespace scratch",
            "file": "extra/ns.yaml",
            "line": 4,
        },
    ]


def test_summary() -> None:
    summary = json.loads(render(sample_report(), "json"))["summary"]
    assert list(summary) == [
        "findings",
        "by_severity",
        "by_rule",
        "suppressed",
        "notes",
        "resources",
        "sources",
        "apps",
        "environments",
        "scores",
    ]
    assert summary["findings"] == 5
    assert summary["by_severity"] == {"error": 3, "warning": 1, "info": 1}
    assert summary["by_rule"] == {"SK102": 1, "SK103": 1, "SK201": 2, "SK301": 1}
    assert (summary["suppressed"], summary["notes"], summary["resources"]) == (1, 2, 42)
    assert summary["sources"] == ["overlays/dev", "overlays/prod"]
    assert summary["apps"] == ["esphome", "mealie", "syncthing", "vaultwarden", "(cluster)"]
    assert summary["environments"] == ["development", "production"]
    assert summary["scores"]["environments"] == {"development": 95, "production": 97}
    mealie_prod = {
        "app": "mealie",
        "environment": "production",
        "score": 87,
        "errors": 1,
        "warnings": 1,
        "infos": 0,
    }
    assert mealie_prod in summary["scores"]["apps"]
    assert len(summary["scores"]["apps"]) == 9


def test_empty_report_is_valid_and_deterministic() -> None:
    text = render(Report(), "json")
    assert text == render(Report(), "json")
    data = json.loads(text)
    assert data["findings"] == [] and data["summary"]["findings"] == 0
    assert data["summary"]["scores"] == {"apps": [], "environments": {}}
