"""Golden tests for the edits that would hurt a running cluster, each on a small tree of its own
shape, through the real CLI and real kustomize: `fix` must not write them, or must write the
safe form (a migration, one Schedule), and a second `fix` must change nothing.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from statekeeper.findings import Finding, Severity
from statekeeper.fix.engine import fix_tree
from statekeeper.generate.strategy import load_strategy
from tests.fix.test_fixers import write
from tests.fix.test_golden import cli, snapshot


def render(kubectl: str, root: Path) -> list[dict[str, Any]]:
    done = subprocess.run([kubectl, "kustomize", str(root)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def rules(root: Path) -> list[tuple[str, str]]:
    done = cli("audit", root, "--format", "json", "--fail-on", "never")
    assert done.returncode == 0, done.stderr
    return sorted((f["rule"], f["name"]) for f in json.loads(done.stdout)["findings"])


def converges(root: Path, *args: str) -> None:
    before = snapshot(root)
    again = cli("fix", root, *args)
    assert snapshot(root) == before, again.stdout
    assert "fixed " not in again.stdout
    assert again.stdout.splitlines()[-1] in ("no file changed", "nothing to fix")


def pvc(name: str, size: str, klass: str | None = None) -> str:
    line = f"  storageClassName: {klass}\n" if klass else ""
    return (
        f"apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: {name}\nspec:\n"
        f"  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: {size}\n"
        + line
    )


def deployment(name: str, claim: str, app: str | None = None) -> str:
    app = app or name
    return (
        f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n"
        f"  labels: {{app.kubernetes.io/name: {app}}}\nspec:\n"
        f"  selector:\n    matchLabels: {{app: {name}}}\n  template:\n"
        f"    metadata:\n      labels: {{app: {name}, app.kubernetes.io/name: {app}}}\n"
        f"    spec:\n      containers:\n        - name: main\n          image: nginx:1\n"
        f"          volumeMounts: [{{name: data, mountPath: /srv}}]\n"
        f"      volumes:\n        - name: data\n          persistentVolumeClaim:\n"
        f"            claimName: {claim}\n"
    )


SCHEDULE = (
    "apiVersion: velero.io/v1\nkind: Schedule\nmetadata:\n  name: all\n  namespace: velero\n"
    "spec:\n  schedule: '0 3 * * *'\n  template:\n    includedNamespaces: ['*']\n"
)


def test_velero_schedule_written_once_not_per_root(tmp_path: Path) -> None:
    """Three roots (one Argo CD app each) and no Velero: one Schedule at cluster/, not three
    copies fighting over one object."""
    for app, env in (("alpha", "prod"), ("bravo", "prod"), ("charlie", "dev")):
        write(
            tmp_path,
            {
                f"apps/{app}/{env}/kustomization.yaml": (
                    f"namespace: {app}\nresources:\n  - namespace.yaml\n  - deployment.yaml\n"
                ),
                f"apps/{app}/{env}/namespace.yaml": (
                    f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {app}\n"
                ),
                f"apps/{app}/{env}/deployment.yaml": deployment(app, "none").split(
                    "          volumeMounts"
                )[0],
            },
        )
    result = cli("fix", tmp_path, "--rule", "SK401")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "wrote 1 file(s): cluster/velero-schedule.yaml"
    assert "add it to the app that deploys the cluster's own objects" in result.stdout
    schedules = [p for p in tmp_path.rglob("*.yaml") if "kind: Schedule" in p.read_text()]
    assert schedules == [tmp_path / "cluster/velero-schedule.yaml"]
    assert not [r for r in rules(tmp_path) if r[0] == "SK401"]
    converges(tmp_path, "--rule", "SK401")


def test_a_claim_is_never_shrunk(tmp_path: Path, kubectl: str) -> None:
    """A config claim (1–2Gi) that production patches to 50Gi: reported, never set to 1Gi."""
    write(
        tmp_path,
        {
            "base/kustomization.yaml": "namespace: app\nresources:\n  - pvc.yaml\n",
            "base/pvc.yaml": pvc("app-config-pvc", "1Gi", "synelia-iscsi-retain"),
            "overlays/prod/kustomization.yaml": (
                "resources:\n  - ../../base\npatches:\n  - target:\n"
                "      kind: PersistentVolumeClaim\n      name: app-config-pvc\n"
                "    patch: |-\n      - op: replace\n"
                "        path: /spec/resources/requests/storage\n        value: 50Gi\n"
            ),
        },
    )
    assert ("SK104", "app-config-pvc") in rules(tmp_path)
    before = snapshot(tmp_path)
    result = cli("fix", tmp_path, "--rule", "SK104")
    assert result.returncode == 1
    assert (
        "cannot fix SK104 PersistentVolumeClaim app/app-config-pvc (production): 50Gi is above "
        "the config maximum 2Gi: reported, not changed (a claim cannot shrink"
    ) in result.stdout
    assert snapshot(tmp_path) == before
    (claim,) = render(kubectl, tmp_path / "overlays/prod")
    assert claim["spec"]["resources"]["requests"]["storage"] == "50Gi"


def test_class_change_is_a_migration_and_the_patch_matches(tmp_path: Path, kubectl: str) -> None:
    """The production overlay sets its namespace itself (applied after its patches): the class
    patch must not name it, or it never matches. The bound claim is not changed in place: a new
    claim with the class is created beside it; the old one keeps its class and its data."""
    write(
        tmp_path,
        {
            "base/kustomization.yaml": "resources:\n  - pvc.yaml\n  - deployment.yaml\n",
            "base/pvc.yaml": pvc("app-config-pvc", "1Gi", "synelia-iscsi-delete"),
            "base/deployment.yaml": deployment("app", "app-config-pvc"),
            "overlays/prod/kustomization.yaml": "namespace: app\nresources:\n  - ../../base\n",
        },
    )
    assert ("SK101", "app-config-pvc") in rules(tmp_path)
    result = cli("fix", tmp_path, "--rule", "SK101")
    assert result.returncode == 0, result.stdout + result.stderr
    docs = render(kubectl, tmp_path / "overlays/prod")
    claims = {d["metadata"]["name"]: d for d in docs if d["kind"] == "PersistentVolumeClaim"}
    assert claims["app-config-pvc"]["spec"]["storageClassName"] == "synelia-iscsi-delete"
    assert claims["app-config-v2-pvc"]["spec"]["storageClassName"] == "synelia-iscsi-retain"
    (deploy,) = [d for d in docs if d["kind"] == "Deployment"]
    volume = deploy["spec"]["template"]["spec"]["volumes"][0]
    assert volume["persistentVolumeClaim"]["claimName"] == "app-config-v2-pvc"
    kustomization = (tmp_path / "overlays/prod/kustomization.yaml").read_text()
    assert "namespace: app\n" in kustomization and "      namespace:" not in kustomization
    note = (tmp_path / "base/MIGRATION-app-config-v2-pvc.md").read_text()
    assert "cp -a /old/. /new/" in note
    assert not [r for r in rules(tmp_path) if r[0] in ("SK101", "SK106")]
    converges(tmp_path, "--rule", "SK101")


def test_claim_shared_by_several_apps_is_not_named_after_one(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "base/kustomization.yaml": (
                "namespace: media\nresources:\n  - pvc.yaml\n  - a.yaml\n  - b.yaml\n"
            ),
            "base/pvc.yaml": pvc("media", "1Gi", "synelia-iscsi-retain"),
            "base/a.yaml": deployment("sonarr", "media"),
            "base/b.yaml": deployment("radarr", "media"),
            "overlays/prod/kustomization.yaml": "resources:\n  - ../../base\n",
        },
    )
    assert ("SK103", "media") in rules(tmp_path)
    before = snapshot(tmp_path)
    result = cli("fix", tmp_path, "--rule", "SK103")
    assert result.returncode == 1
    assert "PVC media is mounted by 2 apps (radarr, sonarr): naming it after one of them" in (
        result.stdout
    )
    assert snapshot(tmp_path) == before


def test_app_is_not_repeated_in_the_purpose(tmp_path: Path, kubectl: str) -> None:
    write(
        tmp_path,
        {
            "base/kustomization.yaml": "namespace: auth\nresources:\n  - pvc.yaml\n  - d.yaml\n",
            "base/pvc.yaml": pvc("authentik-data", "1Gi", "synelia-iscsi-retain"),
            "base/d.yaml": deployment("authentik-server", "authentik-data"),
            "overlays/prod/kustomization.yaml": "resources:\n  - ../../base\n",
        },
    )
    result = cli("fix", tmp_path, "--rule", "SK103")
    assert result.returncode == 0, result.stdout + result.stderr
    names = {
        d["metadata"]["name"]
        for d in render(kubectl, tmp_path / "overlays/prod")
        if d["kind"] == "PersistentVolumeClaim"
    }
    assert names == {"authentik-data", "authentik-server-data-pvc"}
    converges(tmp_path, "--rule", "SK103")


def _finding(rule: str, env: str) -> Finding:
    return Finding(
        rule=rule, slug=rule.lower(), severity=Severity.ERROR, message="m", remediation="r",
        kind="Namespace", name="apps", namespace=None, app=None, environment=env,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("after", "reason"),
    [
        # The render still reports the finding: the edit did not reach the object.
        (lambda: [_finding("SK401", "production")], "does not remove the finding"),
        # The edit removed its finding but broke a root.
        (
            lambda: [
                Finding(
                    rule="SK002",
                    slug="overlay-does-not-build",
                    severity=Severity.ERROR,
                    message="kustomize build failed: boom",
                    remediation="r",
                    kind="Kustomization",
                    name="prod",
                    file="overlays/prod/kustomization.yaml",
                    environment="production",
                )
            ],
            "would break a root that builds today",
        ),
    ],
)
def test_an_edit_that_fails_verification_is_dropped(
    tmp_path: Path, after: Any, reason: str
) -> None:
    """Whatever the re-render says is wrong with an edit, the edit is dropped, listed with the
    reason, and nothing is planned for writing. (The audit here stands in for the re-render,
    to force each verdict; the real one runs in every other test.)"""
    write(tmp_path, {"overlays/prod/kustomization.yaml": "resources: []\n"})
    result = fix_tree(
        tmp_path, [_finding("SK401", "production")], load_strategy(), lambda paths: after()
    )
    assert result.fixed == []
    (cannot,) = result.cannot
    assert reason in cannot.reason
    assert result.workspace.changes() == {}


def test_class_set_by_an_overlay_patch_file_is_changed_there(tmp_path: Path, kubectl: str) -> None:
    """A root above the overlay (`app/kustomization.yaml` → `overlays/prod`) whose overlay
    patch file sets the class: the base is not where the class is decided, the patch is. The
    new claim gets its own copy of the patch, with the environment's class; the old claim's
    patch is left alone. A backup CronJob named after the app does not make it "shared"."""
    backup = deployment("backup-app-config", "config")
    write(
        tmp_path,
        {
            "app/kustomization.yaml": "resources:\n  - overlays/prod\n",
            "app/base/kustomization.yaml": (
                "namespace: media\nresources:\n  - pvc.yaml\n  - app.yaml\n  - backup.yaml\n"
            ),
            "app/base/pvc.yaml": pvc("config", "1Gi", "replace-me"),
            "app/base/app.yaml": deployment("app", "config"),
            "app/base/backup.yaml": backup,
            "app/overlays/prod/kustomization.yaml": (
                "resources:\n  - ../../base\npatches:\n  - path: class.yaml\n"
            ),
            "app/overlays/prod/class.yaml": (
                "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: config\n"
                "  namespace: media\nspec:\n  storageClassName: longhorn\n"
            ),
        },
    )
    assert {("SK101", "config"), ("SK103", "config")} <= set(rules(tmp_path))
    result = cli("fix", tmp_path, "--rule", "SK101,SK103")
    assert result.returncode == 0, result.stdout + result.stderr
    docs = render(kubectl, tmp_path / "app")
    claims = {d["metadata"]["name"]: d for d in docs if d["kind"] == "PersistentVolumeClaim"}
    assert claims["config"]["spec"]["storageClassName"] == "longhorn"  # never in place
    assert claims["app-config-pvc"]["spec"]["storageClassName"] == "synelia-iscsi-retain"
    assert "replace-me" in (tmp_path / "app/base/pvc.yaml").read_text()
    converges(tmp_path, "--rule", "SK101,SK103")


def test_unreadable_inputs_are_skipped_and_do_not_block_other_fixes(tmp_path: Path) -> None:
    """A file that does not parse (SK003, named by its path) and a symlink loop: reported as the
    audit reports them, while the fixable finding is fixed and verified like any other."""
    write(
        tmp_path,
        {
            "apps/web/namespace.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: web\n",
            "apps/web/broken.yaml": "key: [unclosed\n",
        },
    )
    (tmp_path / "apps/loop").symlink_to("loop")
    result = cli("fix", tmp_path)
    assert "Traceback" not in result.stderr
    assert result.returncode == 1, result.stdout + result.stderr  # SK003 needs a person
    assert "fixed SK401 Namespace web" in result.stdout
    assert "cannot fix SK003 File" in result.stdout
    assert (tmp_path / "cluster/velero-schedule.yaml").exists()
    converges(tmp_path)
