"""`.statekeeper.yaml`: discovery up to the git root, validation with one-line errors, every
field taking effect (policy, environments, exclude, baseline, paths, output, severity, doc-url),
flags winning, and `statekeeper init` writing a config that audits the repository right."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from statekeeper.config import Config, ConfigFileError, find_config, parse_config

from .test_audit_cli import BAD_PVC, CLEAN

REPO = Path(__file__).resolve().parent.parent


def sk(cwd: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NO_COLOR")}
    return subprocess.run(
        [sys.executable, "-m", "statekeeper", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        input=input,
        timeout=180,
    )


def findings(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert result.returncode in (0, 1), result.stderr
    data: list[dict[str, Any]] = json.loads(result.stdout)["findings"]
    return data


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository (a .git directory is all discovery looks for) with one bad manifest."""
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    (root / "apps").mkdir()
    (root / "apps" / "web.yaml").write_text(CLEAN + BAD_PVC)
    return root


def test_discovery_walks_up_to_the_git_root_only(repo: Path, tmp_path: Path) -> None:
    sub = repo / "apps"
    assert find_config(sub) is None
    (tmp_path / ".statekeeper.yaml").write_text("{}")  # above the git root: never used
    assert find_config(sub) is None
    (repo / ".statekeeper.yaml").write_text("{}")
    assert find_config(sub) == (repo / ".statekeeper.yaml").resolve()
    (sub / ".statekeeper.yml").write_text("{}")
    assert find_config(sub) == (sub / ".statekeeper.yml").resolve()
    outside = tmp_path / "loose"
    (outside / "deeper").mkdir(parents=True)
    (outside / ".statekeeper.yaml").write_text("{}")
    assert find_config(outside / "deeper") is None  # not in a repository: only the cwd
    assert find_config(outside) == (outside / ".statekeeper.yaml").resolve()


def test_output_defaults_and_flags_win(repo: Path) -> None:
    (repo / ".statekeeper.yaml").write_text(
        "paths: [apps]\noutput:\n  format: json\n  fail-on: never\n"
    )
    result = sk(repo / "apps", "audit", "--no-render")
    assert result.returncode == 0, result.stderr  # fail-on never from the config
    assert {f["rule"] for f in findings(result)} >= {"SK103"}
    assert findings(result)[0]["file"] == "web.yaml"  # config paths, shown from the cwd
    flagged = sk(repo, "audit", "--no-render", "--fail-on", "warning", "-f", "text")
    assert flagged.returncode == 1
    assert flagged.stdout.startswith("statekeeper audit")


def test_severity_policy_and_exclude(repo: Path) -> None:
    (repo / "policy.yaml").write_text("rules:\n  SK101: {enabled: false}\n")
    (repo / "vendor").mkdir()
    (repo / "vendor" / "chart.yaml").write_text(BAD_PVC.replace("webdata", "otherdata"))
    (repo / ".statekeeper.yaml").write_text(
        "policy: policy.yaml\nseverity: {SK103: info}\nexclude: ['vendor/**']\n"
        "output: {format: json, fail-on: never}\n"
    )
    found = findings(sk(repo / "apps", "audit", "..", "--no-render"))
    rules = {f["rule"]: f for f in found}
    assert rules["SK103"]["severity"] == "info"
    assert "SK101" not in rules
    assert not [f for f in found if f["name"] == "otherdata"]
    # without the config both the excluded claim and SK101 are back
    (repo / ".statekeeper.yaml").unlink()
    found = findings(sk(repo, "audit", ".", "--no-render", "-f", "json"))
    assert {"SK101", "SK103"} <= {f["rule"] for f in found}
    assert [f for f in found if f["name"] == "otherdata"]


