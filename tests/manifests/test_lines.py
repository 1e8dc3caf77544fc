"""field_line: exact lines of fields, for plain files and rendered overlays."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from statekeeper.manifests.lines import field_line
from statekeeper.manifests.load import load_sources

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(FIXTURES / "repo", tmp_path / "repo")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "repo"


def test_field_line_in_plain_files(repo: Path) -> None:
    result = load_sources(["repo/base"], render=False)
    by_name = {r.name: r for r in result.resources}
    pvc = by_name["vault-data-pvc"]
    assert field_line(pvc, ["spec", "storageClassName"]) == 8
    assert field_line(pvc, ["spec", "resources", "requests", "storage"]) == 11
    assert field_line(pvc, ["spec", "accessModes", 0]) == 7  # a flow sequence's item
    second = by_name["vault-config-pvc"]
    assert field_line(second, ["metadata", "name"]) == 16
    assert field_line(second, ["spec", "storageClassName"]) is None  # not there
    deploy = by_name["vault"]
    containers = ["spec", "template", "spec", "containers"]
    assert field_line(deploy, [*containers, 1, "image"]) == 19
    assert field_line(deploy, [*containers, 0, "volumeMounts", 0, "mountPath"]) == 17
    assert field_line(deploy, [*containers, 5]) is None
    assert field_line(deploy, ["spec", "template", 0]) is None  # index into a mapping


def test_field_line_in_rendered_overlay(repo: Path, kubectl: str) -> None:
    result = load_sources(["repo"], overlay_envs={"prod": "production"})
    prod = {r.name: r for r in result.resources if r.origin.overlay == "repo/overlays/prod"}
    pvc = prod["prod-vault-data-pvc"]
    assert field_line(pvc, ["spec", "storageClassName"]) == 8
    deploy = prod["prod-vault"]
    containers = ["spec", "template", "spec", "containers"]
    # The prod patch put `rclone` first: index 2 of the rendered list is the base's item 1.
    assert deploy.body["spec"]["template"]["spec"]["containers"][2]["name"] == "litestream"
    assert field_line(deploy, [*containers, 2, "image"]) == 19
    # rclone comes from the patch, not the base file: unknown rather than wrong.
    assert field_line(deploy, [*containers, 0, "image"]) is None
    generated = next(r for r in prod.values() if r.kind == "ConfigMap")
    assert field_line(generated, ["data"]) is None


def test_field_line_unknown_for_stdin() -> None:
    stream = io.BytesIO(
        b"apiVersion: v1\nkind: PersistentVolumeClaim\nspec:\n  storageClassName: x\n"
    )
    resource = load_sources(["-"], stdin=stream).resources[0]
    assert field_line(resource, ["spec", "storageClassName"]) is None


def test_field_line_follows_edits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "a.yaml"
    path.write_text("apiVersion: v1\nkind: Service\nspec:\n  type: ClusterIP\n")
    resource = load_sources(["a.yaml"]).resources[0]
    assert field_line(resource, ["spec", "type"]) == 4
    path.write_text("apiVersion: v1\nkind: Service\n\n\nspec:\n  type: ClusterIP\n")
    import os

    os.utime(path, (1, 1))  # a different mtime, as an editor's save would give
    assert field_line(resource, ["spec", "type"]) == 6
