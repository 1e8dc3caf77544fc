"""An Argo CD Application's Helm values, source by source: value files, then `values`, then
`valuesObject`, then `parameters` (Argo CD's order of precedence), and a note for each part
that was not read. Rendered by real helm from a chart folder of the repository."""

from __future__ import annotations

from pathlib import Path

from statekeeper.manifests.helm import HelmOptions
from statekeeper.manifests.load import load_sources

from .test_helm import CHART, find, messages, write
from .test_helm import helm as helm  # the session fixture
from .test_helm import repo as repo  # the fixture

APP = """\
    apiVersion: argoproj.io/v1alpha1
    kind: Application
    metadata:
      name: radarr
      namespace: argocd
    spec:
      destination:
        namespace: media
      sources:
        - repoURL: https://git.example.org/homelab.git
          path: charts/stateful-app
          helm:
            releaseName: films
            valueFiles: [values-prod.yaml, missing.yaml]
            values: |
              storageClass: from-values
              dbPath: /data/from-values.db
            valuesObject:
              dbPath: /data/from-object.db
              image: from-object:1
            parameters:
              - {name: image, value: "from-parameter:1"}
        - repoURL: https://git.example.org/homelab.git
          path: not-helm
        - just a string
"""


def test_argo_values_merged_in_argo_cds_order_with_notes(
    repo: Path, helm: str, tmp_path: Path
) -> None:
    write(repo / "charts/stateful-app", CHART)
    write(repo, {
        "charts/stateful-app/values-prod.yaml": "storageClass: from-file\nimage: from-file:1\n",
        "argocd/app.yaml": APP,
    })  # fmt: skip
    result = load_sources([str(repo)], helm=HelmOptions(cache_dir=tmp_path / "cache"))
    claim = find(result.resources, "PersistentVolumeClaim", "films-data")
    assert claim.namespace == "media"
    assert claim.body["spec"]["storageClassName"] == "from-values"  # values over valueFiles
    container = find(result.resources, "Deployment", "films").body["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert container["image"] == "from-parameter:1"  # parameters last
    assert container["env"][0]["value"] == "/data/from-object.db"  # valuesObject over values
    assert any("helm.valueFiles missing.yaml not readable; ignored" in m
               for m in messages(result.notes)), messages(result.notes)  # fmt: skip


def test_argo_sources_not_read_are_named(repo: Path, helm: str, tmp_path: Path) -> None:
    """Bad inline YAML and a value file that is no path are ignored, a chart from a registry
    without a scheme is OCI, and a chart folder outside this repo is unreachable: each gets a
    note (nothing here is fetched)."""
    write(repo / "charts/stateful-app", CHART)
    write(repo, {
        "argocd/apps.yaml": """\
            apiVersion: argoproj.io/v1alpha1
            kind: Application
            metadata: {name: lidarr, namespace: argocd}
            spec:
              source:
                repoURL: https://git.example.org/homelab.git
                path: charts/stateful-app
                helm:
                  valueFiles: [7]
                  values: "a: [\\n"
            ---
            apiVersion: argoproj.io/v1alpha1
            kind: Application
            metadata: {name: sonarr, namespace: argocd}
            spec:
              source:
                repoURL: ghcr.io/example/charts
                chart: app
                targetRevision: 1.0.0
            ---
            apiVersion: argoproj.io/v1alpha1
            kind: Application
            metadata: {name: bazarr, namespace: argocd}
            spec:
              source:
                repoURL: https://git.example.org/other.git
                path: charts/elsewhere
                helm: {}
            """,
    })  # fmt: skip
    result = load_sources([str(repo)], helm=HelmOptions(cache_dir=tmp_path / "cache"))
    text = "\n".join(messages(result.notes))
    assert "helm.valueFiles 7 (in the chart's repo) not read" in text, text
    assert "spec.source.helm.values is not valid YAML; ignored" in text, text
    assert "oci://ghcr.io/example/charts/app:1.0.0" in text, text
    assert (
        "chart folder charts/elsewhere of https://git.example.org/other.git not in this repo"
        in (text)
    ), text
    assert find(result.resources, "Deployment", "lidarr").namespace is None
