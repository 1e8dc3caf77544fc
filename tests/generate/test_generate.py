"""`statekeeper generate`: files that render with real kustomize and follow the agent contract."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from statekeeper.errors import InputError
from statekeeper.generate import AppSpec, load_strategy, render_app, write_new_files
from statekeeper.generate.cluster import storage_classes, velero_schedule
from statekeeper.generate.wiring import needs_longer_grace, needs_recreate


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "statekeeper", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def kustomize(kubectl: str, overlay: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [kubectl, "kustomize", str(overlay)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def test_generate_app_renders_per_environment(tmp_path: Path, kubectl: str) -> None:
    result = run_cli(
        "generate", "app", "mealie", "--env", "dev,prod", "--sqlite", "/app/data/mealie.db",
        "--config", "/config", "--output", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    root = tmp_path / "mealie"
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*.yaml")) == [
        "base/deployment.yaml",
        "base/kustomization.yaml",
        "base/pvc.yaml",
        "overlays/dev/kustomization.yaml",
        "overlays/prod/kustomization.yaml",
    ]
    strategy = load_strategy()
    for env, canonical in (("dev", "development"), ("prod", "production")):
        docs = kustomize(kubectl, root / "overlays" / env)
        (pvc,) = by_kind(docs, "PersistentVolumeClaim")
        assert pvc["metadata"]["name"] == "mealie-config-pvc"
        assert pvc["metadata"]["namespace"] == "mealie"
        expected_class = strategy.environments[canonical].storage_class
        assert pvc["spec"]["storageClassName"] == expected_class
        size_range = strategy.category_for("mealie", "config")
        assert size_range is not None
        assert size_range.contains(pvc["spec"]["resources"]["requests"]["storage"])
        (config_map,) = by_kind(docs, "ConfigMap")
        assert config_map["data"]["STATEKEEPER_PREFIX"] == f"{env}/mealie"
        (deployment,) = by_kind(docs, "Deployment")
        template = deployment["spec"]["template"]
        assert template["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
        # The agent's lease and final flush: no surge (a rollout would deadlock), time to flush.
        assert deployment["spec"]["strategy"] == {"type": "Recreate"}
        assert template["spec"]["terminationGracePeriodSeconds"] >= 40
        init = template["spec"]["initContainers"]
        assert [c["name"] for c in init] == ["statekeeper-restore", "statekeeper-agent"]
        restore, sidecar = init
        assert " ".join(restore["args"]) == "agent restore"
        assert " ".join(sidecar["args"]) == "agent run"
        assert sidecar["restartPolicy"] == "Always"
        for container in (restore, sidecar):
            env_values = {e["name"]: e.get("value") for e in container["env"]}
            assert env_values["STATEKEEPER_SQLITE_PATHS"] == "/app/data/mealie.db"
            assert env_values["STATEKEEPER_CONFIG_PATHS"] == "/config"
            # Secrets only by reference, and the configMapRef follows the hashed name.
            assert {"secretRef": {"name": "statekeeper-s3"}} in container["envFrom"]
            assert {"configMapRef": {"name": config_map["metadata"]["name"]}} in container[
                "envFrom"
            ]
            assert not any(e["name"].startswith("AWS_") for e in container["env"])
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert {"/app/data", "/config"} <= mounts
        volumes = template["spec"]["volumes"]
        assert volumes == [
            {"name": "state", "persistentVolumeClaim": {"claimName": "mealie-config-pvc"}}
        ]


def test_generate_app_says_what_is_left_to_do(tmp_path: Path) -> None:
    """The generated pod needs a Secret that must not be in git, and a Velero schedule: say so."""
    result = run_cli("generate", "app", "myapp", "--env", "dev", "-n", "apps", "-o", str(tmp_path))
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("next: ")]
    assert lines == [
        "next: create Secret statekeeper-s3 (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) in "
        "namespace apps outside git (SOPS, External Secrets)",
        "next: set the app's image in base/deployment.yaml (written: myapp:latest)",
        "next: back the namespace up daily with Velero (`statekeeper generate velero-schedule`)",
    ]
    pinned = run_cli(
        "generate", "app", "pinned", "--env", "dev", "--image", "x/y:1", "-o", str(tmp_path)
    )
    assert pinned.returncode == 0, pinned.stderr
    assert "set the app's image" not in pinned.stdout


def test_generate_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    args = ("generate", "app", "kuma", "--env", "prod", "--sqlite", "/app/data/kuma.db")
    first = run_cli(*args, "--output", str(tmp_path))
    assert first.returncode == 0, first.stderr
    pvc = tmp_path / "kuma" / "base" / "pvc.yaml"
    pvc.write_text("# hand edited\n")
    second = run_cli(*args, "--output", str(tmp_path))
    assert second.returncode == 2
    assert second.stderr.startswith("statekeeper: error: refusing to overwrite existing file(s)")
    assert len(second.stderr.strip().splitlines()) == 1
    assert pvc.read_text() == "# hand edited\n"  # nothing written
    forced = run_cli(*args, "--output", str(tmp_path), "--force")
    assert forced.returncode == 0, forced.stderr
    assert "kuma-config-pvc" in pvc.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env", "prod,nowhere"], "unknown environment 'nowhere'"),
        (
            ["--env", "prod", "--size", "50Gi"],
            "size 50Gi is outside the policy's config range 1Gi-2Gi for purpose 'config': "
            "choose a --size in that range",
        ),
        (["--env", "prod", "--size", "lots"], "not a storage size: 'lots'"),
        (["--env", "prod", "--sqlite", "data/db.sqlite3"], "must be an absolute path"),
        (["--env", "prod,production"], "environment 'production' given twice"),
        (["--env", "prod", "--purpose", "Bad_Purpose"], "purpose 'Bad_Purpose' is not a valid"),
    ],
)
def test_generate_app_bad_input(tmp_path: Path, args: list[str], message: str) -> None:
    result = run_cli("generate", "app", "myapp", *args, "--output", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.startswith("statekeeper: error: ")
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "myapp").exists()


def test_bad_app_name_is_refused() -> None:
    with pytest.raises(InputError, match="app name 'My App' is not a valid Kubernetes name"):
        render_app(AppSpec(name="My App", environments=("prod",)), load_strategy())


def test_database_purpose_takes_size_from_policy_range() -> None:
    strategy = load_strategy()
    files = render_app(
        AppSpec(name="notes", environments=("prod",), sqlite_paths=("/data/notes.db",),
                purpose="db"),
        strategy,
    )  # fmt: skip
    pvc = yaml.safe_load(files[Path("notes/base/pvc.yaml")])
    database = strategy.category_for("notes", "db")
    assert database is not None and database.name == "database"
    assert pvc["metadata"]["name"] == "notes-db-pvc"
    assert pvc["spec"]["resources"]["requests"]["storage"] == database.min


def test_nested_paths_share_one_mount(tmp_path: Path) -> None:
    files = render_app(
        AppSpec(name="hass", environments=("dev",), sqlite_paths=("/config/home-assistant_v2.db",),
                config_paths=("/config",)),
        load_strategy(),
    )  # fmt: skip
    deployment = yaml.safe_load(files[Path("hass/base/deployment.yaml")])
    app_container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert app_container["volumeMounts"] == [{"name": "state", "mountPath": "/config"}]


def test_velero_schedule_is_daily_all_namespaces_with_volumes(tmp_path: Path) -> None:
    result = run_cli("generate", "velero-schedule", "--output", str(tmp_path))
    assert result.returncode == 0, result.stderr
    (schedule,) = list(yaml.safe_load_all((tmp_path / "velero-schedule.yaml").read_text()))
    assert schedule == velero_schedule(load_strategy())
    assert schedule["kind"] == "Schedule"
    assert schedule["spec"]["schedule"] == "0 3 * * *"
    assert schedule["spec"]["template"]["includedNamespaces"] == ["*"]
    assert schedule["spec"]["template"]["snapshotVolumes"] is True
    bad = run_cli("generate", "velero-schedule", "--schedule", "*/5 * * * *", "--output", "-")
    assert bad.returncode == 2
    assert "is not a daily cron" in bad.stderr


def test_storage_classes_follow_policy(tmp_path: Path) -> None:
    result = run_cli(
        "generate", "storage-classes", "--provisioner", "nfs-storage=example.com/nfs", "-o", "-"
    )
    assert result.returncode == 0, result.stderr
    classes = {d["metadata"]["name"]: d for d in yaml.safe_load_all(result.stdout)}
    strategy = load_strategy()
    assert set(classes) == {e.storage_class for e in strategy.environments.values()}
    for env in strategy.environments.values():
        assert classes[env.storage_class]["reclaimPolicy"] == env.reclaim_policy
    assert classes["nfs-storage"]["provisioner"] == "example.com/nfs"
    assert storage_classes(strategy)[0]["apiVersion"] == "storage.k8s.io/v1"


def test_nfs_class_carries_server_and_share_placeholders() -> None:
    """nfs.csi.k8s.io needs `server` and `share`: the generated class has commented placeholders
    and stays valid YAML; another driver named for the class gets no NFS parameters."""
    result = run_cli("generate", "storage-classes", "-o", "-")
    assert result.returncode == 0, result.stderr
    classes = {d["metadata"]["name"]: d for d in yaml.safe_load_all(result.stdout)}
    assert classes["nfs-storage"]["provisioner"] == "nfs.csi.k8s.io"
    assert classes["nfs-storage"]["parameters"] == {
        "server": "nfs.example.lan",
        "share": "/export/kubernetes",
    }
    assert "server: nfs.example.lan    # set your NFS server\n" in result.stdout
    assert "share: /export/kubernetes  # set the exported directory" in result.stdout
    assert "parameters" not in classes["synelia-iscsi-retain"]
    other = run_cli(
        "generate", "storage-classes", "--provisioner", "nfs-storage=example.com/nfs", "-o", "-"
    )
    assert "parameters" not in other.stdout


def test_write_new_files_is_all_or_nothing(tmp_path: Path) -> None:
    existing = tmp_path / "b.yaml"
    existing.write_text("keep: me\n")
    with pytest.raises(InputError, match="refusing to overwrite"):
        write_new_files({tmp_path / "a.yaml": "a: 1\n", existing: "b: 2\n"})
    assert not (tmp_path / "a.yaml").exists()
    assert existing.read_text() == "keep: me\n"


def test_written_files_are_readable_like_any_checked_out_file(tmp_path: Path) -> None:
    """New files get 0644, not the 0600 of a temporary file; an overwritten one keeps its mode."""
    kept = tmp_path / "kept.yaml"
    kept.write_text("old: 1\n")
    kept.chmod(0o640)
    write_new_files({tmp_path / "apps" / "new.yaml": "a: 1\n", kept: "new: 1\n"}, force=True)
    assert stat.S_IMODE((tmp_path / "apps" / "new.yaml").stat().st_mode) == 0o644
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640
    assert kept.read_text() == "new: 1\n"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["apps", "kept.yaml", "new.yaml"]


def test_known_sqlite_image_and_config_mount_are_protected() -> None:
    """Vaultwarden's database is known to the policy; a /config mount is a config directory."""
    files = render_app(
        AppSpec(name="vw", environments=("prod",), image="vaultwarden/server:1.32.0",
                config_paths=(), sqlite_paths=("/config/extra.db",), purpose="data",
                size="10Gi"),
        load_strategy(),
    )  # fmt: skip
    deployment = yaml.safe_load(files[Path("vw/base/deployment.yaml")])
    restore = deployment["spec"]["template"]["spec"]["initContainers"][0]
    env = {e["name"]: e["value"] for e in restore["env"]}
    assert env["STATEKEEPER_SQLITE_PATHS"] == "/config/extra.db,/data/db.sqlite3"
    assert env["STATEKEEPER_CONFIG_PATHS"] == "/config"


