"""`walk`: what it keeps, what it skips, and what it reports, on a tree built here."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from statekeeper.manifests.files import walk
from statekeeper.manifests.yaml import ReadError


def names(root: Path, paths: Iterable[Path]) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in paths)


def test_walk_keeps_yaml_kustomizations_and_charts_and_skips_the_rest(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "apps" / "web").mkdir(parents=True)
    (root / "apps" / "web" / "deploy.yaml").write_text("{}")
    (root / "apps" / "web" / "kustomization.yaml").write_text("{}")
    (root / "apps" / "notes.txt").write_text("")
    (root / "b.yml").write_text("{}")
    (root / "a.yaml").write_text("{}")
    (root / ".github" / "workflows").mkdir(parents=True)
    (root / ".github" / "workflows" / "ci.yaml").write_text("{}")  # hidden: skipped
    (root / ".pre-commit-config.yaml").write_text("{}")
    (root / "charts" / "app" / "templates").mkdir(parents=True)
    (root / "charts" / "app" / "Chart.yaml").write_text("name: app")
    (root / "charts" / "app" / "templates" / "x.yaml").write_text("{{ .Values }}")
    (root / "Chart.yaml").write_text("name: root")  # the root itself is walked, not a chart
    tree = walk(root)
    # By name, a directory's own files before its subdirectories'.
    assert [str(p.relative_to(root)) for p in tree.yaml_files] == [
        "Chart.yaml",
        "a.yaml",
        "b.yml",
        "apps/web/deploy.yaml",
    ]
    assert names(root, tree.kustomize_dirs) == ["apps/web"]
    assert names(root, tree.helm_charts) == ["charts/app"]
    assert tree.problems == []


def test_walk_reads_a_linked_directory_once_and_reports_a_loop(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "real").mkdir(parents=True)
    (root / "real" / "x.yaml").write_text("{}")
    (root / "second").symlink_to("real")  # a second link: read once (under its first name)
    (root / "real" / "up").symlink_to("..")  # back to a parent: a loop
    seen: list[ReadError] = []
    tree = walk(root, seen.append)
    assert [str(p.relative_to(root)) for p in tree.yaml_files] == ["real/x.yaml"]
    assert [e.reason for e in tree.problems] == ["symlink loop (links back to a parent)"]
    assert seen == tree.problems and tree.problems[0].where.endswith("real/up")


def test_walk_problem_callback_may_stop_the_walk(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "gone").symlink_to("nowhere")  # a broken link: is_dir() is False, not a problem
    (root / "loop").symlink_to("loop")  # a link to itself: cannot be read
    (root / "x.yaml").write_text("{}")

    def stop(err: ReadError) -> None:
        raise RuntimeError(err.reason)

    with pytest.raises(RuntimeError, match="symlink loop"):
        walk(root, stop)
    tree = walk(root)
    assert [(Path(e.where).name, e.reason) for e in tree.problems] == [
        ("loop", "cannot read: symlink loop")
    ]
    assert [p.name for p in tree.yaml_files] == ["x.yaml"]


def test_walk_of_an_unreadable_root_is_one_problem(tmp_path: Path) -> None:
    tree = walk(tmp_path / "missing")
    assert [e.reason for e in tree.problems] == ["cannot read: No such file or directory"]
    assert tree.yaml_files == [] and tree.kustomize_dirs == set()
