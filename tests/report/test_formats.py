"""junit, markdown, github and codequality reporters: shape (JUnit against an XSD), contents,
escaping, paths relative to the repository root."""

from __future__ import annotations

import json
from pathlib import Path

from lxml import etree

from statekeeper.findings import Report, Severity
from statekeeper.report import ReportContext, render

from .sample import RULES, finding, sample_report

XSD = etree.XMLSchema(etree.parse(str(Path(__file__).parent / "junit.xsd")))
CONTEXT = ReportContext(rules=RULES, srcroot="/repo", cwd="/repo/apps")


def junit(report: Report) -> etree._Element:
    text = render(report, "junit", context=CONTEXT)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    root = etree.fromstring(text.encode())
    XSD.assertValid(root)
    return root


def test_junit_validates_and_has_one_case_per_rule_and_object() -> None:
    root = junit(sample_report())
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert list(suites) == [
        "SK102 reclaim-policy",
        "SK103 pvc-name",
        "SK104 pvc-size",
        "SK201 sqlite-needs-litestream-sidecar",
        "SK301 config-needs-rclone-sidecar",
    ]
    sk201 = suites["SK201 sqlite-needs-litestream-sidecar"]
    names = [c.get("name") for c in sk201.findall("testcase")]
    assert names == [
        "development: Deployment mealie/mealie",
        "production: Deployment mealie/mealie",
    ]
    failure = sk201.findall("testcase")[1].find("failure")
    assert failure is not None and failure.get("type") == "error"
    assert failure.get("message") == (
        "SQLite database /app/data/mealie.db is not replicated by litestream."
    )
    assert failure.text == (
        "apps/base/mealie/deployment.yaml:1\n"
        "fix: Add a litestream sidecar that replicates /app/data/mealie.db to S3."
    )
    skipped = suites["SK104 pvc-size"].find("testcase/skipped")
    assert skipped is not None and skipped.get("message") == (
        "suppressed: ESPHome build caches need 5Gi"
    )
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("6", "5", "1")


def test_junit_clean_rules_pass_and_schema_can_fail() -> None:
    root = junit(Report())
    assert [s.get("name") for s in root.findall("testsuite")] == [
        "SK102 reclaim-policy",
        "SK103 pvc-name",
        "SK201 sqlite-needs-litestream-sidecar",
    ]
    assert all(s.find("testcase/failure") is None for s in root.findall("testsuite"))
    bad = etree.fromstring(b"<testsuites><testsuite name='x'><case/></testsuite></testsuites>")
    assert not XSD.validate(bad)


def test_markdown_table() -> None:
    text = render(sample_report(), "markdown", context=CONTEXT)
    lines = text.splitlines()
    assert lines[0] == "## statekeeper audit: 5 findings (3 errors, 1 warning, 1 info)"
    assert "| severity | rule | object | environments | location | message |" in lines
    url = "https://github.com/statekeeper/statekeeper/blob/main/docs/rules/"
    sk103 = next(line for line in lines if "pvc-name" in line and line.startswith("|"))
    assert sk103 == (
        f"| warning | [SK103]({url}SK103-pvc-name.md) pvc-name | "
        "PersistentVolumeClaim mealie/mealie-data | production | `apps/base/mealie/pvc.yaml:2` | "
        'PVC name "mealie-data" does not match &lt;app&gt;-&lt;purpose&gt;-pvc. |'
    )
    # one row for both environments of one line
    sk201 = [line for line in lines if line.startswith("| error | [SK201]")]
    assert len(sk201) == 1 and "| development, production |" in sk201[0]
    assert "<details><summary>1 suppressed</summary>" in lines
    assert "| app | development | production |\n| --- | ---: | ---: |\n" in text
    assert "| mealie | 90 | 87 |" in lines


def test_markdown_escapes_pipes_and_says_nothing_audited() -> None:
    report = Report(findings=[finding("SK103", "pvc-name", Severity.WARNING, message="a|b\nc")])
    text = render(report, "markdown", context=CONTEXT)
    assert "| a\\|b<br>c |" in text
    assert "**Nothing audited:** no Kubernetes objects found." in render(
        Report(), "markdown", context=CONTEXT
    )


def test_github_annotations() -> None:
    text = render(sample_report(), "github", context=CONTEXT)
    lines = text.splitlines()
    assert len(lines) == 4  # SK201 in two environments at one line is one annotation
    sk103 = next(line for line in lines if "SK103" in line)
    assert sk103 == (
        "::warning file=apps/base/mealie/pvc.yaml,line=2,title=SK103 pvc-name::"
        'PVC name "mealie-data" does not match <app>-<purpose>-pvc. (production)'
        "%0AFix: Rename the claim, e.g. mealie-data-pvc."
    )
    assert any(
        line.startswith("::notice title=SK301 config-needs-rclone-sidecar::") for line in lines
    )
    assert render(Report(), "github", context=CONTEXT) == ""


def test_github_escaping() -> None:
    report = Report(
        findings=[
            finding(
                "SK103", "pvc-name", Severity.ERROR, message="50% done: a, b", file="x,y:z.yaml"
            )
        ]
    )
    (line,) = render(report, "github", context=ReportContext()).splitlines()
    assert line.startswith(
        "::error file=x%2Cy%3Az.yaml,line=1,title=SK103 pvc-name::50%25 done: a, b"
    )


def test_codequality() -> None:
    prints = []
    for line in (1, 40):
        report = sample_report()
        report.findings[2] = finding(
            "SK103",
            "pvc-name",
            Severity.WARNING,
            kind="PersistentVolumeClaim",
            name="mealie-data",
            file="base/mealie/pvc.yaml",
            line=line,
            message="m",
        )
        issues = json.loads(render(report, "codequality", context=CONTEXT))
        assert len(issues) == 5
        assert {i["severity"] for i in issues} == {"major", "minor", "info"}
        pvc = next(i for i in issues if i["check_name"] == "SK103")
        assert pvc["location"] == {"path": "apps/base/mealie/pvc.yaml", "lines": {"begin": line}}
        assert pvc["description"] == "SK103 [production] m"
        assert len({i["fingerprint"] for i in issues}) == 5
        prints.append(pvc["fingerprint"])
    assert prints[0] == prints[1]  # a line move keeps the issue's identity