def test_class_names_come_from_a_user_policy(tmp_path: Path, kubectl: str) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "environments:\n  production:\n    storage_class: fast-retain\n    reclaim_policy: Retain\n"
    )
    missing = run_cli("generate", "storage-classes", "--policy", str(policy), "-o", "-")
    assert missing.returncode == 2
    assert "no provisioner known for StorageClass 'fast-retain'" in missing.stderr
    classes = run_cli(
        "generate", "storage-classes", "--policy", str(policy), "-o", "-",
        "--provisioner", "fast-retain=csi.example.com",
    )  # fmt: skip
    assert classes.returncode == 0, classes.stderr
    names = [d["metadata"]["name"] for d in yaml.safe_load_all(classes.stdout)]
    assert "fast-retain" in names and "synelia-iscsi-retain" not in names
    app = run_cli(
        "generate", "app", "notes", "--env", "prod", "--config", "/config",
        "--policy", str(policy), "--output", str(tmp_path),
    )  # fmt: skip
    assert app.returncode == 0, app.stderr
    (pvc,) = by_kind(kustomize(kubectl, tmp_path / "notes/overlays/prod"), "PersistentVolumeClaim")
    assert pvc["spec"]["storageClassName"] == "fast-retain"


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        (None, True),  # Kubernetes' default: RollingUpdate, maxSurge 25% → 1 pod
        ({}, True),
        ({"type": "RollingUpdate"}, True),
        ({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}, True),
        ({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}}, True),
        ({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}, True),
        ({"type": "Recreate"}, False),
        ({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}, False),
        ({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "0%"}}, False),
    ],
)
def test_needs_recreate(strategy: Any, expected: bool) -> None:
    """Only a strategy that lets a second pod start while the old one holds the lease."""
    assert needs_recreate(strategy) is expected


