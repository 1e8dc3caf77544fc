"""Helm releases in GitOps repos (Flux HelmRelease, Argo CD Helm sources, kustomize helmCharts):
rendered by real helm from a chart repository served on 127.0.0.1, app-template values
interpreted when the chart is out of reach, every other release named in a note."""

from __future__ import annotations

import functools
import http.server
import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from statekeeper.manifests.helm import HelmOptions
from statekeeper.manifests.lines import field_line
from statekeeper.manifests.load import load_sources
from statekeeper.manifests.resource import Resource
from tests.conftest import VENV_BIN, free_port


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path / "repo"


@pytest.fixture(scope="session")
def helm() -> str:
    path = VENV_BIN / "helm"
    if not path.exists():
        pytest.fail("helm not in .venv/bin: run `make test` (scripts/fetch_kubectl.py fetches it)")
    return str(path)


def find(resources: list[Resource], kind: str, name: str) -> Resource:
    found = [r for r in resources if r.kind == kind and r.name == name]
    assert len(found) == 1, [f"{r.kind}/{r.name}" for r in resources]
    return found[0]


def messages(notes: list[object]) -> list[str]:
    return [str(getattr(n, "message", n)) for n in notes]


# A closed port on the loopback: "offline" without touching any network but 127.0.0.1.
CLOSED = f"127.0.0.1:{free_port()}"

FLUX_APP = {
    "kubernetes/apps/default/sonarr/ks.yaml": """\
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata:
          name: sonarr
        spec:
          path: ./kubernetes/apps/default/sonarr/app
          targetNamespace: media
          postBuild:
            substitute:
              APP: sonarr
            substituteFrom:
              - kind: ConfigMap
                name: cluster-settings
        """,
    "kubernetes/flux/cluster-settings.yaml": """\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: cluster-settings
          namespace: flux-system
        data:
          TIMEZONE: Europe/Paris
        """,
    "kubernetes/apps/default/sonarr/app/kustomization.yaml": """\
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Kustomization
        resources:
          - ./helmrelease.yaml
          - ./ocirepository.yaml
        """,
    "kubernetes/apps/default/sonarr/app/ocirepository.yaml": f"""\
        apiVersion: source.toolkit.fluxcd.io/v1
        kind: OCIRepository
        metadata:
          name: sonarr
        spec:
          interval: 15m
          ref:
            tag: 4.1.1
          url: oci://{CLOSED}/bjw-s-labs/helm/app-template
        """,
    "kubernetes/apps/default/sonarr/app/helmrelease.yaml": """\
        apiVersion: helm.toolkit.fluxcd.io/v2
        kind: HelmRelease
        metadata:
          name: sonarr
        spec:
          chartRef:
            kind: OCIRepository
            name: sonarr
          interval: 1h
          values:
            controllers:
              sonarr:
                containers:
                  app:
                    image:
                      repository: ghcr.io/home-operations/sonarr
                      tag: 4.0.19
                    env:
                      TZ: ${TIMEZONE}
                      LOG_LEVEL: ${LOG_LEVEL:=info}
                      WEBHOOK: ${UNSET_VAR}
            persistence:
              config:
                existingClaim: ${APP}
              media:
                type: nfs
                server: nas.internal
                path: /mnt/media
                globalMounts:
                  - path: /media
        """,
    "kubernetes/apps/default/chaski/helmrelease.yaml": f"""\
        apiVersion: helm.toolkit.fluxcd.io/v2beta2
        kind: HelmRelease
        metadata:
          name: chaski
          namespace: default
        spec:
          chart:
            spec:
              chart: chaski
              version: 0.5.0
              sourceRef:
                kind: HelmRepository
                name: home-charts
                namespace: flux-system
        ---
        apiVersion: source.toolkit.fluxcd.io/v1
        kind: HelmRepository
        metadata:
          name: home-charts
          namespace: flux-system
        spec:
          url: http://{CLOSED}/charts
        """,
}

