"""The GitLab CI template run as a runner would: `before_script` and `script` lines in a shell
with GitLab's variables (CI, GITLAB_CI, CI_PROJECT_DIR, ...) and the job's `variables`, the
image's `python` being a fresh virtualenv; its artifacts are a Code Quality report and a JUnit
report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from lxml import etree

from .helpers import REPO, add_violation, gitops_repo, project_copy

pytestmark = pytest.mark.slow
TEMPLATE = REPO / "ci" / "gitlab" / "statekeeper.gitlab-ci.yml"


def run_job(job: dict[str, object], project: Path, env: dict[str, str]) -> int:
    for line in [*job["before_script"], *job["script"]]:  # type: ignore[misc]
        result = subprocess.run(
            ["bash", "-eo", "pipefail", "-c", str(line)],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if result.returncode:
            return result.returncode
    return 0


def test_template_writes_code_quality_and_junit(tmp_path: Path) -> None:
    spec = yaml.safe_load(TEMPLATE.read_text())
    job = spec[".statekeeper-audit"]
    assert job["artifacts"]["reports"] == {
        "codequality": "gl-code-quality-report.json",
        "junit": "statekeeper-junit.xml",
    }
    source = project_copy(tmp_path / "statekeeper")
    project = gitops_repo(tmp_path / "project")
    add_violation(project)
    image = tmp_path / "image-python"
    subprocess.run([sys._base_executable, "-m", "venv", str(image)], check=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NO_COLOR")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update({str(k): str(v) for k, v in job["variables"].items()})
    env.update(
        {
            "CI": "true",
            "GITLAB_CI": "true",
            "CI_PROJECT_DIR": str(project),
            "CI_JOB_NAME": "statekeeper",
            "CI_COMMIT_SHA": "0" * 40,
            "STATEKEEPER_INSTALL": str(source),  # the job's variables, as a user overrides them
            "STATEKEEPER_FAIL_ON": "warning",
            # the image's python first, then kubectl from the project's venv
            "PATH": os.pathsep.join(
                [str(image / "bin"), str(Path(sys.executable).parent), os.environ["PATH"]]
            ),
        }
    )
    assert run_job(job, project, env) == 1  # a warning fails the job at fail-on warning

    issues = json.loads((project / "gl-code-quality-report.json").read_text())
    sk103 = [i for i in issues if i["check_name"] == "SK103"]
    assert len(sk103) == 2  # development and production
    assert {i["location"]["path"] for i in sk103} == {"base/pvc.yaml"}
    assert all(i["severity"] == "minor" for i in sk103)  # SK103 is a warning
    assert all(len(i["fingerprint"]) == 64 for i in issues)
    assert len({i["fingerprint"] for i in issues}) == len(issues)
    junit = etree.parse(str(project / "statekeeper-junit.xml"))
    etree.XMLSchema(etree.parse(str(REPO / "tests" / "report" / "junit.xsd"))).assertValid(junit)
    failures = junit.findall(".//testsuite[@name='SK103 pvc-name']/testcase/failure")
    assert len(failures) == 2