@pytest.mark.parametrize(
    ("grace", "expected"),
    [(None, True), (0, True), (30, True), (39, True), (40, False), (120, False), ("${G}", False)],
)
def test_needs_longer_grace(grace: Any, expected: bool) -> None:
    assert needs_longer_grace(grace) is expected


@pytest.mark.parametrize("command", ["app", "velero-schedule", "storage-classes"])
def test_help_cuts_nothing_at_80_columns(command: str) -> None:
    """rich ends a word wider than its column with "…": a user could not read the default."""
    env = {**os.environ, "COLUMNS": "80"}
    result = subprocess.run(
        [sys.executable, "-m", "statekeeper", "generate", command, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "…" not in result.stdout


def test_strategy_is_a_view_of_the_typed_policy() -> None:
    from statekeeper.errors import PolicyError
    from statekeeper.generate.strategy import strategy_from_policy
    from statekeeper.policy.load import load_policy

    policy = load_policy()
    strategy = strategy_from_policy(policy)
    assert strategy.environment("prd") == policy.environment("production")
    assert strategy.rclone_interval == policy.agent.default_interval == "10m"
    assert strategy.config_dirs == ("/config",)
    assert strategy.known_sqlite_paths("vaultwarden/server:1.32") == ("/data/db.sqlite3",)
    with pytest.raises(PolicyError, match="defines no environments"):
        strategy_from_policy(policy.model_copy(update={"environments": {}}))
