"""`statekeeper audit` end to end: the real console entry point in a subprocess, real kustomize.

Exit codes, --fail-on, --format json/sarif, --rule, stdin `-`, --no-render, --env, --output,
colour, and one-line errors (exit 2, no traceback) for bad paths, flags and policies.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from statekeeper.cli.audit import exit_code
from statekeeper.findings import Finding, Report, Severity

from .report.github_sarif import github_problems

SARIF_SCHEMA = json.loads(
    (Path(__file__).parent / "report" / "sarif-schema-2.1.0.json").read_text()
)

NAMESPACES = """\
apiVersion: v1
kind: Namespace
metadata:
  name: web
  labels:
    environment: production
---
apiVersion: v1
kind: Namespace
metadata:
  name: velero
  labels:
    environment: production
"""

# A stateless app and a daily Velero schedule covering every namespace: nothing to report.
CLEAN = (
    NAMESPACES
    + """\
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: web
  labels:
    app.kubernetes.io/name: web
spec:
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: web
          image: nginx:1.27
---
apiVersion: velero.io/v1
kind: Schedule
metadata:
  name: daily
  namespace: velero
spec:
  schedule: "0 3 * * *"
  template:
    includedNamespaces: [web, velero]
    snapshotVolumes: true
"""
)

# A claim with a bad name (SK103) and, in production, the development class (SK101).
BAD_PVC = """\
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: webdata
  namespace: web
  labels:
    app.kubernetes.io/name: web
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: synelia-iscsi-delete
  resources:
    requests:
      storage: 1Gi
