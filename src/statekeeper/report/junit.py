"""`--format junit`: JUnit XML for CI test tabs (GitLab, Jenkins, Azure, CircleCI).

One `<testsuite>` per rule (named `SK103 pvc-name`); in it one `<testcase>` per object and
environment the rule judged badly (name `production: PersistentVolumeClaim mealie/mealie-data`,
classname `statekeeper.SK103`), failing with the message, the severity as `type`, and the
location and fix as text. A suppressed finding is a skipped testcase with its reason. A rule
without findings has one passing testcase, so the CI shows it ran. The shape follows the JUnit
schema Jenkins publishes (tests/report/junit.xsd checks it).
"""

from __future__ import annotations

from xml.etree import ElementTree as ET

from statekeeper.findings import Finding, Report
from statekeeper.report import ReportContext
from statekeeper.report.locations import display_path
from statekeeper.report.summary import env_of, finding_sort_key, sorted_findings


def _case_name(finding: Finding) -> str:
    where = f"{finding.namespace}/" if finding.namespace else ""
    return f"{env_of(finding)}: {finding.kind} {where}{finding.name}"


def _location(finding: Finding, context: ReportContext) -> str:
    path = display_path(finding.file, context.srcroot, context.cwd)
    return f"{path}:{finding.line}" if path and finding.line else path


def render_junit(report: Report, context: ReportContext) -> str:
    """The report as a JUnit XML document ending in a newline."""
    failing: dict[str, list[Finding]] = {}
    for f in sorted_findings(report.findings):
        failing.setdefault(f.rule, []).append(f)
    skipped: dict[str, list[tuple[Finding, str]]] = {}
    for s in sorted(report.suppressed, key=lambda s: finding_sort_key(s.finding)):
        skipped.setdefault(s.finding.rule, []).append((s.finding, s.reason))
    slugs = {r.id: r.slug for r in context.rules}
    for f in [*report.findings, *(s.finding for s in report.suppressed)]:
        slugs.setdefault(f.rule, f.slug)

    root = ET.Element("testsuites", name="statekeeper audit")
    totals = {"tests": 0, "failures": 0, "skipped": 0}
    for rule_id in sorted(slugs):
        fails, skips = failing.get(rule_id, []), skipped.get(rule_id, [])
        tests = max(1, len(fails) + len(skips))
        suite = ET.SubElement(
            root,
            "testsuite",
            name=f"{rule_id} {slugs[rule_id]}",
            tests=str(tests),
            failures=str(len(fails)),
            errors="0",
            skipped=str(len(skips)),
            time="0",
        )
        classname = f"statekeeper.{rule_id}"
        for f in fails:
            case = ET.SubElement(
                suite, "testcase", name=_case_name(f), classname=classname, time="0"
            )
            failure = ET.SubElement(case, "failure", message=f.message, type=f.severity.value)
            location = _location(f, context)
            failure.text = (f"{location}\n" if location else "") + f"fix: {f.remediation}"
        for f, reason in skips:
            case = ET.SubElement(
                suite, "testcase", name=_case_name(f), classname=classname, time="0"
            )
            ET.SubElement(case, "skipped", message=f"suppressed: {reason}")
        if not fails and not skips:
            ET.SubElement(suite, "testcase", name="every object", classname=classname, time="0")
        totals["tests"] += tests
        totals["failures"] += len(fails)
        totals["skipped"] += len(skips)
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("errors", "0")
    root.set("time", "0")
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"
