"""Round-trip editing: only changed lines differ; comments, quoting, order, indentation stay."""

from __future__ import annotations

import difflib
import stat
from pathlib import Path

import pytest

from statekeeper.errors import InputError
from statekeeper.fix.workspace import ChangedOnDisk, Workspace
from statekeeper.fix.yamlfile import CannotEdit, YamlFile


def changed_lines(old: str, new: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


QUIRKY = """\
# A hand-written file: odd spacing, both quote styles, a 4-space indent.
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
    name: 'app-data'        # single-quoted, trailing comment
    labels:
        tier:   "backend"
        zeta: z
        alpha: a
spec:
    accessModes: [ReadWriteOnce]   # flow style
    resources:
        requests:
            storage: 1Gi


    # a comment after blank lines
    volumeMode: Filesystem
"""


def test_edit_changes_only_that_line(tmp_path: Path) -> None:
    path = tmp_path / "pvc.yaml"
    path.write_text(QUIRKY)
    yfile = YamlFile.load(path)
    data = yfile.editable(0)
    data["spec"]["resources"]["requests"]["storage"] = "2Gi"
    new = yfile.render()
    assert changed_lines(QUIRKY, new) == ["-            storage: 1Gi", "+            storage: 2Gi"]


def test_added_key_is_the_only_new_line(tmp_path: Path) -> None:
    path = tmp_path / "pvc.yaml"
    path.write_text(QUIRKY)
    yfile = YamlFile.load(path)
    yfile.editable(0)["spec"]["storageClassName"] = "synelia-iscsi-retain"
    new = yfile.render()
    assert changed_lines(QUIRKY, new) == ["+    storageClassName: synelia-iscsi-retain"]
    # Quoting, key order and the flow sequence survive.
    assert "name: 'app-data'        # single-quoted, trailing comment" in new
    assert 'tier:   "backend"' in new
    assert "accessModes: [ReadWriteOnce]   # flow style" in new
    assert new.index("zeta: z") < new.index("alpha: a")


def test_flow_mapping_edit_keeps_flow_style(tmp_path: Path) -> None:
    text = "kind: Pod\nspec: {containers: [{name: a, image: 'x:1'}]}\n"
    path = tmp_path / "pod.yaml"
    path.write_text(text)
    yfile = YamlFile.load(path)
    yfile.editable(0)["spec"]["containers"][0]["image"] = "x:2"
    assert yfile.render() == "kind: Pod\nspec: {containers: [{name: a, image: 'x:2'}]}\n"


def test_multi_document_untouched_documents_are_byte_identical(tmp_path: Path) -> None:
    text = (
        "# first\n"
        "a:    1     # ruamel would tidy this spacing if it re-emitted the document\n"
        "---\n"
        "kind: ConfigMap\n"
        "metadata:\n"
        "  name: two\n"
        "data:\n"
        "  key: old\n"
        "--- # third\n"
        "b: [1,2,    3]\n"
    )
    path = tmp_path / "multi.yaml"
    path.write_text(text)
    yfile = YamlFile.load(path)
    assert len(yfile.documents) == 3
    yfile.editable(1)["data"]["key"] = "new"
    new = yfile.render()
    assert changed_lines(text, new) == ["-  key: old", "+  key: new"]


def test_anchors_are_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "anchors.yaml"
    path.write_text("base: &b {size: 1Gi}\nother: *b\n")
    yfile = YamlFile.load(path)
    with pytest.raises(CannotEdit, match=r"anchors.yaml: document 1 uses YAML anchors/aliases"):
        yfile.editable(0)


def test_unchanged_file_renders_identically(tmp_path: Path) -> None:
    path = tmp_path / "pvc.yaml"
    path.write_text(QUIRKY)
    yfile = YamlFile.load(path)
    yfile.editable(0)  # loaded for editing, but not changed
    assert yfile.render() == QUIRKY
    assert not yfile.changed


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("a: 1\n---\nb: [unclosed\n")
    with pytest.raises(InputError, match=r"bad.yaml: document 2 line \d+: invalid YAML"):
        YamlFile.load(path)


# --- the workspace: all files or none -----------------------------------------------------------


def _two_file_workspace(tmp_path: Path) -> tuple[Workspace, Path, Path]:
    one, two = tmp_path / "one.yaml", tmp_path / "two.yaml"
    one.write_text("a: 1  # keep\n")
    two.write_text("b: 1\n")
    ws = Workspace(root=tmp_path)
    ws.load(one).editable(0)["a"] = 2
    ws.load(two).editable(0)["b"] = 2
    return ws, one, two


def test_commit_writes_every_change_and_keeps_mode(tmp_path: Path) -> None:
    ws, one, two = _two_file_workspace(tmp_path)
    one.chmod(0o640)
    ws.create(tmp_path / "new" / "three.yaml", "c: 3\n")
    assert "+a: 2  # keep" in ws.diff()
    written = ws.commit()
    assert sorted(p.name for p in written) == ["one.yaml", "three.yaml", "two.yaml"]
    assert one.read_text() == "a: 2  # keep\n"
    assert two.read_text() == "b: 2\n"
    assert stat.S_IMODE(one.stat().st_mode) == 0o640
    assert not [p for p in tmp_path.rglob("*") if "statekeeper-tmp" in p.name]


def test_read_only_file_stops_everything(tmp_path: Path) -> None:
    ws, one, two = _two_file_workspace(tmp_path)
    two.chmod(0o444)
    with pytest.raises(InputError, match=r"^two.yaml is read-only; nothing was written$"):
        ws.commit()
    assert one.read_text() == "a: 1  # keep\n"
    assert two.read_text() == "b: 1\n"


def test_file_changed_after_reading_stops_everything(tmp_path: Path) -> None:
    ws, one, two = _two_file_workspace(tmp_path)
    two.write_text("b: 1\nsomeone: else\n")
    with pytest.raises(ChangedOnDisk, match=r"^two.yaml changed while fix was running"):
        ws.commit()
    assert one.read_text() == "a: 1  # keep\n"
    assert two.read_text() == "b: 1\nsomeone: else\n"


def test_rollback_undoes_in_memory_edits(tmp_path: Path) -> None:
    ws, one, _two = _two_file_workspace(tmp_path)
    checkpoint = ws.checkpoint()
    ws.load(one).editable(0)["a"] = 99
    ws.create(tmp_path / "extra.yaml", "x: 1\n")
    ws.rollback(checkpoint)
    changes = ws.changes()
    assert changes[one.resolve()][1] == "a: 2  # keep\n"
    assert (tmp_path / "extra.yaml").resolve() not in changes


def test_windows_line_endings_are_kept(tmp_path: Path) -> None:
    text = "# crlf\r\nkind: ConfigMap\r\ndata:\r\n  key: old\r\n"
    path = tmp_path / "crlf.yaml"
    path.write_bytes(text.encode())
    yfile = YamlFile.load(path)
    yfile.editable(0)["data"]["key"] = "new"
    assert yfile.render() == "# crlf\r\nkind: ConfigMap\r\ndata:\r\n  key: new\r\n"


def test_style_is_guessed_past_a_comment_only_first_document(tmp_path: Path) -> None:
    """`# kubectl apply -f …` then `---`: the indentation comes from the first real document,
    so a sequence indented under its key can still be edited line for line."""
    path = tmp_path / "job.yaml"
    text = (
        "# kubectl apply -f job.yaml\n---\napiVersion: batch/v1\nkind: Job\nmetadata:\n"
        "  name: bench\nspec:\n  template:\n    spec:\n      containers:\n"
        "        - name: bench\n          image: bench:1\n      volumes:\n        - name: data\n"
        "          persistentVolumeClaim:\n            claimName: old\n"
    )
    path.write_text(text)
    yfile = YamlFile.load(path)
    data = yfile.editable(1)
    data["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] = "new"
    assert yfile.render() == text.replace("claimName: old", "claimName: new")
