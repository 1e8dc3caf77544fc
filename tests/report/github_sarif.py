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
        driver = run.get("tool", {}).get("driver", {})
        if not isinstance(driver.get("name"), str):
            problems.append(f"runs[{r}].tool.driver.name is required")
        details = run.get("automationDetails")
        if details is not None and not isinstance(details.get("id"), str):
            problems.append(f"runs[{r}].automationDetails.id must be a string")
        for d, rule in enumerate(driver.get("rules", [])):
            if not isinstance(rule.get("id"), str):
                problems.append(f"rules[{d}].id is required")
            if len(rule.get("properties", {}).get("tags", [])) > 20:
                problems.append(f"rules[{d}] has more than 20 tags")
        results = run.get("results")
        if not isinstance(results, list):
            problems.append(f"runs[{r}].results is required")
            continue
        seen: set[tuple[str, str, int]] = set()
        prints: set[str] = set()
        for i, result in enumerate(results):
            where = f"runs[{r}].results[{i}]"
            if not isinstance(result.get("ruleId"), str):
                problems.append(f"{where}.ruleId is required")
            if not result.get("message", {}).get("text"):
                problems.append(f"{where}.message.text is required")
            locations = result.get("locations") or []
            if not 1 <= len(locations) <= 10:
                problems.append(f"{where} needs 1 to 10 locations")
                continue
            physical = locations[0].get("physicalLocation")
            if physical is None:
                problems.append(f"{where}.locations[0].physicalLocation is required")
                continue
            uri = physical.get("artifactLocation", {}).get("uri")
            line = physical.get("region", {}).get("startLine", 0)
            if not uri:
                problems.append(f"{where}: artifactLocation.uri is required")
            elif uri.startswith(("/", "../", "file:")) or "%3C" in uri:
                problems.append(f"{where}: uri {uri!r} is not relative to the repository")
            if not isinstance(line, int) or line < 1:
                problems.append(f"{where}: region.startLine must be >= 1")
            key = (str(result.get("ruleId")), str(uri), int(line))
            if key in seen:
                problems.append(f"{where}: duplicate alert for {key}")
            seen.add(key)
            fingerprints = result.get("partialFingerprints")
            if not fingerprints:
                problems.append(f"{where}.partialFingerprints is required")
            else:
                value = repr(sorted(fingerprints.items()))
                if value in prints:
                    problems.append(f"{where}: fingerprint shared with another result")
                prints.add(value)
    return problems
