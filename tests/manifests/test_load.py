"""Reading files, directories, stdin and kustomize overlays (real kubectl from .venv/bin)."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest

from statekeeper.manifests import kustomize
from statekeeper.manifests.load import load_sources
from statekeeper.manifests.resource import Resource

FIXTURES = Path(__file__).parent / "fixtures"
ENVS = {"prod": "production", "dev": "development"}


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the fixture repo (base + overlays/dev + overlays/prod); CWD is its parent."""
    shutil.copytree(FIXTURES / "repo", tmp_path / "repo")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "repo"


def _by(resources: list[Resource], overlay: str | None) -> dict[tuple[str, str], Resource]:
    return {(r.kind, r.name): r for r in resources if r.origin.overlay == overlay}


def test_files_and_directories_sorted_with_origins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "z.yml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: z}\n")
    (tmp_path / "b" / "a.yaml").write_text(
        "# leading comment\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: a1\n"
        "---\n\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: a2\n"
    )
    (tmp_path / "b" / "ignored.txt").write_text("apiVersion: v1\nkind: Namespace\n")
    (tmp_path / "b" / ".hidden").mkdir()
    (tmp_path / "b" / ".hidden" / "x.yaml").write_text("apiVersion: v1\nkind: Namespace\n")
    (tmp_path / "b" / "kustomization.yaml").write_text("resources: [a.yaml]\n")
    (tmp_path / "b" / ".gitlab-ci.yml").write_text("x: !reference [a, b]\n")
    (tmp_path / "one.txt").write_text("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n")
    result = load_sources(["b", "one.txt"], render=False)
    got = [(r.name, r.origin.file, r.origin.document, r.origin.line) for r in result.resources]
    assert got == [
        ("a1", "b/a.yaml", 0, 3),
        ("a2", "b/a.yaml", 2, 10),
        ("z", "b/z.yml", 0, 1),
        ("s", "one.txt", 0, 1),  # a file named explicitly is read whatever its extension
    ]
    assert result.sources == ["b/a.yaml", "b/z.yml", "one.txt"]
    assert result.resources[0].origin.source_dir == "b"
    assert result.notes == []


def test_absolute_path_outside_cwd_stays_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "x.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n")
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    result = load_sources([str(tmp_path / "x.yaml")])
    assert result.resources[0].origin.file == str(tmp_path / "x.yaml")


def test_stdin_and_kind_list() -> None:
    stream = io.BytesIO(
        b"apiVersion: v1\nkind: List\nitems:\n"
        b"- apiVersion: v1\n  kind: PersistentVolumeClaim\n  metadata: {name: a-data-pvc}\n"
        b"- apiVersion: v1\n  kind: Service\n  metadata: {name: a}\n"
        b"---\nreplicaCount: 2\n"
    )
    result = load_sources(["-"], stdin=stream)
    assert [(r.kind, r.name, r.origin.file) for r in result.resources] == [
        ("PersistentVolumeClaim", "a-data-pvc", "<stdin>"),
        ("Service", "a", "<stdin>"),
    ]
    assert [r.body for r in result.other] == [{"replicaCount": 2}]
    assert result.other[0].origin.line == 11
    assert result.sources == ["<stdin>"]


