"""`read_kustomization`: what one kustomization file names, field by field (the graph of roots,
patch owners and the --no-render reading are built on it)."""

from __future__ import annotations

from pathlib import Path

from statekeeper.manifests.kustomize import read_kustomization


def test_read_kustomization_names_children_files_folders_patches_and_remote(
    tmp_path: Path,
) -> None:
    app = tmp_path / "app"
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "kustomization.yaml").write_text("resources: []\n")
    (tmp_path / "plain").mkdir()  # a folder without a kustomization
    (app / "config").mkdir(parents=True)
    for name in ("deploy.yaml", "patch.yaml", "json6902.yaml", "settings.env", "app.conf"):
        (app / name).write_text("")
    (app / "kustomization.yaml").write_text(
        """\
resources:
  - ../base
  - ../plain
  - deploy.yaml
  - https://github.com/org/repo//deploy?ref=v1
  - .
  - missing.yaml
components: [github.com/org/components/x]
patches:
  - path: patch.yaml
  - patch: |-
      - op: remove
        path: /spec/replicas
patchesJson6902: [{path: json6902.yaml}]
patchesStrategicMerge: [missing-patch.yml, notes.txt]
configMapGenerator:
  - name: app
    files: [app.conf=app.conf]
    envs: [settings.env]
secretGenerator: [{name: s, files: [config]}]
"""
    )
    found = read_kustomization(app)
    assert found.directory == app and not found.component
    assert found.children == [str(tmp_path / "base")]
    assert found.remote == [
        "https://github.com/org/repo//deploy?ref=v1",
        "github.com/org/components/x",
    ]
    # Patch files named by string or `path:`, present or not; an inline patch names none.
    assert found.patches == {
        str(app / "patch.yaml"),
        str(app / "json6902.yaml"),
        str(app / "missing-patch.yml"),
    }
    # Strings that name existing files; `key=path` read as its path.
    assert found.files == {
        str(app / n) for n in ("deploy.yaml", "patch.yaml", "json6902.yaml", "settings.env",
                               "app.conf")
    }  # fmt: skip
    # Folders without a kustomization; not `.` (it holds this one) nor a child.
    assert found.folders == {str(tmp_path / "plain"), str(app / "config")}


def test_read_kustomization_of_a_component_and_of_unreadable_files(tmp_path: Path) -> None:
    (tmp_path / "Kustomization").write_text("kind: Component\n")
    assert read_kustomization(tmp_path).component
    for text in ("[a, b]\n", "a: [\n", ""):
        (tmp_path / "Kustomization").write_text(text)
        found = read_kustomization(tmp_path)
        assert (found.children, found.files, found.folders, found.patches, found.remote) == (
            [], set(), set(), set(), []
        )  # fmt: skip
    assert read_kustomization(tmp_path / "nowhere").files == set()
