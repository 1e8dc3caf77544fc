"""fix_workload's decisions, one case a row: what a pod that already has backup containers gets
(the smallest completing edit, or a refusal with the reason), and why a pod without one can be
refused. Fed the findings and detections the audit would report (as test_fixers.py does)."""

from __future__ import annotations

from pathlib import Path

import pytest

from statekeeper.fix.engine import plan_fixes
from statekeeper.generate.strategy import Strategy

from .test_fixers import both, small_tree, snapshot
from .test_fixers import strategy as strategy  # the module-scoped fixture

DB = {("Deployment", "apps", "app"): (["/data/app.db"], [])}
NOTHING: dict[tuple[str, str, str], tuple[list[str], list[str]]] = {}

LITESTREAM = """\
        - name: litestream
          image: litestream/litestream:0.3
          args: [replicate, -config, /etc/litestream.yml]
"""
RCLONE = """\
        - name: sync
          image: rclone/rclone:1
          args: [sync, /config, s3:bucket/config]
"""
AGENT = """\
        - name: statekeeper
          image: ghcr.io/example/statekeeper:1
          args: [agent, run]
"""
# The integrity check runs after the restore: SK202's order is wrong.
CHECK_AFTER_RESTORE = """\
      initContainers:
        - name: litestream-restore
          image: litestream/litestream:0.3
          args: [restore, -if-db-not-exists, /data/app.db]
        - name: check-integrity
          image: keinos/sqlite3
          command: [sh, -c, 'sqlite3 /data/app.db "PRAGMA integrity_check"']
"""


def add_sidecar(root: Path, text: str) -> None:
    deployment = root / "base" / "deployment.yaml"
    deployment.write_text(
        deployment.read_text().replace("      volumes:\n", text + "      volumes:\n")
    )


def add_init(root: Path, text: str) -> None:
    deployment = root / "base" / "deployment.yaml"
    before = "    spec:\n      containers:"
    deployment.write_text(
        deployment.read_text().replace(before, f"    spec:\n{text}      containers:")
    )


@pytest.mark.parametrize(
    ("sidecar", "rule", "detected", "reason"),
    [
        (AGENT, "SK201", DB, "the pod already runs statekeeper's agent; add the missing paths"),
        (LITESTREAM, "SK201", DB, "the pod already has its own litestream/rclone containers; a"),
        (RCLONE, "SK301", DB, "the pod already has its own litestream/rclone containers; a"),
        (LITESTREAM, "SK203", NOTHING, "the pod's litestream sidecar was not recognised (no"),
        ("", "SK201", NOTHING, "no SQLite path detected; name it with the statekeeper.io/sqlite"),
        ("", "SK301", DB, "no config directory detected; name it with statekeeper.io/config-path"),
    ],
)
def test_backup_refusals_leave_the_pod_alone(
    tmp_path: Path,
    strategy: Strategy,
    sidecar: str,
    rule: str,
    detected: dict[tuple[str, str, str], tuple[list[str], list[str]]],
    reason: str,
) -> None:
    small_tree(tmp_path)
    add_sidecar(tmp_path, sidecar)
    before = snapshot(tmp_path)
    result = plan_fixes(tmp_path, both(rule, "Deployment", "app"), strategy, detected=detected)
    assert not result.fixed
    assert [c.reason.startswith(reason) for c in result.cannot] == [True]
    result.workspace.commit()
    assert snapshot(tmp_path) == before


def test_integrity_check_after_the_restore_is_moved_before_it(
    tmp_path: Path, strategy: Strategy
) -> None:
    small_tree(tmp_path)
    add_init(tmp_path, CHECK_AFTER_RESTORE)
    add_sidecar(tmp_path, LITESTREAM)
    result = plan_fixes(tmp_path, both("SK202", "Deployment", "app"), strategy, detected=DB)
    assert [f.what for f in result.fixed] == [
        "moved the integrity check before the restore in base/deployment.yaml"
    ]
    result.workspace.commit()
    text = (tmp_path / "base" / "deployment.yaml").read_text()
    assert text.index("name: check-integrity") < text.index("name: litestream-restore")


def test_litestream_sidecar_gets_its_restore_init_container(
    tmp_path: Path, strategy: Strategy
) -> None:
    small_tree(tmp_path)
    add_sidecar(tmp_path, LITESTREAM)
    result = plan_fixes(tmp_path, both("SK203", "Deployment", "app"), strategy, detected=DB)
    assert not result.cannot
    assert [f.what for f in result.fixed] == [
        "added the litestream restore init container in base/deployment.yaml"
    ]


def test_a_claim_named_only_after_its_app_is_refused_saying_its_name_has_no_purpose(
    tmp_path: Path, strategy: Strategy
) -> None:
    """SK104 for `app` of app `app`: no category by purpose, and the refusal says why instead
    of quoting an empty purpose."""
    small_tree(tmp_path, claim="app")
    result = plan_fixes(tmp_path, both("SK104", "PersistentVolumeClaim", "app"), strategy)
    assert [c.reason for c in result.cannot] == [
        "no sizing category of the policy matches claim 'app': its name says no purpose beyond "
        "the app 'app', and what mounts it names no category"
    ]
    assert not result.workspace.changes()
