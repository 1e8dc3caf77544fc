"""Generate a benchmark corpus: N Kubernetes documents shaped like a real homelab GitOps repo.

    python bench/corpus.py OUT_DIR [--docs 10000] [--seed 1]

Layout (what `statekeeper audit` and Checkov both see):

    OUT_DIR/
      base/namespaces.yaml
      base/apps/<app>/kustomization.yaml       (not a Kubernetes object)
      base/apps/<app>/workload.yaml            Deployment or StatefulSet, sidecars + init containers
      base/apps/<app>/storage.yaml             PVCs (multi-document)
      base/apps/<app>/service.yaml
      base/apps/<app>/config.yaml              ConfigMap (a litestream config for SQLite apps)
      base/velero/schedules.yaml               Velero Schedule CRs
      base/velero/values.yaml                  the velero Helm chart's values (`schedules:`)
      base/kustomization.yaml                  lists namespaces, schedules and every app
      overlays/{dev,prod}/kustomization.yaml   base + a storage-class patch

About one app in five breaks a rule (wrong class, bad PVC name, missing sidecar, inline S3
key), so the audit has findings to report. Deterministic for a given seed.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

SQLITE_IMAGES = [
    "vaultwarden/server:1.32.0",
    "ghcr.io/home-assistant/home-assistant:2024.10",
    "lscr.io/linuxserver/sonarr:4.0.9",
    "lscr.io/linuxserver/radarr:5.11.0",
    "ghcr.io/mealie-recipes/mealie:v2.0.0",
    "jellyfin/jellyfin:10.9.11",
]
CONFIG_IMAGES = ["lscr.io/linuxserver/bazarr:1.4.5", "ghcr.io/gethomepage/homepage:v0.9.10"]
PLAIN_IMAGES = ["nginx:1.27", "ghcr.io/stefanprodan/podinfo:6.7.0", "redis:7.4"]
NAMESPACES = ["media", "home", "security", "tools", "data", "monitoring"]


def _container_env(app: str, bad: bool) -> list[dict[str, Any]]:
    key_ref = {"secretKeyRef": {"name": f"{app}-s3", "key": "access-key-id"}}
    env: list[dict[str, Any]] = [
        {"name": "LITESTREAM_ACCESS_KEY_ID", "valueFrom": key_ref},
        {
            "name": "LITESTREAM_SECRET_ACCESS_KEY",
            "valueFrom": {"secretKeyRef": {"name": f"{app}-s3", "key": "secret-access-key"}},
        },
    ]
    if bad:
        env[0] = {"name": "LITESTREAM_ACCESS_KEY_ID", "value": "AKIAEXAMPLEEXAMPLE00"}
    return env


def _workload(
    app: str, ns: str, rng: random.Random, kind: str, broken: str | None
) -> dict[str, Any]:
    sqlite = rng.random() < 0.5
    image = rng.choice(SQLITE_IMAGES if sqlite else CONFIG_IMAGES + PLAIN_IMAGES)
    labels = {"app.kubernetes.io/name": app, "app.kubernetes.io/part-of": "homelab"}
    volumes: list[dict[str, Any]] = [
        {"name": "data", "persistentVolumeClaim": {"claimName": f"{app}-data-pvc"}},
        {"name": "config", "persistentVolumeClaim": {"claimName": f"{app}-config-pvc"}},
        {"name": "litestream-config", "configMap": {"name": f"{app}-litestream"}},
        {"name": "tmp", "emptyDir": {}},
    ]
    main = {
        "name": app,
        "image": image,
        "ports": [{"name": "http", "containerPort": rng.choice([80, 8080, 8096, 9000])}],
        "env": [
            {"name": "TZ", "value": "Europe/Paris"},
            {"name": "DATABASE_URL", "value": "sqlite:///data/db.sqlite3"},
        ],
        "volumeMounts": [
            {"name": "data", "mountPath": "/data"},
            {"name": "config", "mountPath": "/config"},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
        "resources": {
            "requests": {"cpu": "50m", "memory": "128Mi"},
            "limits": {"memory": "512Mi"},
        },
        "livenessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 30},
        "securityContext": {"runAsNonRoot": True, "readOnlyRootFilesystem": False},
    }
    litestream_mounts = [
        {"name": "data", "mountPath": "/data"},
        {
            "name": "litestream-config",
            "mountPath": "/etc/litestream.yml",
            "subPath": "litestream.yml",
        },
    ]
    init = [
        {
            "name": "integrity-check",
            "image": "keinos/sqlite3:3.46.1",
            "command": ["sh", "-c", "sqlite3 /data/db.sqlite3 'PRAGMA integrity_check' || true"],
            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
        },
        {
            "name": "litestream-restore",
            "image": "litestream/litestream:0.3.13",
            "args": ["restore", "-if-db-not-exists", "-if-replica-exists", "/data/db.sqlite3"],
            "volumeMounts": litestream_mounts,
            "env": _container_env(app, False),
        },
    ]
    sidecars = [
        {
            "name": "litestream",
            "image": "litestream/litestream:0.3.13",
            "args": ["replicate"],
            "volumeMounts": litestream_mounts,
            "env": _container_env(app, broken == "inline-key"),
        },
        {
            "name": "rclone",
            "image": "rclone/rclone:1.68",
            "command": [
                "sh",
                "-c",
                "while true; do rclone sync /config s3:b/config; sleep 600; done",
            ],
            "volumeMounts": [{"name": "config", "mountPath": "/config", "readOnly": True}],
        },
    ]
    if broken == "no-sidecar":
        sidecars = sidecars[1:]
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app.kubernetes.io/name": app}},
        "template": {
            "metadata": {
                "labels": labels,
                "annotations": {"checksum/config": f"{rng.getrandbits(64):x}"},
            },
            "spec": {
                "securityContext": {"fsGroup": 1000, "runAsUser": 1000},
                "initContainers": init if sqlite else [],
                "containers": [main, *sidecars],
                "volumes": volumes,
            },
        },
    }
    if kind == "StatefulSet":
        spec["serviceName"] = app
        spec["replicas"] = 1
    else:
        spec["replicas"] = 1
        spec["strategy"] = {"type": "Recreate"}
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": app, "namespace": ns, "labels": labels},
        "spec": spec,
    }


def _pvc(app: str, ns: str, purpose: str, size: str, broken: str | None) -> dict[str, Any]:
    name = f"{app}-{purpose}-pvc" if broken != "pvc-name" else f"{purpose}-{app}"
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": size}},
    }
    if broken != "no-class":
        spec["storageClassName"] = "synelia-iscsi-retain"
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": ns, "labels": {"app.kubernetes.io/name": app}},
        "spec": spec,
    }


def _service(app: str, ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": app, "namespace": ns, "labels": {"app.kubernetes.io/name": app}},
        "spec": {
            "selector": {"app.kubernetes.io/name": app},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }


def _configmap(app: str, ns: str) -> dict[str, Any]:
    config = (
        "dbs:\n"
        "  - path: /data/db.sqlite3\n"
        "    replicas:\n"
        f"      - url: s3://litestream/{app}\n"
        "        endpoint: http://minio.storage.svc:9000\n"
        "        sync-interval: 10s\n"
    )
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{app}-litestream", "namespace": ns},
        "data": {"litestream.yml": config},
    }


def _schedule(ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "velero.io/v1",
        "kind": "Schedule",
        "metadata": {"name": f"daily-{ns}", "namespace": "velero"},
        "spec": {
            "schedule": "0 3 * * *",
            "template": {
                "includedNamespaces": [ns],
                "snapshotVolumes": True,
                "defaultVolumesToFsBackup": True,
                "ttl": "720h0m0s",
            },
        },
    }


class _NoAliasDumper(yaml.SafeDumper):
    """Hand-written GitOps YAML has no anchors: never emit `&id001` for shared dicts."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _dump(path: Path, docs: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.dump_all(docs, Dumper=_NoAliasDumper, sort_keys=False, default_flow_style=False)
    path.write_text(text, encoding="utf-8")


