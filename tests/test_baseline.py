"""Baselines: written today, tomorrow's audit of the same repository reports nothing; a new
violation reports exactly one finding; line moves, reformatting and reordering change nothing;
a finding that disappeared leaves the baseline on the next write. Real CLI, real kustomize."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from statekeeper.baseline import baseline_data, fingerprint, message_key, read_baseline
from statekeeper.errors import InputError
from statekeeper.findings import Report, Severity

from .report.sample import finding, sample_report

REPO = Path(__file__).resolve().parent.parent


def audit(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NO_COLOR")}
    return subprocess.run(
        [sys.executable, "-m", "statekeeper", "audit", "homelab", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=180,
    )


def findings(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert result.returncode in (0, 1), result.stderr
    data: list[dict[str, Any]] = json.loads(result.stdout)["findings"]
    return data


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "examples" / "homelab", tmp_path / "homelab")
    return tmp_path


def test_baseline_today_zero_tomorrow_then_exactly_one_new(repo: Path) -> None:
    written = audit(repo, "-f", "json", "--write-baseline", "baseline.json")
    assert written.returncode == 0, written.stderr
    assert findings(written) == []
    assert "wrote the baseline baseline.json: 23 findings recorded" in written.stderr
    data = json.loads((repo / "baseline.json").read_text())
    assert sum(e["count"] for e in data["findings"]) == 23
    assert not any("line" in e or "file" in e for e in data["findings"])  # moves do not matter

    tomorrow = audit(repo, "-f", "json", "--baseline", "baseline.json")
    assert tomorrow.returncode == 0, tomorrow.stderr
    assert findings(tomorrow) == []
    notes = json.loads(tomorrow.stdout)["notes"]
    assert {
        "message": "23 known findings hidden by the baseline",
        "file": "baseline.json",
        "line": None,
    } in notes

    # line moves, reformatting (indentation, key order) and reordering of resources
    pvc = repo / "homelab" / "base" / "mealie" / "pvc.yaml"
    pvc.write_text(
        "# moved down\n# by two lines\n"
        "kind: PersistentVolumeClaim\napiVersion: v1\nspec:\n"
        "    storageClassName: synelia-iscsi-delete\n"
        "    resources: {requests: {storage: 10Gi}}\n"
        "    accessModes: [ReadWriteOnce]\n"
        "metadata: {name: mealie-data}\n"
    )
    base = repo / "homelab" / "base" / "kustomization.yaml"
    text = base.read_text()
    base.write_text(text.replace("  - vaultwarden\n  - mealie\n", "  - mealie\n  - vaultwarden\n"))
    moved = audit(repo, "-f", "json", "--baseline", "baseline.json")
    assert findings(moved) == [], findings(moved)

    # one new violation: a development claim on the production class
    dev = repo / "homelab" / "overlays" / "dev" / "kustomization.yaml"
    dev.write_text(
        dev.read_text() + "  - target: {kind: PersistentVolumeClaim, name: vaultwarden-data-pvc}\n"
        "    patch: |-\n"
        "      - op: replace\n"
        "        path: /spec/storageClassName\n"
        "        value: synelia-iscsi-retain\n"
    )
    new = audit(repo, "-f", "json", "--baseline", "baseline.json")
    (only,) = findings(new)
    assert (only["rule"], only["environment"], only["name"]) == (
        "SK101",
        "development",
        "vaultwarden-data-pvc",
    )
    assert new.returncode == 1


def test_rewriting_drops_findings_that_disappeared(repo: Path) -> None:
    assert audit(repo, "--write-baseline", "b.json", "-f", "json").returncode == 0
    before = {e["rule"] for e in json.loads((repo / "b.json").read_text())["findings"]}
    assert {"SK103", "SK201"} <= before
    # the next write sees only SK103 findings: everything else is dropped from the file
    assert audit(repo, "--write-baseline", "b.json", "--rule", "SK103").returncode == 0
    after = json.loads((repo / "b.json").read_text())["findings"]
    assert {e["rule"] for e in after} == {"SK103"} and len(after) == 2


def test_missing_or_bad_baseline_is_one_line_error(repo: Path) -> None:
    (repo / "bad.json").write_text('{"version": 7}')
    for name, needle in (("nope.json", "baseline file not found"), ("bad.json", "not a")):
        result = audit(repo, "--baseline", name, "--no-render")
        assert result.returncode == 2
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert result.stderr.startswith(f"statekeeper: error: {name}: ") and needle in result.stderr


def test_fingerprint_ignores_file_line_and_numbers() -> None:
    a = finding("SK104", "pvc-size", Severity.WARNING, message="requests 5Gi, wants 50-100Gi")
    moved = finding(
        "SK104",
        "pvc-size",
        Severity.WARNING,
        message="requests  6Gi, wants 50-100Gi",
        file="elsewhere.yaml",
        line=99,
    )
    other_env = finding(
        "SK104",
        "pvc-size",
        Severity.WARNING,
        environment="development",
        message="requests 5Gi, wants 50-100Gi",
    )
    other_rule = finding(
        "SK103", "pvc-name", Severity.WARNING, message="requests 5Gi, wants 50-100Gi"
    )
    assert message_key("requests 5Gi,\n  wants 1.5Gi") == "requests #gi, wants #gi"
    assert fingerprint(a) == fingerprint(moved)
    assert len({fingerprint(a), fingerprint(other_env), fingerprint(other_rule)}) == 3


def test_duplicates_are_counted(tmp_path: Path) -> None:
    twice = finding("SK201", "x", Severity.ERROR)
    report = Report(findings=[twice, twice, finding("SK103", "pvc-name", Severity.WARNING)])
    data = baseline_data(report)
    assert [e["count"] for e in data["findings"]] == [1, 2]  # sorted by rule
    path = tmp_path / "b.json"
    path.write_text(json.dumps(data))
    baseline = read_baseline(path)
    assert baseline.counts == Counter(
        {fingerprint(twice): 2, data["findings"][0]["fingerprint"]: 1}
    )
    # a third copy of the known finding is new
    left = baseline.filter(Report(findings=[twice, twice, twice]))
    assert left.findings == [twice]


def test_filter_keeps_unknown_findings_and_missing_ok(tmp_path: Path) -> None:
    empty = read_baseline(tmp_path / "absent.json", missing_ok=True)
    report = sample_report()
    assert empty.filter(report).findings == report.findings
    with pytest.raises(InputError, match="not found"):
        read_baseline(tmp_path / "absent.json")
