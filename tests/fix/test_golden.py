"""`statekeeper fix` end to end on copies of examples/homelab, through the real audit and kustomize.

The expected diffs in tests/fix/expected/ were generated once by `fix --diff`, read line by line,
and committed; a change in the fixer output shows up here as a diff of diffs. To regenerate after
an intended change: `statekeeper fix <copy of examples/homelab> --diff > tests/fix/expected/…`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
HOMELAB = REPO / "examples" / "homelab"
EXPECTED = Path(__file__).resolve().parent / "expected"
# The rules the fixers repair on the homelab; SK501 (an inline key) is listed, never fixed.
FIXED_RULES = {
    "SK101", "SK102", "SK103", "SK104", "SK106", "SK201", "SK202", "SK203", "SK204", "SK301",
    "SK401",
}  # fmt: skip


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "statekeeper", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=180,
    )


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def audit_findings(root: Path) -> list[dict[str, Any]]:
    result = cli("audit", root, "--format", "json", "--fail-on", "never")
    assert result.returncode == 0, result.stderr
    findings: list[dict[str, Any]] = json.loads(result.stdout)["findings"]
    return findings


def render_all(kubectl: str, root: Path) -> dict[str, list[dict[str, Any]]]:
    rendered = {}
    for overlay in sorted((root / "overlays").iterdir()):
        result = subprocess.run(
            [kubectl, "kustomize", str(overlay)], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, f"{overlay.name}: {result.stderr}"
        rendered[overlay.name] = [d for d in yaml.safe_load_all(result.stdout) if d]
    return rendered


@pytest.fixture
def homelab(tmp_path: Path) -> Path:
    copy = tmp_path / "homelab"
    shutil.copytree(HOMELAB, copy)
    return copy


@pytest.mark.parametrize(
    ("style", "expected"),
    [("agent", "homelab.diff"), ("litestream", "homelab-litestream.diff")],
)
def test_fix_homelab_golden(homelab: Path, kubectl: str, style: str, expected: str) -> None:
    before = audit_findings(homelab)
    assert {f["rule"] for f in before} >= FIXED_RULES  # the example still plants them all

    untouched = snapshot(homelab)
    first = cli("fix", homelab, "--diff", "--style", style)
    assert first.returncode == 1, first.stderr  # SK501 is listed as not fixable
    assert first.stdout == (EXPECTED / expected).read_text()
    assert snapshot(homelab) == untouched  # --diff only shows
    written = cli("fix", homelab, "--style", style)
    assert written.returncode == 1, written.stderr
    files = first.stdout.count("\n+++ b/") + first.stdout.startswith("+++ b/")
    assert written.stdout.splitlines()[-1].startswith(f"wrote {files} file(s): ")
    assert (
        "cannot fix SK501 Deployment home-automation/esphome (development): moving an S3 key"
        in (first.stderr)
    )
    assert "devminio-Kq7u2" not in first.stdout + first.stderr  # never print a secret
    assert "note: mealie-data → mealie-data-pvc" in first.stderr
    # The added backup needs a Secret that fix must not write: the user is told to create it.
    for namespace in ("mealie", "syncthing"):
        assert (
            "note: the backup reads its S3 keys from Secret statekeeper-s3 (AWS_ACCESS_KEY_ID, "
            f"AWS_SECRET_ACCESS_KEY) in namespace {namespace}: create it outside git"
        ) in first.stderr

    # Idempotent: a second run has nothing left to change.
    second = cli("fix", homelab, "--diff", "--style", style)
    assert second.stdout == ""
    assert second.returncode == 1  # SK501 still there, still listed
    assert second.stderr.splitlines()[-1] == "no file changed"

    after = audit_findings(homelab)
    assert not [f for f in after if f["rule"] in FIXED_RULES]
    assert [(f["rule"], f["name"]) for f in after] == [("SK501", "esphome")]

    rendered = render_all(kubectl, homelab)
    assert set(rendered) == {"dev", "prod"}
    for docs in rendered.values():
        claims = {d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolumeClaim"}
        # A migration: the new claim beside the old one, which keeps the data until copied.
        assert {"mealie-data-pvc", "mealie-data"} <= claims
        (mealie,) = [
            d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "mealie"
        ]
        mounted = [v.get("persistentVolumeClaim", {}).get("claimName")
                   for v in mealie["spec"]["template"]["spec"]["volumes"]]  # fmt: skip
        assert "mealie-data-pvc" in mounted and "mealie-data" not in mounted


def test_dry_run_is_diff_and_writes_nothing(homelab: Path) -> None:
    before = snapshot(homelab)
    result = cli("fix", homelab, "--dry-run")
    assert result.returncode == 1
    assert result.stdout == (EXPECTED / "homelab.diff").read_text()
    assert result.stderr.splitlines()[-1] == "--diff: 16 file(s) would change, nothing written"
    assert snapshot(homelab) == before


def test_rule_filter_fixes_only_that_rule(homelab: Path) -> None:
    shown = cli("fix", homelab, "--rule", "SK401", "--diff")
    assert shown.returncode == 0, shown.stderr  # everything selected can be fixed
    changed = [line for line in shown.stdout.splitlines() if line.startswith("+++ ")]
    assert changed == ["+++ b/cluster/velero/schedule.yaml"]
    assert "+      - media" in shown.stdout
    result = cli("fix", homelab, "--rule", "SK401")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "wrote 1 file(s): cluster/velero/schedule.yaml"
    rules = {f["rule"] for f in audit_findings(homelab)}
    assert "SK401" not in rules and "SK103" in rules


def test_rule_filter_takes_slugs_like_audit(homelab: Path) -> None:
    """`--rule velero-daily-all-namespaces` means SK401, as it does for `audit --rule`."""
    result = cli("fix", homelab, "--rule", "velero-daily-all-namespaces", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("fixed SK401 Namespace media")
    assert "SK103" not in result.stderr


def test_read_only_file_leaves_tree_untouched(homelab: Path) -> None:
    schedule = homelab / "cluster" / "velero" / "schedule.yaml"
    schedule.chmod(0o444)
    before = snapshot(homelab)
    result = cli("fix", homelab)
    assert result.returncode == 2
    assert result.stderr == (
        "statekeeper: error: cluster/velero/schedule.yaml is read-only; nothing was written\n"
    )
    assert snapshot(homelab) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rule", "SK999"], "--rule SK999: not a fixable rule"),
        (["--style", "helm"], "Invalid value for '--style'"),
    ],
)
def test_usage_errors(homelab: Path, args: list[str], message: str) -> None:
    result = cli("fix", homelab, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    result = cli("fix", tmp_path / "nowhere")
    assert result.returncode == 2
    assert result.stderr.strip().endswith("nowhere: no such file or directory")


def test_fix_single_plain_file(tmp_path: Path) -> None:
    """No kustomize: the claim's class is not changed in place (a migration needs every
    reference, in other files too); the Schedule goes once into cluster/ next to the file."""
    manifest = tmp_path / "app.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: web\n"
        "  labels:\n    environment: production\n---\n"
        "# the data of the web app\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n"
        "  name: web-config-pvc\n  namespace: web\nspec:\n"
        '  accessModes: ["ReadWriteOnce"]\n  resources: {requests: {storage: 1Gi}}\n'
    )
    before = manifest.read_text()
    result = cli("fix", manifest, "--rule", "SK106,SK401")
    assert result.returncode == 1, result.stderr  # SK106 needs a person
    assert (
        "cannot fix SK106 PersistentVolumeClaim web/web-config-pvc (production): moving a claim "
        "to a new one must update every reference to it, in other files too"
    ) in result.stdout
    assert manifest.read_text() == before
    assert (tmp_path / "cluster" / "velero-schedule.yaml").exists()
    rules = {f["rule"] for f in audit_findings(tmp_path)}
    assert "SK401" not in rules and "SK106" in rules


def test_litestream_sidecar_gets_fail_safe_init_containers(tmp_path: Path, kubectl: str) -> None:
    """A pod with only a litestream sidecar (SK202, SK203) gets the integrity check and the
    restore, built from the sidecar: its image, `-config`, secret and mounts."""
    tree = tmp_path / "tree"
    shutil.copytree(Path(__file__).parent / "trees" / "litestream-sidecar-only", tree)
    before = {f["rule"] for f in audit_findings(tree)}
    assert {"SK202", "SK203"} <= before
    result = cli("fix", tree, "--rule", "SK202,SK203")
    assert result.returncode == 0, result.stderr
    assert not {"SK201", "SK202", "SK203", "SK204"} & {f["rule"] for f in audit_findings(tree)}
    (deploy,) = [d for d in render_all(kubectl, tree)["prod"] if d["kind"] == "Deployment"]
    init = deploy["spec"]["template"]["spec"]["initContainers"]
    assert [c["name"] for c in init] == ["check-integrity", "litestream-restore"]
    assert init[1]["args"] == [
        "restore", "-if-db-not-exists", "-if-replica-exists", "-config", "/etc/litestream.yml",
        "/app/data/kuma.db",
    ]  # fmt: skip
    assert init[1]["envFrom"] == [{"secretRef": {"name": "litestream-s3"}}]


def test_diff_never_shows_an_inline_key(tmp_path: Path) -> None:
    """An inline S3 key in the context lines of an edit is masked in `--diff`."""
    manifest = tmp_path / "app.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: web\n"
        "  labels:\n    environment: production\n---\n"
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: web-config-pvc\n"
        "  namespace: web\n  annotations:\n"
        "    note: copied from AWS_SECRET_ACCESS_KEY=sk-inline-do-not-print\n"
        "spec:\n  resources: {requests: {storage: 100Mi}}\n---\n"
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: web\nspec:\n"
        "  containers:\n    - name: web\n      image: nginx\n"
        "      env: [{name: AWS_SECRET_ACCESS_KEY, value: sk-inline-do-not-print}]\n"
    )
    result = cli("fix", manifest, "--rule", "SK104", "--diff")
    assert result.returncode == 0, result.stderr
    assert "+  resources: {requests: {storage: 1Gi}}" in result.stdout
    assert "note: copied from AWS_SECRET_ACCESS_KEY=***" in result.stdout  # context line
    assert "sk-inline-do-not-print" not in result.stdout + result.stderr