def test_inline_policy_and_explicit_config(repo: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere.yaml"
    other.write_text("policy:\n  rules: {pvc-name: {enabled: false}}\noutput: {format: [json]}\n")
    result = sk(repo, "audit", "apps", "--no-render", "--config", str(other), "--fail-on", "never")
    assert "SK103" not in {f["rule"] for f in findings(result)}


def test_doc_url_reaches_sarif(repo: Path) -> None:
    (repo / ".statekeeper.yaml").write_text("doc-url: https://wiki.example/rules/{id}\n")
    result = sk(repo, "audit", "apps", "--no-render", "-f", "sarif", "--fail-on", "never")
    rules = json.loads(result.stdout)["runs"][0]["tool"]["driver"]["rules"]
    assert {r["helpUri"] for r in rules} == {f"https://wiki.example/rules/{r['id']}" for r in rules}


def test_config_baseline_path(repo: Path) -> None:
    (repo / ".statekeeper.yaml").write_text("baseline: known.json\noutput: {format: json}\n")
    before = sk(repo, "audit", "apps", "--no-render")
    assert before.returncode == 1 and findings(before)  # a missing baseline file is empty
    written = sk(repo, "audit", "apps", "--no-render", "--write-baseline", "known.json")
    assert written.returncode == 0
    after = sk(repo, "audit", "apps", "--no-render")
    assert after.returncode == 0 and findings(after) == []


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("colour: always\n", "unknown field 'colour'"),
        ("output: {fail-on: sometimes}\n", "field output.fail-on: must be one of"),
        ("output: {format: [pdf]}\n", "unknown format 'pdf'"),
        ("severity: {SK103: fatal}\n", "field severity.SK103"),
        ("policy: {environments: {production: {storage_class: ''}}}\n", "environments.production"),
        ("environments: {prodution: [overlays/live]}\n", "environments.prodution: unknown"),
        ("[1, 2]\n", "must be a mapping"),
        ("a: [\n", "invalid YAML"),
    ],
)
def test_bad_config_is_one_line_error(repo: Path, text: str, needle: str) -> None:
    (repo / ".statekeeper.yaml").write_text(text)
    result = sk(repo, "audit", "apps", "--no-render")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("statekeeper: error: ") and needle in result.stderr
    assert ".statekeeper.yaml" in result.stderr


def test_environment_directories_map_overlays(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(REPO / "examples" / "homelab", repo)
    (repo / ".git").mkdir()
    (repo / "overlays" / "prod").rename(repo / "overlays" / "live-eu")
    kustomization = repo / "overlays" / "live-eu" / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text().replace("value: production", "value: eu"))
    unmapped = findings(sk(repo, "audit", "-f", "json", "--fail-on", "never"))
    assert "production" not in {f["environment"] for f in unmapped}
    (repo / ".statekeeper.yaml").write_text("environments:\n  production: [overlays/live-eu]\n")
    mapped = findings(sk(repo, "audit", "-f", "json", "--fail-on", "never"))
    assert {f["environment"] for f in mapped} == {"development", "production"}
    assert len(mapped) == 23


# --------------------------------------------------------------------------- init

CLASSES = """\
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: longhorn-retain}
provisioner: driver.longhorn.io
reclaimPolicy: Retain
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: longhorn-scratch}
provisioner: driver.longhorn.io
reclaimPolicy: Delete
---
apiVersion: v1
kind: Namespace
metadata:
  name: web
  labels: {environment: prod}
"""
CLAIM = """\
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: web-data-pvc, namespace: web, labels: {app.kubernetes.io/name: web}}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: longhorn-retain
  resources: {requests: {storage: 1Gi}}
"""


def test_init_detects_classes_namespaces_and_layout(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "cluster.yaml").write_text(CLASSES)
    (repo / "claim.yaml").write_text(CLAIM)
    (repo / "overlays" / "blue").mkdir(parents=True)
    (repo / "overlays" / "blue" / "kustomization.yaml").write_text("resources: []\n")
    before = findings(sk(repo, "audit", ".", "--no-render", "-f", "json"))
    assert "SK101" in {f["rule"] for f in before}  # longhorn-retain is not elite's class

    (repo / "sub").mkdir()
    result = sk(repo / "sub", "init")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wrote {repo / '.statekeeper.yaml'}\n"
    text = (repo / ".statekeeper.yaml").read_text()
    import yaml

    data = yaml.safe_load(text)
    assert data["policy"]["environments"] == {
        "production": {"storage_class": "longhorn-retain"},
        "development": {"storage_class": "longhorn-scratch"},
    }
    assert data["policy"]["namespace_environments"] == {"web": "production"}
    assert "# blue: [overlays/blue]" in text
    assert data["baseline"] == ".statekeeper-baseline.json"
    after = findings(sk(repo, "audit", ".", "--no-render", "-f", "json"))
    assert "SK101" not in {f["rule"] for f in after}

    again = sk(repo, "init")
    assert again.returncode == 2 and "already exists" in again.stderr
    assert sk(repo, "init", "--force").returncode == 0


