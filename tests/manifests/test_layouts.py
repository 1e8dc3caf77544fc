"""Real repository layouts, one small fixture per failure class seen on public GitOps repos: the
audit reads what kustomize would deploy and keeps going past what it cannot read (real kubectl)."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from statekeeper.manifests.load import load_sources
from statekeeper.manifests.resource import Resource
from statekeeper.manifests.yaml import parse_documents

ENVS = {"prod": "production", "production": "production", "dev": "development",
        "staging": "development", "development": "development"}  # fmt: skip


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


PVC = """\
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {name}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: {cls}
  resources: {{requests: {{storage: 1Gi}}}}
"""
KUSTOMIZATION = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path / "repo"


def by_root(result_resources: list[Resource]) -> dict[str | None, list[str]]:
    found: dict[str | None, list[str]] = {}
    for r in result_resources:
        found.setdefault(r.origin.overlay, []).append(f"{r.kind}/{r.namespace}/{r.name}")
    return {k: sorted(v) for k, v in found.items()}


def test_app_env_layout_renders_roots_with_environments(repo: Path, kubectl: str) -> None:
    """`apps/<app>/{base,dev,prod}`: each env folder is a root in that environment; the base
    is read only through them, with the namespace the kustomization sets; a file commented out
    of the base is not judged; the patch file is not an object."""
    write(
        repo,
        {
            "apps/vault/base/kustomization.yaml": KUSTOMIZATION
            + "namespace: vault\nresources:\n  - pvc.yaml\n  # - old-pvc.yaml\n",
            "apps/vault/base/pvc.yaml": PVC.format(name="vault-data-pvc", cls="base-class"),
            "apps/vault/base/old-pvc.yaml": PVC.format(name="old", cls="x"),
            "apps/vault/dev/kustomization.yaml": KUSTOMIZATION + "resources: [../base]\n",
            "apps/vault/prod/kustomization.yaml": KUSTOMIZATION
            + "resources: [../base]\npatches:\n  - path: pvc-patch.yaml\n",
            "apps/vault/prod/pvc-patch.yaml": (
                "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: vault-data-pvc}\n"
                "spec: {storageClassName: prod-class}\n"
            ),
        },
    )
    result = load_sources(["repo"], overlay_envs=ENVS)
    assert by_root(result.resources) == {
        "repo/apps/vault/dev": ["PersistentVolumeClaim/vault/vault-data-pvc"],
        "repo/apps/vault/prod": ["PersistentVolumeClaim/vault/vault-data-pvc"],
    }
    envs = {r.origin.overlay: r.origin.environment for r in result.resources}
    assert envs == {"repo/apps/vault/dev": "development", "repo/apps/vault/prod": "production"}
    prod = next(r for r in result.resources if r.origin.environment == "production")
    assert prod.body["spec"]["storageClassName"] == "prod-class"
    assert result.problems == []
    notes = {(n.file, n.message) for n in result.notes}
    assert (
        "repo/apps/vault/base/old-pvc.yaml",
        "not listed in repo/apps/vault/base/kustomization.yaml (not deployed): 1 object(s) skipped",
    ) in notes


def test_env_flag_renders_only_that_environments_roots(repo: Path, kubectl: str) -> None:
    """A stale staging overlay that does not build is not even rendered with `--env prod`."""
    write(
        repo,
        {
            "base/kustomization.yaml": KUSTOMIZATION + "resources: [pvc.yaml]\n",
            "base/pvc.yaml": PVC.format(name="a-data-pvc", cls="c"),
            "overlays/prod/kustomization.yaml": KUSTOMIZATION + "resources: [../../base]\n",
            "overlays/staging/kustomization.yaml": KUSTOMIZATION + "spec: {}\n",
        },
    )
    everything = load_sources(["repo"], overlay_envs=ENVS)
    (problem,) = everything.problems
    assert problem.kind == "build" and problem.file == "repo/overlays/staging/kustomization.yaml"
    assert 'unknown field "spec"' in problem.reason and problem.environment == "development"
    prod_only = load_sources(["repo"], env="prod", overlay_envs=ENVS)
    assert prod_only.problems == []
    assert {r.origin.overlay for r in prod_only.resources} == {"repo/overlays/prod"}
    assert any(
        "1 kustomization root(s) of other environments" in n.message for n in prod_only.notes
    )


def test_remote_base_offline_is_a_warning_about_the_network(repo: Path, kubectl: str) -> None:
    # A remote on a closed local port: kustomize's git fetch fails at once, as offline in CI.
    write(
        repo,
        {
            "overlays/prod/kustomization.yaml": KUSTOMIZATION
            + "resources:\n  - https://127.0.0.1:9/example/repo//base?ref=v1\n",
        },
    )
    result = load_sources(["repo"], overlay_envs=ENVS)
    (problem,) = result.problems
    assert problem.kind == "build" and problem.remote
    assert problem.reason.startswith("remote base cannot be fetched (offline?)")


def test_policy_paths_and_flux_paths_name_environments(repo: Path, kubectl: str) -> None:
    """`clusters/main/` names no environment: the policy's path globs do; a Flux Kustomization
    in `clusters/prod/` deploying `./k8s/web` puts that root in production, in its namespace."""
    write(
        repo,
        {
            "clusters/main/kustomization.yaml": KUSTOMIZATION + "resources: [pvc.yaml]\n",
            "clusters/main/pvc.yaml": PVC.format(name="a-data-pvc", cls="c"),
            "clusters/prod/web.yaml": (
                "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n"
                "metadata: {name: web}\n"
                "spec: {path: ./k8s/web, interval: 1h, targetNamespace: web}\n"
            ),
            "k8s/web/kustomization.yaml": KUSTOMIZATION + "resources: [pvc.yaml]\n",
            "k8s/web/pvc.yaml": PVC.format(name="web-data-pvc", cls="c"),
        },
    )
    (repo / ".git").mkdir()  # Flux paths are relative to the repository's top
    result = load_sources(["repo"], overlay_envs=ENVS, env_paths={"development": ["clusters/main"]})
    envs = {r.name: r.origin.environment for r in result.resources}
    assert envs == {"a-data-pvc": "development", "web-data-pvc": "production", "web": "production"}
    # Flux's targetNamespace puts the rendered objects of its path in that namespace.
    namespaces = {r.name: r.namespace for r in result.resources}
    assert namespaces == {"a-data-pvc": None, "web-data-pvc": "web", "web": None}


def test_values_with_go_templates_are_data_and_charts_are_skipped(repo: Path) -> None:
    write(
        repo,
        {
            "apps/paperless/values.yaml": "ingress:\n  host: '{{ .Release.Name }}.example'\n",
            "apps/hr.yaml": (
                "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: x}\n"
                "spec:\n  values:\n    fullname: '{{ .Release.Name }}'\n"
            ),
            "charts/web/Chart.yaml": "apiVersion: v2\nname: web\nversion: 1.0.0\n",
            "charts/web/templates/pvc.yaml": 'metadata:\n  name: {{ include "web" . }}\n',
            "ansible/tpl.yaml": "pool:\n  {% for c in cidrs %}\n  - {{ c }}\n  {% endfor %}\n",
            "tools/authelia.yml": "a: {b: c}: d\n",
        },
    )
    result = load_sources(["repo"])
    assert [r.kind for r in result.resources] == ["HelmRelease"]
    assert result.resources[0].body["spec"]["values"]["fullname"] == "{{ .Release.Name }}"
    assert [r.origin.file for r in result.other] == ["repo/apps/paperless/values.yaml"]
    assert result.problems == []
    notes = {n.file: n.message for n in result.notes}
    assert notes["repo/charts/web"].startswith("a Helm chart (Chart.yaml)")
    assert notes["repo/ansible/tpl.yaml"].startswith("a template (Helm or Jinja)")
    assert notes["repo/tools/authelia.yml"].startswith("not a Kubernetes manifest")


def test_duplicate_anchor_read_as_kubectl_reads_it(kubectl: str, tmp_path: Path) -> None:
    text = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: dup}\n"
        "data:\n  a: &x first\n  b: *x\n  c: &x second\n  d: *x\n"
    )
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    done = subprocess.run(
        [kubectl, "annotate", "--local", "-f", str(path), "p=1", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    theirs = json.loads(done.stdout)["data"]
    ours = parse_documents(text.encode(), "dup.yaml")[0].data["data"]
    assert ours == theirs == {"a": "first", "b": "first", "c": "second", "d": "second"}


def test_same_base_in_two_roots_of_one_environment_found_once(repo: Path, kubectl: str) -> None:
    from statekeeper.engine import run_audit
    from statekeeper.policy.load import load_policy

    write(
        repo,
        {
            "base/kustomization.yaml": KUSTOMIZATION + "resources: [pvc.yaml]\n",
            "base/pvc.yaml": PVC.format(name="badname", cls="synelia-iscsi-retain"),
            "clusters/prod/a/kustomization.yaml": KUSTOMIZATION + "resources: [../../../base]\n",
            "clusters/prod/b/kustomization.yaml": KUSTOMIZATION + "resources: [../../../base]\n",
        },
    )
    report = run_audit(["repo"], policy=load_policy(), only={"SK103"})
    assert [(f.rule, f.environment, f.file) for f in report.findings] == [
        ("SK103", "production", "repo/base/pvc.yaml")
    ]


def test_findings_point_at_the_patch_that_set_the_value(repo: Path, kubectl: str) -> None:
    """A storageClassName set by `overlays/prod/pvc-patch.yaml` (strategic merge) and a size set
    by an inline JSON 6902 patch are reported where they were set, not in the base."""
    from statekeeper.engine import run_audit
    from statekeeper.policy.load import load_policy

    write(
        repo,
        {
            "base/kustomization.yaml": KUSTOMIZATION + "resources: [pvc.yaml]\n",
            "base/pvc.yaml": PVC.format(name="vault-database-pvc", cls="synelia-iscsi-retain"),
            "overlays/prod/kustomization.yaml": KUSTOMIZATION
            + "resources: [../../base]\n"
            + "patches:\n"
            + "  - path: pvc-patch.yaml\n"
            + "  - target: {kind: PersistentVolumeClaim}\n"
            + "    patch: |-\n"
            + "      - op: replace\n"
            + "        path: /spec/resources/requests/storage\n"
            + "        value: 3Gi\n",
            "overlays/prod/pvc-patch.yaml": (
                "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n"
                "  name: vault-database-pvc\nspec:\n  storageClassName: fast\n"
            ),
        },
    )
    report = run_audit(["repo"], policy=load_policy(), only={"SK101", "SK104"})
    got = {(f.rule, f.file, f.line) for f in report.findings}
    assert got == {
        ("SK101", "repo/overlays/prod/pvc-patch.yaml", 6),
        ("SK104", "repo/overlays/prod/kustomization.yaml", 10),
    }
    # The user's kustomization is never edited to ask for the annotations.
    assert "buildMetadata" not in (repo / "overlays/prod/kustomization.yaml").read_text()


def test_progress_bar_only_on_a_terminal_and_never_when_quiet(
    repo: Path, kubectl: str, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """The rendering progress bar goes to stderr when it is a terminal, unless quiet; the
    report itself is unchanged either way."""
    import sys

    write(
        repo,
        {
            f"apps/a{i}/prod/kustomization.yaml": KUSTOMIZATION + "resources: [pvc.yaml]\n"
            for i in range(3)
        }
        | {
            f"apps/a{i}/prod/pvc.yaml": PVC.format(name=f"a{i}-data-pvc", cls="c") for i in range(3)
        },
    )
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    shown = load_sources(["repo"], cache=False)
    assert "rendering kustomizations" in capfd.readouterr().err
    quiet = load_sources(["repo"], cache=False, quiet=True)
    assert capfd.readouterr().err == ""
    assert [r.body for r in shown.resources] == [r.body for r in quiet.resources]


def test_root_given_itself_gets_its_environment(repo: Path, kubectl: str) -> None:
    write(
        repo,
        {
            "overlays/prod/kustomization.yaml": KUSTOMIZATION + "resources: [pvc.yaml]\n",
            "overlays/prod/pvc.yaml": PVC.format(name="a-data-pvc", cls="c"),
        },
    )
    result = load_sources(["repo/overlays/prod"], overlay_envs=ENVS)
    assert [(r.origin.overlay, r.origin.environment) for r in result.resources] == [
        ("repo/overlays/prod", "production")
    ]


def test_render_cache_runs_no_kustomize_on_an_unchanged_repo(
    repo: Path, kubectl: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Second audit of an unchanged repo: no kustomize run, same objects and origins; a changed
    base re-renders exactly the roots that read it."""
    log = tmp_path / "calls.log"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    counting = bin_dir / "kubectl"
    counting.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexec {kubectl} "$@"\n')
    counting.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    write(
        repo,
        {
            f"apps/{app}/base/kustomization.yaml": KUSTOMIZATION + "resources: [pvc.yaml]\n"
            for app in ("a", "b")
        }
        | {
            f"apps/{app}/base/pvc.yaml": PVC.format(name=f"{app}-data-pvc", cls="c")
            for app in ("a", "b")
        }
        | {
            f"apps/{app}/{env}/kustomization.yaml": KUSTOMIZATION + "resources: [../base]\n"
            for app in ("a", "b")
            for env in ("dev", "prod")
        },
    )

    def calls() -> int:
        return len(log.read_text().splitlines()) if log.exists() else 0

    def seen() -> list[tuple[str, str | None, str, int, str | None]]:
        result = load_sources(["repo"], overlay_envs=ENVS)
        return [
            (r.name, r.namespace, r.origin.file, r.origin.line, r.origin.environment)
            for r in result.resources
        ]

    cold = seen()
    assert calls() == 4 and len(cold) == 4
    assert seen() == cold and calls() == 4  # warm: kustomize not run at all
    write(repo, {"apps/a/base/pvc.yaml": PVC.format(name="a-data-pvc", cls="other")})
    assert len(seen()) == 4 and calls() == 6  # only apps/a/{dev,prod} rendered again


