"""`--format sarif`: SARIF 2.1.0 for code scanning (GitHub, GitLab, Azure DevOps).

One run; `tool.driver.rules` describes every rule (id, slug as name, title, rationale, remediation,
default level, helpUri to docs/rules/<ID>.md); each finding is a result with a relative file URI and
start line, a logical location `environment/namespace/Kind/name`, and a partial fingerprint that
survives line moves. Suppressed findings are results too, carrying an in-source suppression with
its reason, so code scanning shows them as dismissed rather than forgetting them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any, Protocol
from urllib.parse import quote

from statekeeper import __version__
from statekeeper.findings import Finding, Report, Severity
from statekeeper.report.summary import env_of, finding_sort_key, sorted_findings

SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
PROJECT_URI = "https://github.com/statekeeper/statekeeper"
DOCS_BASE_URI = f"{PROJECT_URI}/blob/main/docs/rules/"
# Key of the partial fingerprint; bump the suffix if its recipe ever changes.
FINGERPRINT_KEY = "statekeeper/object/v1"
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
    absolute ones become file:// URIs."""
    if "://" in file:
        return file
    windows = PureWindowsPath(file)
    if windows.drive:
        return "file:///" + quote(windows.as_posix(), safe="/:")
    path = PurePosixPath(file.replace("\\", "/"))
    if path.is_absolute():
        return "file://" + quote(path.as_posix(), safe="/")
    text = path.as_posix()
    return quote(text[2:] if text.startswith("./") else text, safe="/")


def fingerprint(finding: Finding) -> str:
    """Identifies the object and rule across runs, whatever line the object moves to."""
    parts = (
        finding.rule,
        env_of(finding),
        finding.kind,
        finding.namespace or "",
        finding.name,
    )
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def _rule_descriptor(rule: RuleInfo, docs_base: str) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.slug,
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": rule.rationale},
        "help": {"text": rule.remediation},
        "helpUri": f"{docs_base}{rule.id}.md",
        "defaultConfiguration": {"level": level(rule.severity)},
        "properties": {"tags": ["storage-backup-strategy", rule.slug]},
    }


def _fallback_descriptor(finding: Finding, docs_base: str) -> dict[str, Any]:
    # A finding whose rule was not passed in (e.g. a rule added later): describe it from itself.
    return {
        "id": finding.rule,
        "name": finding.slug,
        "shortDescription": {"text": finding.slug.replace("-", " ")},
        "help": {"text": finding.remediation},
        "helpUri": f"{docs_base}{finding.rule}.md",
        "defaultConfiguration": {"level": level(finding.severity)},
    }


def _logical_name(finding: Finding) -> str:
    ns = finding.namespace or "-"
    return f"{env_of(finding)}/{ns}/{finding.kind}/{finding.name}"


def _result(
    finding: Finding, rule_index: int, suppression_reason: str | None = None
) -> dict[str, Any]:
    location: dict[str, Any] = {}
    if finding.file:
        physical: dict[str, Any] = {"artifactLocation": {"uri": artifact_uri(finding.file)}}
        if not physical["artifactLocation"]["uri"].startswith("file:"):
            physical["artifactLocation"]["uriBaseId"] = SRCROOT
        physical["region"] = {"startLine": max(1, finding.line or 1)}
        location["physicalLocation"] = physical
    location["logicalLocations"] = [
        {
            "name": finding.name,
            "fullyQualifiedName": _logical_name(finding),
            "kind": "resource",
        }
    ]
    result: dict[str, Any] = {
        "ruleId": finding.rule,
        "ruleIndex": rule_index,
        "level": level(finding.severity),
        "message": {"text": f"{finding.message}\nFix: {finding.remediation}"},
        "locations": [location],
        "partialFingerprints": {FINGERPRINT_KEY: fingerprint(finding)},
        "properties": {
            "slug": finding.slug,
            "app": finding.app,
            "environment": finding.environment,
            "kind": finding.kind,
            "namespace": finding.namespace,
            "name": finding.name,
            "remediation": finding.remediation,
        },
    }
    if suppression_reason is not None:
        result["suppressions"] = [{"kind": "inSource", "justification": suppression_reason}]
    return result


def to_data(
    report: Report, rules: Sequence[RuleInfo] = (), *, docs_base: str = DOCS_BASE_URI
) -> dict[str, Any]:
    """The SARIF log as Python data."""
    descriptors = [_rule_descriptor(r, docs_base) for r in sorted(rules, key=lambda r: r.id)]
    index = {d["id"]: i for i, d in enumerate(descriptors)}

    def rule_index(finding: Finding) -> int:
        if finding.rule not in index:
            index[finding.rule] = len(descriptors)
            descriptors.append(_fallback_descriptor(finding, docs_base))
        return index[finding.rule]

    results = [_result(f, rule_index(f)) for f in sorted_findings(report.findings)]
    for item in sorted(report.suppressed, key=lambda s: finding_sort_key(s.finding)):
        results.append(_result(item.finding, rule_index(item.finding), item.reason))
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
                "originalUriBaseIds": {
                    SRCROOT: {"description": {"text": "The root of the scanned repository."}}
                },
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }


def render_sarif(
    report: Report, rules: Sequence[RuleInfo] = (), *, docs_base: str = DOCS_BASE_URI
) -> str:
    """The report as a SARIF 2.1.0 log ending in a newline."""
    return json.dumps(to_data(report, rules, docs_base=docs_base), indent=2) + "\n"