"""


def cli(
    *args: str, cwd: Path | None = None, input: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    for name in ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE"):
        if env is None or name not in env:
            full_env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "statekeeper", "audit", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        input=input,
        env=full_env,
        timeout=120,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("statekeeper: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0]


def findings_of(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(result.stdout)["findings"]
    return data


@pytest.fixture
def clean(tmp_path: Path) -> Path:
    path = tmp_path / "clean.yaml"
    path.write_text(CLEAN)
    return path


@pytest.fixture
def bad(tmp_path: Path) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(CLEAN + BAD_PVC)
    return path


# --------------------------------------------------------------------------- exit codes


def _report(*severities: Severity) -> Report:
    return Report(
        findings=[
            Finding(
                rule="SK103",
                slug="pvc-name",
                severity=s,
                message="m",
                remediation="r",
                kind="PersistentVolumeClaim",
                name=f"x{i}",
            )
            for i, s in enumerate(severities)
        ]
    )


@pytest.mark.parametrize(
    ("severities", "fail_on", "code"),
    [
        ((), "error", 0),
        ((), "info", 0),
        ((Severity.ERROR,), "error", 1),
        ((Severity.WARNING,), "error", 0),
        ((Severity.WARNING,), "warning", 1),
        ((Severity.INFO,), "warning", 0),
        ((Severity.INFO,), "info", 1),
        ((Severity.ERROR, Severity.INFO), "never", 0),
    ],
)
def test_exit_code_thresholds(severities: tuple[Severity, ...], fail_on: str, code: int) -> None:
    assert exit_code(_report(*severities), fail_on) == code


def test_clean_manifests_exit_0(clean: Path) -> None:
    result = cli(str(clean), "--fail-on", "info")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings" in result.stdout
    assert result.stderr == ""


def test_findings_exit_1_and_fail_on_controls_it(bad: Path) -> None:
    as_json = cli(str(bad), "--format", "json", "--fail-on", "never")
    assert as_json.returncode == 0
    found = findings_of(as_json)
    rules = {f["rule"] for f in found}
    assert {"SK101", "SK103"} <= rules
    severities = {Severity(f["severity"]) for f in found}
    for threshold in ("error", "warning", "info"):
        expected = 1 if any(s.at_least(Severity(threshold)) for s in severities) else 0
        assert cli(str(bad), "--fail-on", threshold).returncode == expected, threshold
    default = cli(str(bad))
    assert default.returncode == (1 if Severity.ERROR in severities else 0)
    assert "SK103 pvc-name" in default.stdout and "webdata" in default.stdout


# --------------------------------------------------------------------------- formats


def test_format_json(bad: Path) -> None:
    result = cli(str(bad), "--format", "json", "--fail-on", "never")
    data = json.loads(result.stdout)
    assert list(data) == ["version", "tool", "findings", "suppressed", "notes", "summary"]
    assert data["version"] == 1
    pvc = next(f for f in data["findings"] if f["rule"] == "SK103")
    assert (pvc["kind"], pvc["namespace"], pvc["name"]) == (
        "PersistentVolumeClaim",
        "web",
        "webdata",
    )
    assert pvc["environment"] == "production"
    assert pvc["file"].endswith("bad.yaml") and isinstance(pvc["line"], int) and pvc["line"] > 1
    assert data["summary"]["findings"] == len(data["findings"])


def test_format_sarif_is_valid(bad: Path) -> None:
    result = cli(bad.name, "--format", "sarif", "--fail-on", "never", cwd=bad.parent)
    log = json.loads(result.stdout)
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(log)
    run = log["runs"][0]
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert {"SK101", "SK103", "SK201", "SK401", "SK501"} <= set(rule_ids)
    docs = Path(__file__).resolve().parent.parent / "docs" / "rules"
    for rule in run["tool"]["driver"]["rules"]:
        page = rule["helpUri"].rsplit("/", 1)[1]
        assert page.startswith(rule["id"] + "-") and (docs / page).is_file(), rule["helpUri"]
    sk103 = next(r for r in run["results"] if r["ruleId"] == "SK103")
    region = sk103["locations"][0]["physicalLocation"]["region"]
    assert region["startLine"] > 1
    assert github_problems(log) == []


def test_sarif_uris_from_the_git_root_or_srcroot(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "apps").mkdir()
    (repo / "apps" / "bad.yaml").write_text(CLEAN + BAD_PVC)
    run_dir = repo / "apps"

    def uris(*args: str) -> set[str]:
        result = cli("bad.yaml", "-f", "sarif", "--fail-on", "never", *args, cwd=run_dir)
        log = json.loads(result.stdout)
        return {
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for r in log["runs"][0]["results"]
        }

    assert uris() == {"apps/bad.yaml"}
    assert uris("--srcroot", str(run_dir)) == {"bad.yaml"}


def test_sarif_from_stdin_keeps_the_name(bad: Path) -> None:
    result = cli("-", "-f", "sarif", "--fail-on", "never", input=bad.read_text())
    log = json.loads(result.stdout)
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(log)
    artifacts = [
        r["locations"][0]["physicalLocation"]["artifactLocation"] for r in log["runs"][0]["results"]
    ]
    assert artifacts and all(a == {"uri": "<stdin>"} for a in artifacts)


# --------------------------------------------------------------------------- selection


def test_rule_filter_by_id_and_slug(bad: Path) -> None:
    by_id = findings_of(cli(str(bad), "--format", "json", "--rule", "SK103"))
    assert by_id and {f["rule"] for f in by_id} == {"SK103"}
    by_slug = findings_of(cli(str(bad), "--format", "json", "-r", "pvc-name,SK101"))
    assert {f["rule"] for f in by_slug} == {"SK101", "SK103"}
    # a selection without errors can pass
    assert cli(str(bad), "--rule", "SK201").returncode == 0


def test_unknown_rule_is_a_usage_error(bad: Path) -> None:
    assert_one_line_error(cli(str(bad), "--rule", "SK999"), "SK999")


def test_env_overrides_the_namespace_label(bad: Path) -> None:
    prod = {f["rule"] for f in findings_of(cli(str(bad), "-f", "json", "--env", "production"))}
    dev = findings_of(cli(str(bad), "-f", "json", "--env", "development"))
    assert "SK101" in prod
    assert "SK101" not in {f["rule"] for f in dev}
    assert {f["environment"] for f in dev} == {"development"}


def test_stdin(bad: Path) -> None:
    result = cli("-", "--format", "json", "--fail-on", "never", input=bad.read_text())
    assert result.returncode == 0, result.stderr
    found = findings_of(result)
    assert "SK103" in {f["rule"] for f in found}
    assert json.loads(result.stdout)["summary"]["resources"] >= 4


def test_no_render_reads_files_instead_of_running_kustomize(tmp_path: Path) -> None:
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "app.yaml").write_text(CLEAN)
    # missing.yaml makes `kustomize build` fail; --no-render never runs it.
    (tmp_path / "base" / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "resources: [app.yaml, missing.yaml]\n"
    )
    (tmp_path / "overlays" / "prod").mkdir(parents=True)
    (tmp_path / "overlays" / "prod" / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "resources: [../../base]\n"
    )
    rendered = cli(str(tmp_path), "--format", "json")
    assert rendered.returncode == 1, rendered.stderr
    broken = [f for f in findings_of(rendered) if f["rule"] == "SK002"]
    assert len(broken) == 1 and "missing.yaml" in broken[0]["message"]
    assert broken[0]["file"].endswith("overlays/prod/kustomization.yaml")
    assert_one_line_error(cli(str(tmp_path), "--strict-inputs"), "missing.yaml")
    raw = cli(str(tmp_path), "--no-render", "--format", "json", "--fail-on", "never")
    assert raw.returncode == 0, raw.stderr
    assert json.loads(raw.stdout)["summary"]["resources"] >= 4


def test_default_path_is_the_current_directory(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(CLEAN + BAD_PVC)
    found = findings_of(cli("--format", "json", cwd=tmp_path))
    assert "SK103" in {f["rule"] for f in found}


def test_plain_file_in_the_working_directory_is_not_app_dot(tmp_path: Path) -> None:
    """A correctly named claim of an unlabelled workload, audited as `web.yaml` from its own
    directory: the app is the workload (`web`), not `.`, and SK103 has nothing to say."""
    (tmp_path / "web.yaml").write_text(
        """\
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: web-config-pvc, namespace: web}
spec:
  storageClassName: synelia-iscsi-retain
  resources: {requests: {storage: 1Gi}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: web}
