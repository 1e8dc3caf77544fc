"""`--format sarif`: SARIF 2.1.0 shaped for code scanning (GitHub, GitLab, Azure DevOps).

One run. `tool.driver.rules` describes every rule (id, slug as name, title, rationale, help as
text and Markdown, default level, `helpUri` from the doc-url template). Results follow what GitHub
code scanning turns into alerts:

- one result per rule, file and line: the same base manifest judged in development and production
  is one result listing both environments (message and `properties.environments`), not two alerts;
- `artifactLocation.uri` relative to the repository root (`ReportContext.srcroot`) with
  `uriBaseId: %SRCROOT%`; a file outside it is an absolute `file://` URI; `<stdin>` stays as is;
- a partial fingerprint from the rule, the object and the file (not the line), so an alert
  survives line moves;
- `automationDetails.id` = `statekeeper/<policy>/<environment or all>/`, so separate jobs per
  policy or environment are separate analyses.

Suppressed findings are results too, carrying an in-source suppression with its reason, so code
scanning shows them as dismissed rather than forgetting them.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import Sequence
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any, Protocol
from urllib.parse import quote

from statekeeper import __version__
from statekeeper.findings import Finding, Report, Severity
from statekeeper.report import PROJECT_URI, ReportContext, doc_url
from statekeeper.report.locations import STDIN_NAME, repo_relative
from statekeeper.report.summary import (
    env_of,
    environments_of,
    finding_sort_key,
    group_by_location,
    sorted_findings,
)

SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
# Key of the partial fingerprint; bump the suffix whenever its recipe changes.
FINGERPRINT_KEY = "statekeeper/object/v2"
# Relative URIs are relative to the scanned repository's root.
SRCROOT = "%SRCROOT%"

_LEVELS: dict[Severity, str] = {
    Severity.ERROR: "error",
    Severity.WARNING: "warning",
    Severity.INFO: "note",
}


class RuleInfo(Protocol):
    """What the SARIF reporter needs to know about a rule (statekeeper.rules.base rules fit)."""

    @property
    def id(self) -> str: ...
    @property
    def slug(self) -> str: ...
    @property
    def severity(self) -> Severity: ...
    @property
    def title(self) -> str: ...
    @property
    def rationale(self) -> str: ...
    @property
    def remediation(self) -> str: ...


def level(severity: Severity) -> str:
    """SARIF result level of a severity: error, warning or note."""
    return _LEVELS[Severity(severity)]


def artifact_uri(file: str) -> str:
    """A finding's file as a SARIF URI: relative paths stay relative (POSIX, percent-encoded);
    absolute ones become file:// URIs; `<stdin>` stays as it is."""
    if "://" in file or file == STDIN_NAME:
        return file
    windows = PureWindowsPath(file)
    if windows.drive:
        return "file:///" + quote(windows.as_posix(), safe="/:")
    path = PurePosixPath(file.replace("\\", "/"))
    if path.is_absolute():
        return "file://" + quote(path.as_posix(), safe="/")
    text = path.as_posix()
    return quote(text[2:] if text.startswith("./") else text, safe="/")


def repo_location(file: str, srcroot: str | None, cwd: str | None) -> tuple[str, str | None]:
    """(uri, uriBaseId) of a finding's file: relative to `srcroot` when the file lies below it,
    else an absolute file:// URI (or `<stdin>` as is), without a base."""
    relative = repo_relative(file, srcroot, cwd)
    if relative is not None and not relative.startswith("../"):
        return quote(relative, safe="/"), SRCROOT
    outside = file != STDIN_NAME and "://" not in file and not PureWindowsPath(file).drive
    if srcroot is not None and cwd is not None and outside:
        file = posixpath.normpath(posixpath.join(cwd, file.replace("\\", "/")))
    return artifact_uri(file), None


def fingerprint(finding: Finding, uri: str = "") -> str:
    """Identifies the object, rule and file across runs, whatever line the object moves to and
    whichever environments it is judged in."""
    parts = (finding.rule, finding.kind, finding.namespace or "", finding.name, uri)
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def _help_markdown(rule_id: str, title: str, rationale: str, remediation: str, url: str) -> str:
    return (
        f"**{rule_id}: {title}**\n\n{rationale.strip()}\n\n"
        f"**Fix:** {remediation.strip()}\n\n[Rule documentation]({url})"
    )


def _rule_descriptor(rule: RuleInfo, template: str) -> dict[str, Any]:
    url = doc_url(template, rule.id, rule.slug)
    return {
        "id": rule.id,
        "name": rule.slug,
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": rule.rationale},
        "help": {
            "text": rule.remediation,
            "markdown": _help_markdown(rule.id, rule.title, rule.rationale, rule.remediation, url),
        },
        "helpUri": url,
        "defaultConfiguration": {"level": level(rule.severity)},
        "properties": {"tags": ["storage-backup-strategy", rule.slug], "precision": "high"},
    }


