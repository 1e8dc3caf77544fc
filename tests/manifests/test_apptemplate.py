"""bjw-s app-template values read as the objects the chart renders (schema v3 and v4)."""

from __future__ import annotations

from typing import Any

import yaml

from statekeeper.manifests.apptemplate import interpret, is_app_template, schema_major

VALUES = yaml.safe_load(
    """\
defaultPodOptions:
  securityContext: {runAsUser: 568, fsGroup: 568}
controllers:
  sonarr:
    annotations: {reloader.stakater.com/auto: "true"}
    containers:
      app:
        image: {repository: ghcr.io/home-operations/sonarr, tag: 4.0.19}
        env:
          TZ: Europe/Paris
          DB_PATH: {value: /config/sonarr.db}
          API_KEY: {valueFrom: {secretKeyRef: {name: sonarr-secret, key: key}}}
        args: --debug
    initContainers:
      init-db:
        image: {repository: ghcr.io/home-operations/postgres-init, tag: "17"}
  backup:
    type: cronjob
    cronjob: {schedule: "0 3 * * *"}
    containers:
      app:
        image: {repository: rclone/rclone, tag: "1.68"}
  disabled:
    enabled: false
    containers: {app: {image: {repository: x, tag: y}}}
persistence:
  config:
    existingClaim: "{{ .Release.Name }}"
  cache:
    type: persistentVolumeClaim
    storageClass: ceph-block
    accessMode: ReadWriteOnce
    size: 5Gi
    globalMounts:
      - path: /cache
  data:
    size: 1Gi
    accessMode: ReadWriteOnce
    advancedMounts:
      backup:
        app:
          - path: /backup/data
            readOnly: true
  media:
    type: nfs
    server: nas.internal
    path: /mnt/media
    globalMounts:
      - path: /media
  tmp:
    type: emptyDir
  scripts:
    type: configMap
    name: sonarr-scripts
    globalMounts:
      - readOnly: true
"""
)


def by_kind(objects: list[Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o.body["kind"], o.body["metadata"]["name"]): o.body for o in objects}


def mounts(container: dict[str, Any]) -> dict[str, str]:
    return {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}


def test_v4_controllers_containers_and_mounts() -> None:
    objects = by_kind(interpret(VALUES, "sonarr", "media", "4.1.1"))
    assert set(objects) == {
        ("Deployment", "sonarr"),  # identifier equals the release: no suffix
        ("CronJob", "sonarr-backup"),
        ("PersistentVolumeClaim", "sonarr-cache"),
        ("PersistentVolumeClaim", "sonarr-data"),
    }
    deployment = objects[("Deployment", "sonarr")]
    assert deployment["metadata"]["namespace"] == "media"
    assert deployment["metadata"]["annotations"] == {"reloader.stakater.com/auto": "true"}
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"] == {"runAsUser": 568, "fsGroup": 568}
    (app,) = pod["containers"]
    assert app["name"] == "app"
    assert app["image"] == "ghcr.io/home-operations/sonarr:4.0.19"
    assert app["args"] == ["--debug"]
    assert {"name": "DB_PATH", "value": "/config/sonarr.db"} in app["env"]
    assert {"name": "TZ", "value": "Europe/Paris"} in app["env"]
    assert any(e["name"] == "API_KEY" and "valueFrom" in e for e in app["env"])
    # Default mount path /<id>; globalMounts with and without a path; `data` has only
    # advancedMounts for another controller, so it is neither mounted nor a volume here.
    assert mounts(app) == {
        "/config": "config",
        "/cache": "cache",
        "/media": "media",
        "/tmp": "tmp",
        "/scripts": "scripts",
    }
    assert [c["name"] for c in pod["initContainers"]] == ["init-db"]
    assert mounts(pod["initContainers"][0])["/config"] == "config"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert set(volumes) == {"config", "cache", "media", "tmp", "scripts"}
    assert volumes["config"]["persistentVolumeClaim"] == {"claimName": "sonarr"}  # templated
    assert volumes["cache"]["persistentVolumeClaim"] == {"claimName": "sonarr-cache"}
    assert volumes["media"]["nfs"] == {"server": "nas.internal", "path": "/mnt/media"}
    assert volumes["tmp"] == {"name": "tmp", "emptyDir": {}}
    assert volumes["scripts"]["configMap"] == {"name": "sonarr-scripts"}

    cronjob = objects[("CronJob", "sonarr-backup")]
    assert cronjob["spec"]["schedule"] == "0 3 * * *"
    job_pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert mounts(job_pod["containers"][0])["/backup/data"] == "data"
    (data_mount,) = [m for m in job_pod["containers"][0]["volumeMounts"] if m["name"] == "data"]
    assert data_mount["readOnly"] is True
    assert {v["name"] for v in job_pod["volumes"]} == {"config", "cache", "media", "tmp",
                                                       "scripts", "data"}  # fmt: skip

    claim = objects[("PersistentVolumeClaim", "sonarr-cache")]
    assert claim["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "5Gi"}},
        "storageClassName": "ceph-block",
    }
    assert claim["metadata"]["labels"]["app.kubernetes.io/name"] == "sonarr"


