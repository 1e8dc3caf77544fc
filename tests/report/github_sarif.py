"""What GitHub code scanning requires of an uploaded SARIF file, beyond the OASIS schema.

Written from GitHub's "SARIF support for code scanning" reference: `version` 2.1.0 and `runs`;
per run `tool.driver.name` and `results`; per rule (`reportingDescriptor`) an `id`; per result a
`ruleId`, `message.text` and one to ten `locations`, each with a `physicalLocation` whose
`artifactLocation.uri` is set and whose `region.startLine` is at least 1 (a result without one
is not shown as an alert); `partialFingerprints` to match alerts across runs; at most 20 tags per
rule; `runAutomationDetails.id` a string (its category is the part up to the last `/`).
On top: one result per rule, file and line (else duplicate alerts), and a URI that is relative to
the repository (no `..`, no leading `/`, no percent-encoded `<stdin>`).
"""

from __future__ import annotations

from typing import Any


def github_problems(log: dict[str, Any]) -> list[str]:
    """Every way `log` falls short of GitHub's documented requirements (empty: none)."""
    problems: list[str] = []
    if log.get("version") != "2.1.0":
        problems.append("version must be 2.1.0")
    runs = log.get("runs")
    if not isinstance(runs, list):
        return [*problems, "runs must be an array"]
    for r, run in enumerate(runs):
        problems += _run_problems(f"runs[{r}]", run)
    return problems


def _run_problems(where: str, run: dict[str, Any]) -> list[str]:
    """One run: its tool, automation details and rules, then its results."""
    problems: list[str] = []
    driver = run.get("tool", {}).get("driver", {})
    if not isinstance(driver.get("name"), str):
        problems.append(f"{where}.tool.driver.name is required")
    details = run.get("automationDetails")
    if details is not None and not isinstance(details.get("id"), str):
        problems.append(f"{where}.automationDetails.id must be a string")
    for d, rule in enumerate(driver.get("rules", [])):
        problems += _rule_problems(f"rules[{d}]", rule)
    results = run.get("results")
    if not isinstance(results, list):
        return [*problems, f"{where}.results is required"]
    return problems + _results_problems(where, results)


def _rule_problems(where: str, rule: dict[str, Any]) -> list[str]:
    """One `reportingDescriptor`: an id, and no more tags than GitHub keeps."""
    problems: list[str] = []
    if not isinstance(rule.get("id"), str):
        problems.append(f"{where}.id is required")
    if len(rule.get("properties", {}).get("tags", [])) > 20:
        problems.append(f"{where} has more than 20 tags")
    return problems


def _results_problems(run: str, results: list[dict[str, Any]]) -> list[str]:
    """Each result on its own, then across the run: GitHub merges results that share a rule,
    file and line, or a fingerprint, so each must be unique."""
    problems: list[str] = []
    alerts: set[tuple[str, str, int]] = set()
    prints: set[str] = set()
    for i, result in enumerate(results):
        where = f"{run}.results[{i}]"
        found, alert = _result_problems(where, result)
        problems += found
        if alert is None:
            continue  # no location to key an alert on
        if alert in alerts:
            problems.append(f"{where}: duplicate alert for {alert}")
        alerts.add(alert)
        fingerprints = result.get("partialFingerprints")
        if not fingerprints:
            problems.append(f"{where}.partialFingerprints is required")
            continue
        value = repr(sorted(fingerprints.items()))
        if value in prints:
            problems.append(f"{where}: fingerprint shared with another result")
        prints.add(value)
    return problems


def _result_problems(
    where: str, result: dict[str, Any]
) -> tuple[list[str], tuple[str, str, int] | None]:
    """One result's own fields, and its alert key (rule, uri, line) when it has a physical
    location (without one GitHub shows no alert, so there is nothing to compare)."""
    problems: list[str] = []
    if not isinstance(result.get("ruleId"), str):
        problems.append(f"{where}.ruleId is required")
    if not result.get("message", {}).get("text"):
        problems.append(f"{where}.message.text is required")
    locations = result.get("locations") or []
    if not 1 <= len(locations) <= 10:
        return [*problems, f"{where} needs 1 to 10 locations"], None
    physical = locations[0].get("physicalLocation")
    if physical is None:
        return [*problems, f"{where}.locations[0].physicalLocation is required"], None
    uri = physical.get("artifactLocation", {}).get("uri")
    line = physical.get("region", {}).get("startLine", 0)
    if not uri:
        problems.append(f"{where}: artifactLocation.uri is required")
    elif uri.startswith(("/", "../", "file:")) or "%3C" in uri:
        problems.append(f"{where}: uri {uri!r} is not relative to the repository")
    if not isinstance(line, int) or line < 1:
        problems.append(f"{where}: region.startLine must be >= 1")
    return problems, (str(result.get("ruleId")), str(uri), int(line))