ARGO_APP = """\
    apiVersion: argoproj.io/v1alpha1
    kind: Application
    metadata:
      name: vaultwarden
      namespace: argocd
    spec:
      destination:
        namespace: vaultwarden
      source:
        repoURL: {closed}/bjw-s-labs/helm
        chart: app-template
        targetRevision: 3.7.3
        helm:
          valuesObject:
            controllers:
              main:
                containers:
                  main:
                    image:
                      repository: vaultwarden/server
                      tag: 1.32.0
            persistence:
              data:
                size: 1Gi
                accessMode: ReadWriteOnce
                storageClass: fast
          parameters:
            - name: persistence.data.size
              value: 2Gi
    """


def test_flux_app_template_offline_is_interpreted_with_flux_namespace_and_substitutions(
    repo: Path, kubectl: str, tmp_path: Path
) -> None:
    write(repo, FLUX_APP)
    result = load_sources([str(repo)], helm=HelmOptions(cache_dir=tmp_path / "cache"))
    deployment = find(result.resources, "Deployment", "sonarr")
    assert deployment.namespace == "media"  # the Flux Kustomization's targetNamespace
    pod = deployment.body["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["config"]["persistentVolumeClaim"]["claimName"] == "sonarr"  # ${APP}
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert env["TZ"] == "Europe/Paris"  # substituteFrom ConfigMap
    assert env["LOG_LEVEL"] == "info"  # ${VAR:=default}
    assert env["WEBHOOK"] == "${UNSET_VAR}"  # kept as written, with a note
    # Origin: the HelmRelease file, at the controller's line in its values.
    assert deployment.origin.file.endswith("sonarr/app/helmrelease.yaml")
    assert deployment.origin.line == 12  # `sonarr:` under `controllers:`
    notes = messages(result.notes)
    assert (
        "Flux Kustomization sonarr: postBuild leaves ${UNSET_VAR} unresolved; kept as written "
        "(not found in substitute/substituteFrom)" in notes
    )
    assert (
        f"HelmRelease default/chaski: chart not reachable offline: http://{CLOSED}/charts "
        "chart chaski 0.5.0" in notes
    )
    assert (
        "Helm releases: 2 found, 0 rendered with helm, 1 interpreted as app-template, "
        "1 skipped (each named in a note)" in notes
    )


def test_argo_cd_helm_source_app_template_v3(repo: Path, tmp_path: Path) -> None:
    write(repo, {"apps/vaultwarden.yaml": ARGO_APP.format(closed=CLOSED)})
    result = load_sources([str(repo)], helm=HelmOptions(render=False))
    claim = find(result.resources, "PersistentVolumeClaim", "vaultwarden-data")  # v3 name
    assert claim.namespace == "vaultwarden"
    assert claim.body["spec"]["storageClassName"] == "fast"
    assert claim.body["spec"]["resources"]["requests"]["storage"] == "2Gi"  # helm.parameters
    deployment = find(result.resources, "Deployment", "vaultwarden")
    assert deployment.body["spec"]["template"]["spec"]["volumes"] == [
        {"name": "data", "persistentVolumeClaim": {"claimName": "vaultwarden-data"}}
    ]
    assert "1 interpreted as app-template" in messages(result.notes)[-1]
    # Findings point at the values that set the field (lines of apps/vaultwarden.yaml).
    lines = [line.strip() for line in (repo / "apps/vaultwarden.yaml").read_text().splitlines()]
    assert field_line(claim, ["spec", "storageClassName"]) == lines.index("storageClass: fast") + 1
    container = ["spec", "template", "spec", "containers", 0]
    main_lines = [i + 1 for i, line in enumerate(lines) if line == "main:"]  # controller, container
    assert deployment.origin.line == main_lines[0]
    assert field_line(deployment, [*container, "image"]) == lines.index("image:") + 1
    assert field_line(deployment, [*container, "volumeMounts", 0]) == main_lines[1]


def test_audit_finds_the_sqlite_app_and_points_at_the_values(
    repo: Path, kubectl: str, tmp_path: Path
) -> None:
    write(repo, FLUX_APP)
    env = {"STATEKEEPER_CACHE_DIR": str(tmp_path / "cache"), "PATH": str(VENV_BIN)}
    done = subprocess.run(
        [sys.executable, "-m", "statekeeper", "audit", str(repo), "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    sqlite = [f for f in report["findings"] if f["rule"] in ("SK201", "SK202", "SK203")]
    assert {f["rule"] for f in sqlite} == {"SK201", "SK202", "SK203"}
    for finding in sqlite:
        assert finding["app"] == "sonarr"
        assert finding["file"].endswith("sonarr/app/helmrelease.yaml")
        assert finding["line"] in (12, 13, 14)  # the controller / its containers in values


CHART = {
    "Chart.yaml": """\
        apiVersion: v2
        name: stateful-app
        version: 1.2.0
        """,
    "values.yaml": """\
        image: example/app:1
        storageClass: standard
        dbPath: /data/app.db
        """,
    "templates/deployment.yaml": """\
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: {{ .Release.Name }}
          labels:
            app.kubernetes.io/name: {{ .Release.Name }}
        spec:
          selector:
            matchLabels: {app: {{ .Release.Name }}}
          template:
            metadata:
              labels: {app: {{ .Release.Name }}}
            spec:
              containers:
                - name: app
                  image: {{ .Values.image }}
                  env:
                    - name: DATABASE_PATH
                      value: {{ .Values.dbPath }}
                  volumeMounts:
                    - name: data
                      mountPath: /config
              volumes:
                - name: data
                  persistentVolumeClaim:
                    claimName: {{ .Release.Name }}-data
        """,
    "templates/pvc.yaml": """\
        apiVersion: v1
        kind: PersistentVolumeClaim
        metadata:
          name: {{ .Release.Name }}-data
        spec:
          accessModes: [ReadWriteOnce]
          storageClassName: {{ .Values.storageClass }}
          resources: {requests: {storage: 1Gi}}
        """,
}


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def chart_repo(tmp_path: Path, helm: str) -> Iterator[tuple[str, http.server.HTTPServer]]:
    """A Helm chart repository (helm package + helm repo index) on a loopback HTTP server."""
    write(tmp_path / "chart-src", CHART)
    served = tmp_path / "served"
    served.mkdir()
    subprocess.run([helm, "package", str(tmp_path / "chart-src"), "-d", str(served)],
                   check=True, capture_output=True)  # fmt: skip
    handler = functools.partial(_Quiet, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    subprocess.run([helm, "repo", "index", str(served), "--url", url],
                   check=True, capture_output=True)  # fmt: skip
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield url, server
    finally:
        server.shutdown()
        server.server_close()


def rendered_release(url: str) -> dict[str, str]:
    return {
        "apps/app/release.yaml": f"""\
            apiVersion: source.toolkit.fluxcd.io/v1
            kind: HelmRepository
            metadata:
              name: local-charts
              namespace: flux-system
            spec:
              url: {url}
            ---
            apiVersion: v1
            kind: Secret
            metadata:
              name: app-values
              namespace: media
            stringData:
              values.yaml: |
                dbPath: /config/app.db
                apiKey: SUPERSECRETVALUE123
            ---
            apiVersion: helm.toolkit.fluxcd.io/v2
            kind: HelmRelease
            metadata:
              name: sonarr
              namespace: media
            spec:
              chart:
                spec:
                  chart: stateful-app
                  version: 1.2.0
                  sourceRef:
                    kind: HelmRepository
                    name: local-charts
                    namespace: flux-system
              valuesFrom:
                - kind: Secret
                  name: app-values
              values:
                image: ghcr.io/home-operations/sonarr:4.0.19
              postRenderers:
                - kustomize:
                    patches:
                      - target:
                          kind: PersistentVolumeClaim
                        patch: |
                          - op: replace
                            path: /spec/storageClassName
                            value: ceph-block
            """
    }


def test_helm_release_rendered_by_real_helm_from_a_loopback_repo(
    repo: Path, kubectl: str, chart_repo: tuple[str, http.server.HTTPServer], tmp_path: Path
) -> None:
    url, server = chart_repo
    write(repo, rendered_release(url))
    options = HelmOptions(cache_dir=tmp_path / "cache")
    result = load_sources([str(repo)], helm=options)
    deployment = find(result.resources, "Deployment", "sonarr")
    assert deployment.namespace == "media"
    container = deployment.body["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/home-operations/sonarr:4.0.19"  # values
    assert container["env"] == [{"name": "DATABASE_PATH", "value": "/config/app.db"}]  # Secret
    claim = find(result.resources, "PersistentVolumeClaim", "sonarr-data")
    assert claim.body["spec"]["storageClassName"] == "ceph-block"  # postRenderers patch
    assert claim.origin.file.endswith("apps/app/release.yaml")
    notes = messages(result.notes)
    assert (
        "Helm releases: 1 found, 1 rendered with helm, 0 interpreted as app-template, "
        "0 skipped (each named in a note)" in notes
    )
    assert not any("SUPERSECRET" in n for n in notes)

    # The chart is cached: with the repository gone, the release still renders.
    server.shutdown()
    server.server_close()
    again = load_sources([str(repo)], helm=options)
    assert (
        find(again.resources, "PersistentVolumeClaim", "sonarr-data").body["spec"][
            "storageClassName"
        ]
        == "ceph-block"
    )


def test_helm_failure_message_never_repeats_secret_values(
    repo: Path, chart_repo: tuple[str, http.server.HTTPServer], tmp_path: Path
) -> None:
    url, _server = chart_repo
    write(repo, rendered_release(url))
    # A template error that quotes a secret value back: helm's message is redacted.
    fail = '{{ fail (printf "bad %s" .Values.apiKey) }}\n'
    write(tmp_path, {"chart-src/templates/fail.yaml": fail})
    served = tmp_path / "served"
    helm_bin = str(VENV_BIN / "helm")
    for old in served.glob("*.tgz"):
        old.unlink()
    subprocess.run([helm_bin, "package", str(tmp_path / "chart-src"), "-d", str(served)],
                   check=True, capture_output=True)  # fmt: skip
    subprocess.run([helm_bin, "repo", "index", str(served), "--url", url],
                   check=True, capture_output=True)  # fmt: skip
    result = load_sources([str(repo)], helm=HelmOptions(cache_dir=tmp_path / "cache2"))
    notes = messages(result.notes)
    prefix = "HelmRelease media/sonarr: helm template failed"
    failed = [n for n in notes if n.startswith(prefix)]
    assert len(failed) == 1, notes
    assert "bad ***" in failed[0]
    assert not any("SUPERSECRET" in n for n in notes)


COMPONENT = {
    "kubernetes/components/backup/kustomization.yaml": """\
        apiVersion: kustomize.config.k8s.io/v1alpha1
        kind: Component
        resources:
          - ./pvc.yaml
        """,
    "kubernetes/components/backup/pvc.yaml": """\
        apiVersion: v1
        kind: PersistentVolumeClaim
        metadata:
          name: ${APP}
        spec:
          accessModes: [ReadWriteOnce]
          resources:
            requests:
              storage: ${CAPACITY:=5Gi}
          storageClassName: ceph-block
        """,
    "kubernetes/apps/default/mealie/ks.yaml": """\
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata:
          name: mealie
        spec:
          path: ./kubernetes/apps/default/mealie/app
          components:
            - ../../../../components/backup
          targetNamespace: recipes
          postBuild:
            substitute:
              NOT_APP: x
        """,
    "kubernetes/apps/default/mealie/app/kustomization.yaml": """\
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Kustomization
        resources: [./configmap.yaml]
        """,
    "kubernetes/apps/default/mealie/app/configmap.yaml": """\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: mealie-settings
        data:
          BASE_URL: https://mealie.${DOMAIN:=example.org}
        """,
}


def test_flux_components_are_rendered_per_kustomization_and_substituted(
    repo: Path, kubectl: str, tmp_path: Path
) -> None:
    write(repo, {**FLUX_APP, **COMPONENT})
    ks = repo / "kubernetes/apps/default/sonarr/ks.yaml"
    ks.write_text(
        ks.read_text().replace(
            "  targetNamespace: media\n",
            "  targetNamespace: media\n  components:\n    - ../../../../components/backup\n",
        )
    )
    result = load_sources([str(repo)], helm=HelmOptions(render=False))
    claims = {
        (r.namespace, r.name): r for r in result.resources if r.kind == "PersistentVolumeClaim"
    }
    assert set(claims) == {("media", "sonarr"), ("recipes", "${APP}")}
    sonarr = claims[("media", "sonarr")]
    assert sonarr.body["spec"]["resources"]["requests"]["storage"] == "5Gi"  # := default
    assert sonarr.origin.file.endswith("components/backup/pvc.yaml")
    config = find(result.resources, "ConfigMap", "mealie-settings")
    assert config.namespace == "recipes"
    assert config.body["data"]["BASE_URL"] == "https://mealie.example.org"
    notes = messages(result.notes)
    assert (
        "Flux Kustomization mealie: postBuild leaves ${APP} unresolved; kept as written "
        "(not found in substitute/substituteFrom)" in notes
    )
    assert not any("Component no kustomization" in n for n in notes)  # it is used now


def test_unresolved_flux_variable_never_makes_a_suggested_name(
    repo: Path, kubectl: str, tmp_path: Path
) -> None:
    write(repo, COMPONENT)
    env = {"STATEKEEPER_CACHE_DIR": str(tmp_path / "cache"), "PATH": str(VENV_BIN)}
    done = subprocess.run(
        [sys.executable, "-m", "statekeeper", "audit", str(repo), "--format", "json",
         "--rule", "SK103", "--fail-on", "never"],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (finding,) = json.loads(done.stdout)["findings"]
    assert finding["message"] == (
        "PVC name '${APP}' does not match <app>-<purpose>-pvc (it holds a Flux variable that "
        "is not resolved in this repo; no name suggested)"
    )
    assert finding["file"].endswith("components/backup/pvc.yaml")


def test_helm_repo_config_flag(repo: Path, tmp_path: Path) -> None:
    write(repo, {"apps/vaultwarden.yaml": ARGO_APP.format(closed=CLOSED)})
    config = tmp_path / "repositories.yaml"
    config.write_text("apiVersion: v1\nrepositories: []\n")
    env = {"STATEKEEPER_CACHE_DIR": str(tmp_path / "cache"), "PATH": str(VENV_BIN)}
    base = [sys.executable, "-m", "statekeeper", "audit", str(repo), "--format", "json"]
    done = subprocess.run([*base, "--helm-repo-config", str(config)],
                          capture_output=True, text=True, env=env, check=False)  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    notes = [n["message"] for n in json.loads(done.stdout)["notes"]]
    assert any("1 interpreted as app-template" in n for n in notes)
    missing = subprocess.run([*base, "--helm-repo-config", str(tmp_path / "nope.yaml")],
                             capture_output=True, text=True, env=env, check=False)  # fmt: skip
    assert missing.returncode == 2
    assert missing.stderr.strip().endswith("nope.yaml: no such file")


def assert_fix_refuses_chart_values(repo: Path, tmp_path: Path, values: str, line: str) -> None:
    """`fix --rule SK201` says `line` (the value comes from the chart) and leaves `values`
    (the file holding the release's values) as it was."""
    before = (repo / values).read_text()
    env = {"STATEKEEPER_CACHE_DIR": str(tmp_path / "cache"), "PATH": str(VENV_BIN)}
    done = subprocess.run(
        [sys.executable, "-m", "statekeeper", "fix", str(repo), "--rule", "SK201"],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert line in done.stdout + done.stderr
    assert (repo / values).read_text() == before


def test_fix_says_the_value_comes_from_the_chart(repo: Path, kubectl: str, tmp_path: Path) -> None:
    write(repo, FLUX_APP)
    assert_fix_refuses_chart_values(
        repo,
        tmp_path,
        "kubernetes/apps/default/sonarr/app/helmrelease.yaml",
        "cannot fix SK201 Deployment media/sonarr: cannot fix: value comes from the chart "
        "(Deployment sonarr is rendered from the Helm release in "
        "repo/kubernetes/apps/default/sonarr/app/helmrelease.yaml; change its values there)",
    )


def test_argo_cd_chart_folder_of_this_repo_is_rendered_with_its_value_files(
    repo: Path, helm: str, tmp_path: Path
) -> None:
    write(repo / "charts/stateful-app", CHART)
    write(repo, {
        "charts/stateful-app/values-prod.yaml": "storageClass: ceph-block\n",
        "argocd/app.yaml": """\
            apiVersion: argoproj.io/v1alpha1
            kind: Application
            metadata:
              name: radarr
              namespace: argocd
            spec:
              destination:
                namespace: media
              source:
                repoURL: https://git.example.org/homelab.git
                path: charts/stateful-app
                helm:
                  valueFiles: [values-prod.yaml]
                  valuesObject:
                    image: ghcr.io/home-operations/radarr:5
            """,
    })  # fmt: skip
    result = load_sources([str(repo)], helm=HelmOptions(cache_dir=tmp_path / "cache"))
    claim = find(result.resources, "PersistentVolumeClaim", "radarr-data")
    assert claim.namespace == "media"
    assert claim.body["spec"]["storageClassName"] == "ceph-block"  # valueFiles
    deployment = find(result.resources, "Deployment", "radarr")
    image = deployment.body["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "ghcr.io/home-operations/radarr:5"  # valuesObject
    assert "1 rendered with helm" in messages(result.notes)[-1]


UMBRELLA = {
    "apps/paperless/Chart.yaml": """\
        apiVersion: v2
        name: paperless
        version: 0.0.0
        dependencies:
          - name: app-template
            version: 2.6.0
            repository: http://CLOSED/charts
        """.replace("CLOSED", CLOSED),
    "apps/paperless/values.yaml": """\
        app-template:
          controllers:
            main:
              containers:
                main:
                  image:
                    repository: ghcr.io/paperless-ngx/paperless-ngx
                    tag: 2.5.4
          persistence:
            data:
              accessMode: ReadWriteOnce
              size: 10Gi
              globalMounts:
                - path: /usr/src/paperless/data
        """,
}  # fmt: skip


def test_umbrella_chart_of_app_template_is_interpreted_from_its_values(
    repo: Path, tmp_path: Path
) -> None:
    write(repo, UMBRELLA)
    result = load_sources([str(repo)], helm=HelmOptions(cache_dir=tmp_path / "cache"))
    claim = find(result.resources, "PersistentVolumeClaim", "paperless-data")  # v2/v3 naming
    assert claim.origin.file == "repo/apps/paperless/values.yaml"
    assert claim.origin.line == 10  # `data:` under `persistence:`
    deployment = find(result.resources, "Deployment", "paperless")
    mounts = deployment.body["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert mounts == [{"name": "data", "mountPath": "/usr/src/paperless/data"}]
    assert "1 interpreted as app-template" in messages(result.notes)[-1]


def test_fix_says_an_umbrella_charts_objects_come_from_its_values(
    repo: Path, kubectl: str, tmp_path: Path
) -> None:
    write(repo, UMBRELLA)
    assert_fix_refuses_chart_values(
        repo,
        tmp_path,
        "apps/paperless/values.yaml",
        "cannot fix SK201 Deployment paperless: cannot fix: value comes from the chart "
        "(Deployment paperless is rendered from the Helm release in "
        "repo/apps/paperless/values.yaml; change its values there)",
    )


def test_chart_note_only_for_charts_that_were_not_read(repo: Path, tmp_path: Path) -> None:
    """An umbrella chart of app-template is audited through its values: no "templates are not
    read" note for it; a chart of the repo with its own templates keeps the note."""
    write(repo, {
        "apps/mealie/Chart.yaml": """\
            apiVersion: v2
            name: mealie
            version: 0.0.0
            dependencies:
              - name: app-template
                alias: app
                version: 3.7.3
                repository: http://CLOSED/charts
            """.replace("CLOSED", CLOSED),
        "apps/mealie/values.yaml": """\
            app:
              controllers:
                mealie:
                  containers:
                    app:
                      image: {repository: ghcr.io/mealie-recipes/mealie, tag: v2.8.0}
            """,
        "charts/web/Chart.yaml": "apiVersion: v2\nname: web\nversion: 1.0.0\n",
        "charts/web/templates/deployment.yaml": "kind: Deployment\n{{- if .Values.x }}\n",
    })  # fmt: skip
    result = load_sources([str(repo)], helm=HelmOptions(cache_dir=tmp_path / "cache"))
    find(result.resources, "Deployment", "mealie")
    chart_notes = {
        note.file
        for note in result.notes
        if note.message.startswith("a Helm chart (Chart.yaml): its templates are not read")
    }
    assert chart_notes == {"repo/charts/web"}


def test_kustomize_helm_charts_entries_are_never_silent(
    repo: Path, kubectl: str, tmp_path: Path
) -> None:
    write(repo, {
        "apps/media/kustomization.yaml": f"""\
            apiVersion: kustomize.config.k8s.io/v1beta1
            kind: Kustomization
            namespace: media
            helmCharts:
              - name: app-template
                repo: oci://{CLOSED}/bjw-s-labs/helm
                version: 4.1.1
                releaseName: jellyfin
                valuesInline:
                  controllers:
                    jellyfin:
                      containers:
                        app:
                          image: {{repository: jellyfin/jellyfin, tag: "10.10"}}
                  persistence:
                    config:
                      existingClaim: jellyfin-config
              - name: ingress-nginx
                repo: http://{CLOSED}/charts
                version: 4.11.0
            """,
    })  # fmt: skip
    result = load_sources([str(repo)], helm=HelmOptions(cache_dir=tmp_path / "cache"))
    deployment = find(result.resources, "Deployment", "jellyfin")
    assert deployment.namespace == "media"
    assert deployment.origin.file == "repo/apps/media/kustomization.yaml"
    notes = messages(result.notes)
    assert (
        f"kustomize helmCharts ingress-nginx: chart not reachable offline: http://{CLOSED}/charts "
        "chart ingress-nginx 4.11.0" in notes
    )
    assert notes[-1].startswith("Helm releases: 2 found, 0 rendered with helm, 1 interpreted")


def test_kustomize_root_with_helm_charts_builds_its_other_objects(
    repo: Path, kubectl: str, tmp_path: Path
) -> None:
    """kustomize refuses `helmCharts:` without --enable-helm; the root is not SK002: its other
    objects are rendered (patches included, pointing at the user's files) and its charts are
    the Helm reader's."""
    write(repo, {
        "apps/base/kustomization.yaml": f"""\
            apiVersion: kustomize.config.k8s.io/v1beta1
            kind: Kustomization
            resources:
              - pvc.yaml
            helmCharts:
              - name: app-template
                repo: oci://{CLOSED}/bjw-s-labs/helm
                version: 4.1.1
                releaseName: mealie
                valuesInline:
                  controllers:
                    mealie:
                      containers:
                        app:
                          image: {{repository: ghcr.io/mealie-recipes/mealie, tag: v2.8.0}}
                  persistence:
                    data:
                      existingClaim: mealie-data
            """,
        "apps/base/pvc.yaml": """\
            apiVersion: v1
            kind: PersistentVolumeClaim
            metadata:
              name: mealie-data
            spec:
              accessModes: [ReadWriteOnce]
              resources:
                requests:
                  storage: 1Gi
            """,
        "apps/prod/kustomization.yaml": """\
            apiVersion: kustomize.config.k8s.io/v1beta1
            kind: Kustomization
            namespace: food
            resources:
              - ../base
            patches:
              - path: pvc-patch.yaml
            """,
        "apps/prod/pvc-patch.yaml": """\
            apiVersion: v1
            kind: PersistentVolumeClaim
            metadata:
              name: mealie-data
            spec:
              storageClassName: fast-retain
            """,
    })  # fmt: skip
    result = load_sources([str(repo)], helm=HelmOptions(cache_dir=tmp_path / "cache"))
    assert result.problems == []
    claim = find(result.resources, "PersistentVolumeClaim", "mealie-data")
    assert claim.namespace == "food"
    assert claim.body["spec"]["storageClassName"] == "fast-retain"
    assert claim.origin.file == "repo/apps/base/pvc.yaml"
    assert claim.origin.patched_in == ("repo/apps/prod/kustomization.yaml",)
    find(result.resources, "Deployment", "mealie")  # the chart: interpreted by the Helm reader