def test_kustomize_overlays_rendered_with_environments(repo: Path, kubectl: str) -> None:
    result = load_sources(["repo"], overlay_envs=ENVS)
    assert result.sources == [
        "repo/base/apps/media/notes.yaml",
        "repo/velero/values.yaml",
        "repo/overlays/dev",
        "repo/overlays/prod",
    ]
    dev = _by(result.resources, "repo/overlays/dev")
    prod = _by(result.resources, "repo/overlays/prod")
    assert {r.origin.environment for r in dev.values()} == {"development"}
    assert {r.origin.environment for r in prod.values()} == {"production"}
    # The dev patch changed the class; prod kept the base's and got its name prefix.
    assert dev["PersistentVolumeClaim", "vault-data-pvc"].body["spec"]["storageClassName"] == (
        "synelia-iscsi-delete"
    )
    pvc = prod["PersistentVolumeClaim", "prod-vault-data-pvc"]
    assert pvc.body["spec"]["storageClassName"] == "synelia-iscsi-retain"
    # Mapped back to the source file and document, not to the overlay.
    assert (pvc.origin.file, pvc.origin.document, pvc.origin.line) == (
        "repo/base/apps/vault/storage.yaml",
        0,
        1,
    )
    config_pvc = prod["PersistentVolumeClaim", "prod-vault-config-pvc"]
    assert (config_pvc.origin.document, config_pvc.origin.line) == (1, 13)
    deploy = prod["Deployment", "prod-vault"]
    assert deploy.origin.line == 2  # after the leading comment
    assert (
        deploy.origin.source_dir,
        deploy.origin.source_mapped,
        deploy.origin.tree_root,
        deploy.origin.patched_in,
    ) == (
        "repo/base/apps/vault",
        True,
        "repo",
        ("repo/overlays/prod/kustomization.yaml",),  # its sidecar patch
    )
    assert [c["name"] for c in deploy.body["spec"]["template"]["spec"]["containers"]] == [
        "rclone",
        "vault",
        "litestream",
    ]
    # kustomize's origin annotation is read, then removed.
    assert all("annotations" not in r.metadata for r in result.resources)
    # A generated ConfigMap points at the kustomization whose generator made it.
    generated = next(r for r in prod.values() if r.kind == "ConfigMap")
    assert generated.origin.file == "repo/base/apps/vault/kustomization.yaml"
    assert generated.origin.source_dir == "repo/base/apps/vault"
    # Patch files are not objects of their own; files no kustomization names are read as-is.
    assert not any(r.origin.file.startswith("repo/overlays/") for r in result.resources)
    assert sorted(r.origin.file for r in result.other) == [
        "repo/base/apps/media/notes.yaml",
        "repo/velero/values.yaml",
    ]
    assert len(dev) == len(prod) == 7


def test_env_flag_overrides_overlay_name(repo: Path, kubectl: str) -> None:
    result = load_sources(["repo"], env="staging", overlay_envs=ENVS, max_workers=1)
    assert {r.origin.environment for r in result.resources} == {"staging"}


def test_unknown_overlay_name_has_no_environment(repo: Path, kubectl: str) -> None:
    result = load_sources(["repo/overlays/dev"], overlay_envs={"prod": "production"})
    assert result.resources and {r.origin.environment for r in result.resources} == {None}
    assert result.sources == ["repo/overlays/dev"]


def test_no_render_reads_files_as_they_are(repo: Path) -> None:
    result = load_sources(["repo"], render=False)
    files = sorted({r.origin.file for r in result.resources})
    assert files == [
        "repo/base/apps/media/statefulset.yaml",
        "repo/base/apps/vault/deployment.yaml",
        "repo/base/apps/vault/storage.yaml",
        "repo/base/namespaces.yaml",
    ]
    assert all(r.origin.overlay is None and r.origin.environment is None for r in result.resources)
    # The overlays' patch files are fragments, not objects: skipped with a note, not audited
    # as made-up workloads of an app called "prod".
    notes = {(n.file, n.message) for n in result.notes}
    assert notes >= {
        (
            "repo/overlays/dev/pvc-class.yaml",
            "a kustomize patch listed in repo/overlays/dev/kustomization.yaml; skipped",
        ),
        (
            "repo/overlays/prod/sidecar.yaml",
            "a kustomize patch listed in repo/overlays/prod/kustomization.yaml; skipped",
        ),
    }


def test_no_render_keeps_files_a_kustomization_lists_as_resources(repo: Path) -> None:
    """Only patches are skipped; an inline patch and a broken kustomization skip nothing."""
    (repo / "overlays/dev/kustomization.yaml").write_text(
        "resources: [../../base, pvc-class.yaml]\npatches:\n  - patch: |-\n      a: b.yaml\n"
    )
    (repo / "overlays/prod/kustomization.yaml").write_text("patches: [\n")
    result = load_sources(["repo"], render=False)
    files = {r.origin.file for r in result.resources}
    assert {"repo/overlays/dev/pvc-class.yaml", "repo/overlays/prod/sidecar.yaml"} <= files
    assert not [n for n in result.notes if "kustomize patch" in n.message]


def test_tree_without_overlays_renders_its_root(repo: Path, kubectl: str) -> None:
    """Without overlays, `base` is the root no kustomization references: it is rendered (its
    folder names no environment), and the files it reads are not read a second time."""
    shutil.rmtree(repo / "overlays")
    result = load_sources(["repo"], overlay_envs=ENVS)
    rendered = [r for r in result.resources if r.origin.overlay == "repo/base"]
    assert ("Deployment", "vault") in {(r.kind, r.name) for r in rendered}
    assert {r.origin.environment for r in rendered} == {None}
    assert not [r for r in result.resources if r.origin.overlay is None]


