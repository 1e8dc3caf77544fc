"""SK401 on a repo where namespaces are created by different objects: one finding per namespace
and environment, on the Namespace object when the repo has one (even in another environment),
listing the objects that create it (Namespace, Flux HelmRelease `install.createNamespace`, Argo
CD Application `CreateNamespace=true`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

FILES = {
    "base/app/kustomization.yaml": """\
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Kustomization
        resources:
          - release.yaml
        """,
    # first mention of `media` in the production overlay: a release that creates it
    "base/app/release.yaml": """\
        apiVersion: helm.toolkit.fluxcd.io/v2
        kind: HelmRelease
        metadata:
          name: jellyfin
          namespace: media
        spec:
          interval: 1h
          install:
            createNamespace: true
          chart:
            spec:
              chart: jellyfin
              sourceRef:
                kind: HelmRepository
                name: missing
        """,
    "overlays/prod/kustomization.yaml": """\
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Kustomization
        resources:
          - ../../base/app
        """,
    # outside every kustomization: no environment
    "namespaces/media.yaml": """\
        apiVersion: v1
        kind: Namespace
        metadata:
          name: media
        """,
    "argo/tools.yaml": """\
        apiVersion: argoproj.io/v1alpha1
        kind: Application
        metadata:
          name: tools
          namespace: argocd
        spec:
          project: default
          source:
            repoURL: https://git.example.invalid/tools.git
            path: deploy
          destination:
            server: https://kubernetes.default.svc
            namespace: tools
          syncPolicy:
            syncOptions:
              - CreateNamespace=true
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: settings
          namespace: tools
        data:
          greeting: hello
        """,
}


def test_sk401_points_at_the_namespace_and_lists_its_creators(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    for name, text in FILES.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NO_COLOR")}
    env["STATEKEEPER_CACHE_DIR"] = str(tmp_path / "cache")
    result = subprocess.run(
        [sys.executable, "-m", "statekeeper", "audit", ".", "--format", "json", "--rule", "SK401"],
        capture_output=True,
        text=True,
        cwd=repo,
        env=env,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    found = {
        (f["environment"], f["name"]): (f["file"], f["line"], f["message"].split("24h)")[1])
        for f in json.loads(result.stdout)["findings"]
    }
    assert found == {
        # the production overlay only holds the release: the finding is on the Namespace
        ("production", "media"): (
            "namespaces/media.yaml",
            1,
            "; also created by HelmRelease jellyfin (base/app/release.yaml:1)",
        ),
        (None, "media"): ("namespaces/media.yaml", 1, ""),
        # no Namespace object: the first object in it, and the Application that creates it
        (None, "tools"): (
            "argo/tools.yaml",
            18,
            "; created by Application tools (argo/tools.yaml:1)",
        ),
        (None, "argocd"): ("argo/tools.yaml", 1, "; created by no object in the repo"),
    }