def test_single_claim_and_controller_take_the_release_name_in_v4() -> None:
    values = {
        "controllers": {"main": {"containers": {"app": {"image": {"repository": "a"}}}}},
        "persistence": {"config": {"size": "1Gi", "accessMode": "ReadWriteOnce"}},
    }
    names = set(by_kind(interpret(values, "radarr", None, "4.0.0")))
    assert names == {("Deployment", "radarr"), ("PersistentVolumeClaim", "radarr")}


def test_v3_claims_always_get_their_identifier() -> None:
    values = {
        "controllers": {"main": {"containers": {"main": {"image": {"repository": "a"}}}}},
        "persistence": {"config": {"size": "1Gi", "accessMode": "ReadWriteOnce"}},
    }
    names = set(by_kind(interpret(values, "radarr", None, "3.7.3")))
    assert names == {("Deployment", "radarr"), ("PersistentVolumeClaim", "radarr-config")}


def test_statefulset_volume_claim_templates_are_mounted() -> None:
    values = {
        "controllers": {
            "db": {
                "type": "statefulset",
                "containers": {"app": {"image": {"repository": "db", "tag": "1"}}},
                "statefulset": {
                    "volumeClaimTemplates": [
                        {
                            "name": "data",
                            "size": "10Gi",
                            "accessMode": "ReadWriteOnce",
                            "storageClass": "local-path",
                            "globalMounts": [{"path": "/var/lib/db"}],
                        }
                    ]
                },
            }
        }
    }
    (item,) = interpret(values, "db", "db", None)
    body = item.body
    assert body["kind"] == "StatefulSet"
    (template,) = body["spec"]["volumeClaimTemplates"]
    assert template["metadata"]["name"] == "data"
    assert template["spec"]["storageClassName"] == "local-path"
    container = body["spec"]["template"]["spec"]["containers"][0]
    assert mounts(container) == {"/var/lib/db": "data"}


def test_v4_naming_overrides() -> None:
    values = {
        "controllers": {
            "a": {"forceRename": "exact", "containers": {"c": {"image": "x"}}},
            "b": {"suffix": "worker", "containers": {"c": {"image": "x"}}},
        }
    }
    names = {o.body["metadata"]["name"] for o in interpret(values, "app", None, "4.0.0")}
    assert names == {"exact", "app-b-worker"}


def test_chart_detection_and_schema_versions() -> None:
    assert is_app_template("oci://ghcr.io/bjw-s-labs/helm/app-template")
    assert is_app_template("app-template")
    assert not is_app_template("oci://ghcr.io/home-operations/charts/chaski")
    assert schema_major("3.7.3") == 3
    assert schema_major("4.1.1") == 4
    assert schema_major("5.1.0") == 4
    assert schema_major(None) == 4


def test_deployment_strategy_is_the_charts_default_recreate() -> None:
    """The common library writes `strategy: Recreate` for a Deployment unless the values name
    another: SK107 (RWO claim needs Recreate) must not fire on a release that says nothing."""
    values: dict[str, Any] = {
        "controllers": {
            "main": {"containers": {"app": {"image": {"repository": "a"}}}},
            "rolling": {
                "strategy": "RollingUpdate",
                "rollingUpdate": {"surge": 1, "unavailable": 0},
                "containers": {"app": {"image": {"repository": "b"}}},
            },
        },
    }
    objects = by_kind(interpret(values, "demo", "default", "4.1.1"))
    assert objects[("Deployment", "demo-main")]["spec"]["strategy"] == {"type": "Recreate"}
    assert objects[("Deployment", "demo-rolling")]["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