def generate(out: Path, docs: int = 10_000, seed: int = 1) -> int:
    """Write the corpus into `out` (emptied first); returns the number of documents."""
    rng = random.Random(seed)
    if out.exists():
        shutil.rmtree(out)
    written = 0
    namespaces = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": ns, "labels": {"environment": "production"}},
        }
        for ns in [*NAMESPACES, "velero"]
    ]
    _dump(out / "base" / "namespaces.yaml", namespaces)
    written += len(namespaces)
    _dump(out / "base" / "velero" / "schedules.yaml", [_schedule(ns) for ns in NAMESPACES[:-1]])
    written += len(NAMESPACES) - 1
    values = {
        "schedules": {
            ns: {"schedule": "0 3 * * *", "template": {"includedNamespaces": [ns]}}
            for ns in NAMESPACES
        }
    }
    _dump(out / "base" / "velero" / "values.yaml", [values])
    written += 1
    app_dirs: list[str] = []
    index = 0
    while written < docs:
        app = f"app{index:05d}"
        index += 1
        ns = rng.choice(NAMESPACES)
        broken = (
            rng.choice(["no-class", "pvc-name", "no-sidecar", "inline-key"])
            if rng.random() < 0.2
            else None
        )
        kind = "StatefulSet" if rng.random() < 0.3 else "Deployment"
        app_dir = out / "base" / "apps" / app
        objects = [
            ("workload.yaml", [_workload(app, ns, rng, kind, broken)]),
            (
                "storage.yaml",
                [
                    _pvc(app, ns, "data", rng.choice(["10Gi", "20Gi"]), broken),
                    _pvc(app, ns, "config", "1Gi", None),
                ],
            ),
            ("service.yaml", [_service(app, ns)]),
            ("config.yaml", [_configmap(app, ns)]),
        ]
        for name, content in objects:
            _dump(app_dir / name, content)
            written += len(content)
        _dump(app_dir / "kustomization.yaml", [{"resources": [name for name, _ in objects]}])
        app_dirs.append(f"apps/{app}")
    _dump(
        out / "base" / "kustomization.yaml",
        [{"resources": ["namespaces.yaml", "velero/schedules.yaml", *app_dirs]}],
    )
    for env, storage_class in (("dev", "synelia-iscsi-delete"), ("prod", "synelia-iscsi-retain")):
        patch = [{"op": "replace", "path": "/spec/storageClassName", "value": storage_class}]
        _dump(
            out / "overlays" / env / "kustomization.yaml",
            [
                {
                    "apiVersion": "kustomize.config.k8s.io/v1beta1",
                    "kind": "Kustomization",
                    "resources": ["../../base"],
                    "patches": [
                        {
                            "target": {"kind": "PersistentVolumeClaim"},
                            "patch": yaml.safe_dump(patch),
                        }
                    ],
                }
            ],
        )
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    count = generate(args.out, args.docs, args.seed)
    print(f"wrote {count} documents to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
