"""examples/homelab: the audit (real kustomize) finds every planted violation and nothing else.

The expected sets mirror examples/homelab/PLANTED.md; change both together. The terminal output
in docs/audit.md must be the audit's real output: after a change to a rule's wording, run
`.venv/bin/python tests/test_homelab.py` to paste the new output into it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

REPO = Path(__file__).resolve().parent.parent
HOMELAB = REPO / "examples" / "homelab"
DOC = REPO / "docs" / "audit.md"
README = REPO / "README.md"
FIX_DIFF = REPO / "tests" / "fix" / "expected" / "homelab.diff"
SARIF_SCHEMA = json.loads(
    (Path(__file__).parent / "report" / "sarif-schema-2.1.0.json").read_text()
)
# The S3 key pasted inline in overlays/dev/esphome-dev-minio.yaml: never in any report.
INLINE_SECRET = "devminio-Kq7u2-not-a-real-secret"

DEV, PROD = "development", "production"
Key = tuple[str, str, str | None, str]  # rule, environment, namespace, name

PLANTED: set[Key] = {
    ("SK101", PROD, "mealie", "mealie-data"),
    ("SK102", DEV, None, "nfs-storage"),
    ("SK103", DEV, "mealie", "mealie-data"),
    ("SK103", PROD, "mealie", "mealie-data"),
    ("SK104", DEV, "media", "jellyfin-cache-pvc"),
    ("SK104", PROD, "media", "jellyfin-cache-pvc"),
    ("SK106", DEV, "syncthing", "syncthing-config-pvc"),
    ("SK106", PROD, "syncthing", "syncthing-config-pvc"),
    ("SK201", DEV, "mealie", "mealie"),
    ("SK201", PROD, "mealie", "mealie"),
    ("SK202", DEV, "mealie", "mealie"),
    ("SK202", PROD, "mealie", "mealie"),
    ("SK203", DEV, "mealie", "mealie"),
    ("SK203", PROD, "mealie", "mealie"),
    ("SK202", DEV, "monitoring", "uptime-kuma"),
    ("SK202", PROD, "monitoring", "uptime-kuma"),
    ("SK204", DEV, "monitoring", "uptime-kuma"),
    ("SK204", PROD, "monitoring", "uptime-kuma"),
    ("SK301", DEV, "syncthing", "syncthing"),
    ("SK301", PROD, "syncthing", "syncthing"),
    ("SK401", DEV, None, "media"),
    ("SK401", PROD, None, "media"),
    ("SK501", DEV, "home-automation", "esphome"),
}
SUPPRESSED: set[Key] = {
    ("SK104", DEV, "home-automation", "esphome-config-pvc"),
    ("SK104", PROD, "home-automation", "esphome-config-pvc"),
}


def audit(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NO_COLOR")}
    return subprocess.run(
        [sys.executable, "-m", "statekeeper", "audit", "examples/homelab", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )


def key(finding: dict[str, Any]) -> Key:
    return (finding["rule"], finding["environment"], finding["namespace"], finding["name"])


@pytest.fixture(scope="module")
def outputs() -> dict[str, subprocess.CompletedProcess[str]]:
    """One audit per format (each renders both overlays with kustomize), shared by the tests."""
    return {fmt: audit("--format", fmt, "--fail-on", "never") for fmt in ("text", "json", "sarif")}


@pytest.fixture(scope="module")
def report(outputs: dict[str, subprocess.CompletedProcess[str]]) -> dict[str, Any]:
    result = outputs["json"]
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_overlays_build_with_real_kustomize(kubectl: str) -> None:
    for overlay in ("dev", "prod"):
        result = subprocess.run(
            [kubectl, "kustomize", str(HOMELAB / "overlays" / overlay)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert "kind: Deployment" in result.stdout


def test_finds_every_planted_violation_and_nothing_else(report: dict[str, Any]) -> None:
    found = [key(f) for f in report["findings"]]
    assert len(found) == len(set(found)), "duplicate findings"
    missing = PLANTED - set(found)
    unexpected = set(found) - PLANTED
    assert not missing and not unexpected, (
        f"missing={sorted(missing)} unexpected={sorted(unexpected)}"
    )


def test_suppression_with_reason(report: dict[str, Any]) -> None:
    assert {key(s) for s in report["suppressed"]} == SUPPRESSED
    assert all(s["reason"].startswith("ESPHome keeps PlatformIO") for s in report["suppressed"])
    assert report["summary"]["suppressed"] == 2


def test_every_resource_has_a_known_environment(report: dict[str, Any]) -> None:
    assert report["summary"]["environments"] == [DEV, PROD]
    assert not [n for n in report["notes"] if "environment" in n["message"].lower()]


def test_other_providers_and_server_databases_are_recognised(report: dict[str, Any]) -> None:
    """home-assistant is protected by DataAngel, vaultwarden-pg runs on PostgreSQL: no finding
    for either, and one note naming the evidence for the second (never the URL itself)."""
    apps = {f["app"] for f in report["findings"]} | {s["app"] for s in report["suppressed"]}
    assert not apps & {"home-assistant", "vaultwarden-pg"}
    assert {"home-assistant", "vaultwarden-pg"} <= set(report["summary"]["apps"])
    notes = [n["message"] for n in report["notes"]]
    assert notes == [
        "Deployment vaultwarden-pg: not judged as a SQLite app: env "
        "DATABASE_URL=postgresql://… (server database)"
    ]


def test_findings_point_at_source_files(report: dict[str, Any]) -> None:
    for finding in report["findings"]:
        assert finding["file"], finding
        assert (REPO / finding["file"]).is_file(), finding["file"]
        assert finding["line"] >= 1


def test_inline_secret_never_reported(outputs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    for fmt, result in outputs.items():
        assert result.returncode == 0
        assert INLINE_SECRET not in result.stdout, fmt
        assert INLINE_SECRET not in result.stderr, fmt


def test_sarif_is_valid(outputs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    log = json.loads(outputs["sarif"].stdout)
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(log)
    from tests.report.github_sarif import github_problems  # (this file also runs as a script)

    assert github_problems(log) == []


def test_sarif_has_no_duplicate_alerts_and_real_help_pages(
    outputs: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    run = json.loads(outputs["sarif"].stdout)["runs"][0]
    covered: set[tuple[str, str]] = set()
    keys = []
    for result in run["results"]:
        physical = result["locations"][0]["physicalLocation"]
        uri = physical["artifactLocation"]["uri"]
        assert physical["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
        assert (REPO / uri).is_file(), uri  # relative to the git root
        keys.append((result["ruleId"], uri, physical["region"]["startLine"]))
        envs = result["properties"]["environments"]
        covered |= {(result["ruleId"], env) for env in envs}
        assert all(env in result["message"]["text"] for env in envs)
    assert len(keys) == len(set(keys))
    expected = {(rule, env) for rule, env, _, _ in PLANTED | SUPPRESSED}
    assert covered == expected
    # findings in both environments at one line are one alert: fewer results than findings
    assert len(run["results"]) < len(PLANTED) + len(SUPPRESSED)
    for rule in run["tool"]["driver"]["rules"]:
        prefix = "https://github.com/statekeeper/statekeeper/blob/main/"
        assert rule["helpUri"].startswith(prefix)
        assert (REPO / rule["helpUri"][len(prefix) :]).is_file(), rule["helpUri"]


def test_demo_prints_the_report_and_exits_0(
    outputs: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    # What `make demo` runs (text is the default format).
    result = outputs["text"]
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("statekeeper audit")
    assert f"{len(PLANTED)} findings" in result.stdout
    # and without --fail-on never, the errors fail the run
    assert audit().returncode == 1


def test_docs_show_the_real_output(outputs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    output = outputs["text"].stdout
    doc = DOC.read_text(encoding="utf-8")
    assert output in doc, (
        "docs/audit.md is out of date: run `.venv/bin/python tests/test_homelab.py`"
    )


def _fenced_blocks(text: str, marker: str, fence: str) -> list[str]:
    """Bodies of the ```<fence> blocks between <!-- <marker>:start --> and <!-- <marker>:end -->."""
    start = text.index(f"<!-- {marker}:start")
    end = text.index(f"<!-- {marker}:end", start)
    region = text[start:end]
    blocks = []
    for chunk in region.split(f"```{fence}\n")[1:]:
        blocks.append(chunk.split("```", 1)[0])
    return blocks


def test_readme_shows_the_real_output(
    outputs: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    output = outputs["text"].stdout
    blocks = _fenced_blocks(README.read_text(encoding="utf-8"), "homelab-excerpt", "text")
    assert len(blocks) == 2
    for block in blocks:
        assert block in output, "README.md's audit excerpt is not the audit's real output"


def test_readme_fix_excerpt_is_the_real_diff() -> None:
    (block,) = _fenced_blocks(README.read_text(encoding="utf-8"), "fix-excerpt", "diff")
    diff = FIX_DIFF.read_text(encoding="utf-8")
    # each file section of the excerpt stands, whole, in the golden diff that tests/fix pins
    for section in block.split("--- a/")[1:]:
        assert "--- a/" + section in diff, section.splitlines()[0]


def update_docs() -> None:
    """Replace the output block of docs/audit.md with the audit's current output."""
    output = audit("--fail-on", "never").stdout
    doc = DOC.read_text(encoding="utf-8")
    start = doc.index("```text\n", doc.index("<!-- homelab-output:start")) + len("```text\n")
    end = doc.index("```\n<!-- homelab-output:end")
    DOC.write_text(doc[:start] + output + doc[end:], encoding="utf-8")


if __name__ == "__main__":
    update_docs()
