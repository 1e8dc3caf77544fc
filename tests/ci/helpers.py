"""Fixtures shared by the CI integration tests: a copy of the project as a hook/action
repository, and a small GitOps repository (kustomize base + dev/prod overlays) that is clean."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

BASE_APP = """\
apiVersion: v1
kind: Namespace
metadata: {name: web}
---
apiVersion: v1
kind: Namespace
metadata: {name: velero}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: web
  labels: {app.kubernetes.io/name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: nginx:1.27
---
apiVersion: velero.io/v1
kind: Schedule
metadata: {name: daily, namespace: velero}
spec:
  schedule: "0 3 * * *"
  template:
    includedNamespaces: ["*"]
    snapshotVolumes: true
"""

BAD_CLAIM = """\
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: webdata
  namespace: web
  labels: {app.kubernetes.io/name: web}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: synelia-iscsi-delete
  resources: {requests: {storage: 1Gi}}
"""

OVERLAY = """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [../../base]
patches:
  - target: {{kind: Namespace}}
    patch: |-
      - op: add
        path: /metadata/labels
        value: {{environment: {env}}}
"""


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }
    result = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def project_copy(target: Path) -> Path:
    """The project's packaged files in a fresh git repository (one commit), as users would
    reference it from pre-commit or `uses:`."""
    target.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml", "action.yml"):
        shutil.copy2(REPO / name, target / name)
    shutil.copytree(
        REPO / "src", target / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    shutil.copytree(REPO / "ci", target / "ci")
    git(target, "init", "-q", "-b", "main")
    git(target, "add", "-A")
    git(target, "commit", "-q", "-m", "statekeeper")
    return target


def gitops_repo(target: Path) -> Path:
    """A clean GitOps repository: base/ with one stateless app, overlays dev and prod."""
    (target / "base").mkdir(parents=True)
    (target / "base" / "app.yaml").write_text(BASE_APP)
    (target / "base" / "kustomization.yaml").write_text("resources: [app.yaml]\n")
    for name, env in (("dev", "development"), ("prod", "production")):
        (target / "overlays" / name).mkdir(parents=True)
        (target / "overlays" / name / "kustomization.yaml").write_text(OVERLAY.format(env=env))
    git(target, "init", "-q", "-b", "main")
    git(target, "add", "-A")
    git(target, "commit", "-q", "-m", "clean")
    return target


def add_violation(repo: Path) -> None:
    """A claim named against the convention, mounted by the app (fix migrates only claims a
    workload in the repo mounts), included by both overlays."""
    mounted = BASE_APP.replace(
        "          image: nginx:1.27\n",
        "          image: nginx:1.27\n"
        "          volumeMounts: [{name: data, mountPath: /data}]\n"
        "      volumes: [{name: data, persistentVolumeClaim: {claimName: webdata}}]\n",
    )
    assert mounted != BASE_APP
    (repo / "base" / "app.yaml").write_text(mounted)
    (repo / "base" / "pvc.yaml").write_text(BAD_CLAIM)
    (repo / "base" / "kustomization.yaml").write_text("resources: [app.yaml, pvc.yaml]\n")