def _fallback_descriptor(finding: Finding, template: str) -> dict[str, Any]:
    # A finding whose rule was not passed in (e.g. a rule added later): describe it from itself.
    url = doc_url(template, finding.rule, finding.slug)
    title = finding.slug.replace("-", " ")
    return {
        "id": finding.rule,
        "name": finding.slug,
        "shortDescription": {"text": title},
        "help": {
            "text": finding.remediation,
            "markdown": _help_markdown(finding.rule, title, "", finding.remediation, url),
        },
        "helpUri": url,
        "defaultConfiguration": {"level": level(finding.severity)},
    }


def _logical_name(finding: Finding) -> str:
    ns = finding.namespace or "-"
    return f"{ns}/{finding.kind}/{finding.name}"


def _message(findings: Sequence[Finding]) -> str:
    """The finding's message with its environments; differing messages one per environment."""
    envs = environments_of(findings)
    first = findings[0]
    by_message: dict[str, list[str]] = {}
    for f in findings:
        by_message.setdefault(f.message, [])
        if env_of(f) not in by_message[f.message]:
            by_message[f.message].append(env_of(f))
    if len(by_message) == 1:
        label = "environment" if len(envs) == 1 else "environments"
        text = f"{first.message} ({label}: {', '.join(envs)})"
    else:
        text = "\n".join(f"{', '.join(sorted(e))}: {m}" for m, e in by_message.items())
    return f"{text}\nFix: {first.remediation}"


def _result(
    group: Sequence[Finding],
    rule_index: int,
    context: ReportContext,
    suppression_reason: str | None = None,
) -> dict[str, Any]:
    finding = group[0]
    location: dict[str, Any] = {}
    uri = ""
    if finding.file:
        uri, base = repo_location(finding.file, context.srcroot, context.cwd)
        artifact: dict[str, Any] = {"uri": uri}
        if base is not None:
            artifact["uriBaseId"] = base
        location["physicalLocation"] = {
            "artifactLocation": artifact,
            "region": {"startLine": max(1, finding.line or 1)},
        }
    location["logicalLocations"] = [
        {"name": finding.name, "fullyQualifiedName": _logical_name(finding), "kind": "resource"}
    ]
    apps = sorted({f.app for f in group if f.app})
    result: dict[str, Any] = {
        "ruleId": finding.rule,
        "ruleIndex": rule_index,
        "level": level(max((f.severity for f in group), key=lambda s: s.rank)),
        "message": {"text": _message(group)},
        "locations": [location],
        "partialFingerprints": {FINGERPRINT_KEY: fingerprint(finding, uri)},
        "properties": {
            "slug": finding.slug,
            "environments": environments_of(group),
            "app": apps[0] if len(apps) == 1 else None,
            "kind": finding.kind,
            "namespace": finding.namespace,
            "name": finding.name,
            "remediation": finding.remediation,
        },
    }
    if suppression_reason is not None:
        result["suppressions"] = [{"kind": "inSource", "justification": suppression_reason}]
    return result


def to_data(report: Report, *, context: ReportContext | None = None) -> dict[str, Any]:
    """The SARIF log as Python data."""
    context = context or ReportContext()
    template = context.doc_url
    descriptors = [_rule_descriptor(r, template) for r in sorted(context.rules, key=lambda r: r.id)]
    index = {d["id"]: i for i, d in enumerate(descriptors)}

    def rule_index(finding: Finding) -> int:
        if finding.rule not in index:
            index[finding.rule] = len(descriptors)
            descriptors.append(_fallback_descriptor(finding, template))
        return index[finding.rule]

    results = [
        _result(group, rule_index(group[0]), context)
        for group in group_by_location(sorted_findings(report.findings))
    ]
    suppressed = sorted(report.suppressed, key=lambda s: finding_sort_key(s.finding))
    reasons = {s.finding: s.reason for s in suppressed}
    for group in group_by_location([s.finding for s in suppressed]):
        results.append(_result(group, rule_index(group[0]), context, reasons[group[0]]))
    _unique_fingerprints(results)
    environment = context.environment or "all"
    return {
        "$schema": SARIF_SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "statekeeper",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "informationUri": PROJECT_URI,
                        "rules": descriptors,
                    }
                },
                "automationDetails": {"id": f"statekeeper/{context.policy}/{environment}/"},
                "originalUriBaseIds": {
                    SRCROOT: {"description": {"text": "The root of the scanned repository."}}
                },
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }


def _unique_fingerprints(results: list[dict[str, Any]]) -> None:
    """Two results of one object, rule and file on different lines (rare) get distinct prints:
    code scanning would merge them otherwise."""
    seen: dict[str, int] = {}
    for result in results:
        prints = result["partialFingerprints"]
        value = prints[FINGERPRINT_KEY]
        count = seen.get(value, 0)
        seen[value] = count + 1
        if count:
            prints[FINGERPRINT_KEY] = f"{value}:{count}"


def render_sarif(
    report: Report,
    rules: Sequence[RuleInfo] = (),
    *,
    context: ReportContext | None = None,
) -> str:
    """The report as a SARIF 2.1.0 log ending in a newline."""
    if context is None:
        context = ReportContext(rules=rules)
    return json.dumps(to_data(report, context=context), indent=2) + "\n"