def test_kustomize_preferred_over_kubectl(
    repo: Path, kubectl: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PATH's `kustomize` wins over `kubectl kustomize`. The `kustomize` here is an adapter
    script that runs the real kubectl and records that it was called."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.txt"
    script = bin_dir / "kustomize"
    script.write_text(f'#!/bin/sh\necho "$1" >> {calls}\nshift\nexec {kubectl} kustomize "$@"\n')
    script.chmod(0o755)
    (bin_dir / "kubectl").symlink_to(kubectl)
    monkeypatch.setenv("PATH", str(bin_dir))
    assert kustomize.kustomize_command() == [str(script), "build"]
    result = load_sources(["repo"], overlay_envs=ENVS)
    assert calls.read_text().split() == ["build", "build"]
    assert len(result.resources) == 14
    script.unlink()
    assert kustomize.kustomize_command() == [str(bin_dir / "kubectl"), "kustomize"]


def test_same_file_or_directory_twice_is_read_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.yaml").write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n"
    )
    os.symlink("sub", tmp_path / "zlink")  # a second way to the same directory
    result = load_sources([".", "sub/a.yaml", "./sub/a.yaml"])
    assert [r.origin.file for r in result.resources] == ["sub/a.yaml"]


def test_go_templates_inside_strings_are_not_helm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Alertmanager/Prometheus templates in a ConfigMap or a PrometheusRule are plain strings."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "am.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: alertmanager-templates}\ndata:\n"
        "  slack.tmpl: |\n"
        '    {{ define "slack.title" }}{{ range .Alerts }}{{ .Labels.alertname }}{{ end }}\n'
        "    {{ end }}\n"
        '    {{ template "slack.title" . }}\n'
        "---\napiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata: {name: r}\n"
        "spec: {groups: [{name: g, rules: [{alert: Down,\n"
        '  annotations: {summary: "{{ $labels.x }}"}}]}]}\n'
    )
    result = load_sources(["am.yaml"])
    assert [r.kind for r in result.resources] == ["ConfigMap", "PrometheusRule"]


def test_rendered_objects_equal_a_plain_kustomize_build(repo: Path, kubectl: str) -> None:
    """The wrapper that asks for origin annotations changes nothing else in the objects."""
    import json
    import subprocess

    from statekeeper.manifests.load import parse_documents

    plain = subprocess.run(
        [kubectl, "kustomize", "repo/overlays/prod"], capture_output=True, check=True, timeout=120
    ).stdout
    expected = sorted(json.dumps(d.data, sort_keys=True) for d in parse_documents(plain, "plain"))
    result = load_sources(["repo/overlays/prod"])
    assert sorted(json.dumps(r.body, sort_keys=True) for r in result.resources) == expected


def test_named_pipe_given_by_name_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`statekeeper audit <(helm template …)` passes a pipe; inside a directory one is refused."""
    import threading

    monkeypatch.chdir(tmp_path)
    pipe = tmp_path / "rendered"
    os.mkfifo(pipe)

    def write() -> None:
        with pipe.open("wb") as handle:
            handle.write(b"apiVersion: v1\nkind: Namespace\nmetadata: {name: piped}\n")

    writer = threading.Thread(target=write)
    writer.start()
    try:
        result = load_sources(["rendered"])
    finally:
        writer.join(timeout=10)
    assert [(r.name, r.origin.file) for r in result.resources] == [("piped", "rendered")]


def test_directory_without_yaml_gets_a_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A path with no manifests (a typo, the wrong checkout) is said, not silently 'clean'."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "README.md").write_text("hello\n")
    monkeypatch.chdir(tmp_path)
    result = load_sources(["docs"], render=False)
    assert result.resources == []
    assert [(n.file, n.message) for n in result.notes] == [
        ("docs", "no YAML files in this directory or below")
    ]


def test_kustomization_file_given_by_name_points_at_its_directory(repo: Path) -> None:
    """`audit overlays/prod/kustomization.yaml` reads nothing; it says what to pass instead."""
    result = load_sources(["repo/overlays/prod/kustomization.yaml"], render=False)
    assert result.resources == []
    assert [(n.file, n.message) for n in result.notes] == [
        (
            "repo/overlays/prod/kustomization.yaml",
            "a kustomization file, not manifests; to audit it pass repo/overlays/prod",
        )
    ]