def test_render_cache_hit_from_another_working_directory_keeps_origins(
    repo: Path, kubectl: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Origins are relative to the working directory: a root cached by an audit run from the
    repo's parent must come back with paths relative to the repo when audited from inside it
    (the same relative paths a cold audit from there gives)."""
    write(
        repo,
        {
            "overlays/prod/kustomization.yaml": KUSTOMIZATION + "resources: [../../base]\n",
            "base/kustomization.yaml": KUSTOMIZATION + "resources: [pvc.yaml]\n",
            "base/pvc.yaml": PVC.format(name="a-data-pvc", cls="c"),
        },
    )

    def seen(path: str) -> list[tuple[str, str, int, str | None]]:
        result = load_sources([path], overlay_envs=ENVS)
        return [(r.name, r.origin.file, r.origin.line, r.origin.overlay) for r in result.resources]

    from_parent = seen("repo")  # fills the cache with this working directory's paths
    assert from_parent == [("a-data-pvc", "repo/base/pvc.yaml", 1, "repo/overlays/prod")]
    monkeypatch.chdir(repo)
    assert seen(".") == [("a-data-pvc", "base/pvc.yaml", 1, "overlays/prod")]


def test_input_findings_in_every_format(repo: Path, kubectl: str) -> None:
    from statekeeper.engine import run_audit
    from statekeeper.policy.load import load_policy
    from statekeeper.report import render
    from statekeeper.rules.base import all_rules

    write(
        repo,
        {
            "overlays/prod/kustomization.yaml": KUSTOMIZATION + "resources: [missing.yaml]\n",
            "apps/bad.yaml": "apiVersion: v1\nkind: ConfigMap\ndata: {a: [1, 2}\n",
        },
    )
    report = run_audit(["repo"], policy=load_policy(), only={"SK002", "SK003"})
    text = render(report, "text", rules=all_rules())
    assert "SK002 overlay-does-not-build" in text and "SK003 unreadable-manifest" in text
    as_json = json.loads(render(report, "json", rules=all_rules()))
    assert {(f["rule"], f["file"]) for f in as_json["findings"]} == {
        ("SK002", "repo/overlays/prod/kustomization.yaml"),
        ("SK003", "repo/apps/bad.yaml"),
    }
    sarif = json.loads(render(report, "sarif", rules=all_rules()))
    located = {
        (r["ruleId"], r["locations"][0]["physicalLocation"]["region"]["startLine"])
        for r in sarif["runs"][0]["results"]
    }
    assert located == {("SK002", 1), ("SK003", 3)}