def test_init_on_the_example_changes_no_finding(tmp_path: Path) -> None:
    repo = tmp_path / "homelab"
    shutil.copytree(REPO / "examples" / "homelab", repo)
    before = sk(repo, "audit", "-f", "json", "--fail-on", "never")
    assert sk(repo, "init", ".").returncode == 0
    text = (repo / ".statekeeper.yaml").read_text()
    assert "  development:\n  - overlays/dev\n  production:\n  - overlays/prod\n" in text
    after = sk(repo, "audit", "-f", "json", "--fail-on", "never")
    assert findings(after) == findings(before)
    assert len(findings(after)) == 23


# parse_config field by field, in-process: each field's error names it, and a config with
# several errors reports the first field in the documented order.
@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"policy": 3}, "field policy: expected a mapping or a policy file path"),
        ({"environments": ["live"]}, "field environments: expected environment: [directories]"),
        ({"environments": {"live": [1]}}, "field environments.live: expected a string or a list"),
        ({"output": "text"}, "field output: expected a mapping"),
        ({"output": {"formats": "text"}}, "unknown field output.formats (known: format, output,"),
        ({"output": {"format": 3}}, "field output.format: expected a string or a list"),
        ({"output": {"output": ["x"]}}, "field output.output: expected format: file"),
        ({"output": {"output": {"pdf": "x.pdf"}}}, "field output.output.pdf: expected format"),
        ({"output": {"output": {"sarif": 1}}}, "field output.output.sarif: expected format"),
        ({"output": {"color": "blue"}}, "field output.color: must be one of auto, always, never"),
        ({"severity": ["SK103"]}, "field severity: expected rule: severity"),
        ({"doc-url": 1}, "field doc-url: expected a URL template"),
        ({"baseline": ["a"]}, "field baseline: expected a file path"),
        ({"paths": [1]}, "field paths: expected a string or a list of strings"),
        ({"exclude": {"a": 1}}, "field exclude: expected a string or a list of strings"),
        # several errors: the first in the documented order wins
        ({"exclude": 1, "environments": 1, "output": {"fail-on": 1}}, "field environments:"),
        ({"exclude": 1, "output": {"fail-on": "x"}}, "field exclude:"),
        ({"doc-url": 1, "severity": {"SK1": "x"}}, "field severity.SK1:"),
    ],
)
def test_parse_config_names_the_bad_field(data: dict[str, Any], message: str) -> None:
    path = Path("/repo/.statekeeper.yaml")
    with pytest.raises(ConfigFileError) as raised:
        parse_config(data, path)
    assert str(raised.value).startswith(f"{path}: ")
    assert message in str(raised.value)


def test_parse_config_reads_every_field_relative_to_the_file() -> None:
    data = {
        "policy": "policy.yaml",
        "environments": {"production": "clusters/live", "staging": ["a", "b"]},
        "exclude": "charts/**",
        "baseline": "known.json",
        "paths": [".", "-"],
        "output": {"format": "sarif", "output": {"sarif": "out.sarif"}, "fail-on": False},
        "severity": {"SK104": "INFO"},
        "doc-url": "https://x/{page}",
    }
    config = parse_config(data, Path("/repo/.statekeeper.yaml"))
    assert config == Config(
        path=Path("/repo/.statekeeper.yaml"),
        policy_file=Path("/repo/policy.yaml"),
        environments={"production": ["clusters/live"], "staging": ["a", "b"]},
        exclude=["charts/**"],
        baseline=Path("/repo/known.json"),
        paths=["/repo", "-"],
        formats=["sarif"],
        outputs={"sarif": Path("/repo/out.sarif")},
        fail_on="never",
        color=None,
        severity={"SK104": "info"},
        doc_url="https://x/{page}",
    )
    inline = parse_config({"policy": {"rules": {}}, "output": None}, Path("/r/c.yaml"))
    assert inline.policy_file is None and inline.policy == {"rules": {}}
    assert inline.formats == [] and inline.fail_on is None and inline.baseline is None
