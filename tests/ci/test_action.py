"""The GitHub Action (action.yml, composite) run step by step as a runner would: each `run`
script in bash `-eo pipefail` with the variables GitHub sets (GITHUB_ACTION_PATH, RUNNER_TEMP,
GITHUB_WORKSPACE, GITHUB_STEP_SUMMARY, GITHUB_OUTPUT, GITHUB_PATH, ...), `${{ inputs.* }}`
replaced by the inputs or their defaults, GITHUB_PATH lines prepended to PATH for later steps.
It installs statekeeper from the action's own checkout (a copy of this project) for real."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from ..report.github_sarif import github_problems
from .helpers import REPO, add_violation, gitops_repo, project_copy

pytestmark = pytest.mark.slow
SARIF_SCHEMA = json.loads((REPO / "tests" / "report" / "sarif-schema-2.1.0.json").read_text())


class Runner:
    """Just enough of a GitHub runner for a composite action's `run` steps."""

    def __init__(self, action: Path, workspace: Path, temp: Path) -> None:
        self.action = action
        self.spec: dict[str, Any] = yaml.safe_load((action / "action.yml").read_text())
        self.workspace = workspace
        temp.mkdir(parents=True, exist_ok=True)
        self.files = {
            name: temp / name for name in ("summary.md", "output.txt", "path.txt", "env.txt")
        }
        for file in self.files.values():
            file.touch()
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NO_COLOR")},
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": str(workspace),
            "GITHUB_ACTION_PATH": str(action),
            "GITHUB_REPOSITORY": "example/gitops",
            "GITHUB_SHA": "0" * 40,
            "RUNNER_OS": "Linux",
            "RUNNER_TEMP": str(temp),
            "GITHUB_STEP_SUMMARY": str(self.files["summary.md"]),
            "GITHUB_OUTPUT": str(self.files["output.txt"]),
            "GITHUB_PATH": str(self.files["path.txt"]),
            "GITHUB_ENV": str(self.files["env.txt"]),
            # kubectl (kustomize) from the project's venv, as a workflow would set it up
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        }
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)

    def expand(self, text: str, inputs: dict[str, str]) -> str:
        defaults = {k: str(v.get("default", "")) for k, v in self.spec["inputs"].items()}
        values = {**defaults, **inputs}
        return re.sub(r"\$\{\{\s*inputs\.([\w-]+)\s*\}\}", lambda m: values[m.group(1)], text)

    def run_step(
        self, step: dict[str, Any], inputs: dict[str, str]
    ) -> subprocess.CompletedProcess[str]:
        assert step["shell"] == "bash"
        env = dict(self.env)
        for line in self.files["path.txt"].read_text().splitlines():
            env["PATH"] = f"{line}{os.pathsep}{env['PATH']}"
        for key, value in step.get("env", {}).items():
            env[key] = self.expand(str(value), inputs)
        script = self.files["summary.md"].parent / "step.sh"
        script.write_text(self.expand(step["run"], inputs))
        return subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=self.workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )

    def step(self, step_id: str) -> dict[str, Any]:
        return next(s for s in self.spec["runs"]["steps"] if s.get("id") == step_id)

    def outputs(self) -> dict[str, str]:
        lines = self.files["output.txt"].read_text().splitlines()
        return dict(line.split("=", 1) for line in lines)


def test_action_audits_annotates_and_writes_sarif_and_summary(tmp_path: Path) -> None:
    action = project_copy(tmp_path / "action")
    workspace = gitops_repo(tmp_path / "workspace")
    runner = Runner(action, workspace, tmp_path / "runner-temp")
    assert runner.spec["runs"]["using"] == "composite"
    assert set(runner.spec["inputs"]) >= {
        "paths",
        "config",
        "policy",
        "fail-on",
        "baseline",
        "sarif-file",
    }
    base = {"python": sys._base_executable}  # an interpreter without statekeeper

    install, audit = runner.spec["runs"]["steps"]
    installed = runner.run_step(install, base)
    assert installed.returncode == 0, installed.stderr
    venv_bin = Path(runner.files["path.txt"].read_text().strip())
    assert (venv_bin / "statekeeper").is_file()

    clean = runner.run_step(audit, base)
    assert clean.returncode == 0, clean.stderr
    assert clean.stdout == ""  # no annotations
    assert "No findings" in runner.files["summary.md"].read_text()
    assert runner.outputs() == {"sarif-file": "statekeeper.sarif", "exit-code": "0"}

    add_violation(workspace)
    runner.files["output.txt"].write_text("")
    failing = runner.run_step(audit, {**base, "fail-on": "warning", "sarif-file": "out/sk.sarif"})
    assert failing.returncode == 1, failing.stdout + failing.stderr
    annotations = failing.stdout.splitlines()
    assert any(
        line.startswith("::warning file=base/pvc.yaml,line=4,title=SK103 pvc-name::")
        for line in annotations
    ), annotations
    log = json.loads((workspace / "out" / "sk.sarif").read_text())
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(log)
    assert github_problems(log) == []
    results = log["runs"][0]["results"]
    sk103 = next(r for r in results if r["ruleId"] == "SK103")
    location = sk103["locations"][0]["physicalLocation"]["artifactLocation"]
    assert location == {"uri": "base/pvc.yaml", "uriBaseId": "%SRCROOT%"}
    assert sk103["properties"]["environments"] == ["development", "production"]
    summary = runner.files["summary.md"].read_text()
    assert summary.count("## statekeeper audit: ") == 2  # appended, not replaced
    assert "[SK103](" in summary
    assert runner.outputs() == {"sarif-file": "out/sk.sarif", "exit-code": "1"}
    assert runner.step("audit") is audit


def test_inputs_reach_the_script_as_environment_only() -> None:
    """No `${{ inputs.* }}` inside a run script (script injection): only in `env:`."""
    spec = yaml.safe_load((REPO / "action.yml").read_text())
    for step in spec["runs"]["steps"]:
        assert "${{" not in step["run"], step["name"]
