"""The pre-commit hooks with the real `pre-commit` (PyPI): `pre-commit try-repo` installs the
hooks from a copy of this project into their own virtualenv and runs them on the staged files
of a GitOps repository — a commit with a violation is rejected, a clean one passes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from statekeeper.precommit import audit_targets

from .helpers import BAD_CLAIM, add_violation, git, gitops_repo, project_copy

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hooks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    root = tmp_path_factory.mktemp("pre-commit")
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(root / "cache"),  # the hook virtualenvs, kept for the module
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",  # kubectl
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("FORCE_COLOR", None)
    yield project_copy(root / "statekeeper"), env


def try_repo(
    hooks: tuple[Path, dict[str, str]], repo: Path, hook: str
) -> subprocess.CompletedProcess[str]:
    source, env = hooks
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(source), hook, "--color=never"],
        cwd=repo,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )


def test_violation_rejected_clean_change_passes(
    hooks: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    repo = gitops_repo(tmp_path / "gitops")
    # a clean change: another image tag
    app = repo / "base" / "app.yaml"
    app.write_text(app.read_text().replace("nginx:1.27", "nginx:1.28"))
    git(repo, "add", "-A")
    clean = try_repo(hooks, repo, "statekeeper-audit")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "statekeeper audit" in clean.stdout and "Passed" in clean.stdout
    git(repo, "commit", "-q", "-m", "tag")

    add_violation(repo)
    git(repo, "add", "-A")
    rejected = try_repo(hooks, repo, "statekeeper-audit")
    assert rejected.returncode == 1, rejected.stdout + rejected.stderr
    assert "Failed" in rejected.stdout
    # the staged base file was audited through both overlays that include it
    assert "SK103 pvc-name" in rejected.stdout
    assert "development · " in rejected.stdout and "production · " in rejected.stdout


def test_fix_hook_changes_files_and_fails(
    hooks: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    repo = gitops_repo(tmp_path / "gitops")
    add_violation(repo)
    git(repo, "add", "-A")
    result = try_repo(hooks, repo, "statekeeper-fix")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "files were modified by this hook" in result.stdout
    assert (repo / "base" / "pvc.yaml").read_text() != BAD_CLAIM


def test_files_map_to_the_overlays_that_include_them(tmp_path: Path) -> None:
    repo = gitops_repo(tmp_path / "gitops")
    add_violation(repo)
    (repo / "loose").mkdir()
    (repo / "loose" / "extra.yaml").write_text(BAD_CLAIM)
    (repo / "overlays" / "prod" / "patch.yaml").write_text("{}\n")
    assert audit_targets(["base/pvc.yaml"], repo) == ["overlays/dev", "overlays/prod"]
    assert audit_targets(["overlays/prod/patch.yaml"], repo) == ["overlays/prod"]
    assert audit_targets(["base/kustomization.yaml"], repo) == ["overlays/dev", "overlays/prod"]
    assert audit_targets(["loose/extra.yaml", "README.md"], repo) == ["loose/extra.yaml"]
    assert audit_targets(["notes.txt"], repo) == []