spec:
  template:
    spec:
      containers:
        - {name: web, image: "nginx:1.27", volumeMounts: [{name: cfg, mountPath: /etc/web}]}
      volumes:
        - {name: cfg, persistentVolumeClaim: {claimName: web-config-pvc}}
"""
    )
    result = cli("web.yaml", "--env", "prod", "--format", "json", "--fail-on", "never",
                 cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert "SK103" not in {f["rule"] for f in report["findings"]}
    assert "." not in report["summary"]["apps"]
    assert "web" in report["summary"]["apps"]


# --------------------------------------------------------------------------- output


def test_output_file(bad: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.sarif"
    result = cli(str(bad), "--format", "sarif", "--output", str(out), "--fail-on", "never")
    assert result.returncode == 0
    assert result.stdout == ""
    assert json.loads(out.read_text())["version"] == "2.1.0"


def test_text_output_file_is_never_coloured(bad: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.txt"
    result = cli(str(bad), "-o", str(out), "--fail-on", "never", env={"FORCE_COLOR": "1"})
    assert result.returncode == 0 and result.stdout == ""
    text = out.read_text()
    assert text.startswith("statekeeper audit") and "\x1b[" not in text


def test_unwritable_output_is_one_line(bad: Path, tmp_path: Path) -> None:
    target = tmp_path / "no-such-dir" / "report.json"
    assert_one_line_error(cli(str(bad), "-f", "json", "-o", str(target)), str(target))


def test_colour_only_when_forced_and_never_with_no_color(bad: Path) -> None:
    assert "\x1b[" not in cli(str(bad)).stdout  # piped: plain
    forced = cli(str(bad), env={"FORCE_COLOR": "1"})
    assert "\x1b[" in forced.stdout
    assert "\x1b[" not in cli(str(bad), env={"FORCE_COLOR": "1", "NO_COLOR": "1"}).stdout


# --------------------------------------------------------------------------- usage errors


def test_missing_path_is_one_line_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    assert_one_line_error(cli(str(missing)), "nope")


def test_missing_policy_is_one_line_error(clean: Path, tmp_path: Path) -> None:
    assert_one_line_error(cli(str(clean), "--policy", str(tmp_path / "policy.yaml")), "policy.yaml")


@pytest.mark.parametrize(
    "args", [("--format", "xml"), ("--fail-on", "sometimes"), ("--no-such-flag",)]
)
def test_typer_usage_errors_exit_2(clean: Path, args: tuple[str, ...]) -> None:
    result = cli(str(clean), *args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_help_explains_formats_and_exit_codes() -> None:
    result = cli("--help", env={"COLUMNS": "120"})
    assert result.returncode == 0
    for needle in (
        "--fail-on",
        "--format",
        "sarif",
        "Exit codes",
        "2  usage error",
        "--strict-inputs",
        "--no-render",
        "--rule",
    ):
        assert needle in result.stdout, needle


@pytest.mark.parametrize("command", ["audit", "fix"])
def test_help_paragraphs_reflow_at_80_columns(command: str) -> None:
    """Help written with hard line breaks longer than the terminal wraps into ragged fragments
    (a short line, then the rest of the sentence on the next): every paragraph line that is
    followed by another line of the same paragraph must fill most of the width."""
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    result = subprocess.run(
        [sys.executable, "-m", "statekeeper", command, "--help"],
        capture_output=True,
        text=True,
        env={**env, "COLUMNS": "80"},
        timeout=60,
    )
    assert result.returncode == 0
    description = result.stdout.split("╭")[0].splitlines()
    prose = [line.rstrip() for line in description]
    for line, following in itertools.pairwise(prose):
        if not line.strip() or not following.strip() or line.startswith("   "):
            continue
        if following.startswith("   ") or line.endswith(":"):
            continue  # a table (formats, exit codes) follows its heading
        assert len(line) >= 60, f"ragged help line: {line!r} then {following!r}"


def test_unknown_env_is_a_usage_error(clean: Path) -> None:
    """`--env prodution` must not silently switch the storage-class rules off."""
    result = cli(str(clean), "--env", "prodution")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("statekeeper: error: --env 'prodution': unknown environment")
    assert "production" in result.stderr and len(result.stderr.splitlines()) == 1
    assert cli(str(clean), "--env", "PROD", "--fail-on", "never").returncode == 0
