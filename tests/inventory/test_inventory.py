"""Inventory: apps, environments, detection of SQLite and /config state, Velero schedules."""

from __future__ import annotations

from pathlib import Path

import pytest

from statekeeper.inventory.cron import cron_interval
from statekeeper.inventory.images import image_matches, image_repository
from statekeeper.inventory.model import Inventory, Workload
from statekeeper.inventory.rclone import rclone_syncs, sync_interval
from statekeeper.policy.load import load_policy
from tests.rules.util import audit, fixture, inventory_of


def workload(inv: Inventory, name: str) -> Workload:
    return next(w for w in inv.workloads if w.name == name)


def test_compliant_fixture_detection() -> None:
    inv = inventory_of(fixture("compliant.yaml"))
    vaultwarden = workload(inv, "vaultwarden")
    assert vaultwarden.sqlite
    assert [db.path for db in vaultwarden.sqlite_dbs] == ["/data/db.sqlite3"]
    roles = {c.name: c.role for c in vaultwarden.all_containers}
    assert roles == {
        "integrity-check": "integrity",
        "litestream-restore": "litestream",
        "vaultwarden": "app",
        "litestream": "litestream",
    }
    # the restore init container and the sidecar both read the ConfigMap's litestream.yml
    configs = {c.name: (cfg, p) for c, cfg, p in vaultwarden.litestream_configs}
    assert set(configs) == {"litestream-restore", "litestream"}
    config, path = configs["litestream"]
    assert path == "/etc/litestream.yml"
    assert config is not None and [(db.path, db.s3) for db in config.dbs] == [
        ("/data/db.sqlite3", True)
    ]
    esphome = workload(inv, "esphome")
    assert not esphome.sqlite
    assert esphome.config_paths == ["/config"]
    rclone = next(c for c in esphome.containers if c.role == "rclone")
    assert "rclone sync /config minio:backups/esphome" in rclone.script  # from the ConfigMap
    jellyfin = workload(inv, "jellyfin")
    assert {c.role for c in jellyfin.init_containers} == {"agent-restore", "agent-run"}
    assert [db.path for db in jellyfin.sqlite_dbs] == ["/config/data/library.db"]
    postgres = workload(inv, "postgresql")
    assert [(c.name, c.template_of, c.app) for c in postgres.claim_templates] == [
        ("data", "postgresql", "postgresql")
    ]
    assert not postgres.sqlite and postgres.config_paths == []
    assert {c.name: c.app for c in inv.claims} == {
        "vaultwarden-data-pvc": "vaultwarden",
        "esphome-config-pvc": "esphome",
        "data": "postgresql",
        "jellyfin-config-pvc": "jellyfin",
        "jellyfin-cache-pvc": "jellyfin",
        "jellyfin-logs-pvc": "jellyfin",
    }
    assert sorted(ns for _, ns in inv.namespaces) == [
        "databases", "home", "media", "vaultwarden", "velero",
    ]  # fmt: skip
    assert [(s.name, s.cron, s.included, s.volumes) for s in inv.schedules] == [
        ("daily", "0 3 * * *", ["*"], True)
    ]


APP = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  namespace: {namespace}
  annotations: {annotations}
spec:
  template:
    metadata:
      labels: {{app.kubernetes.io/name: myapp}}
    spec:
      containers:
        - name: main
          image: {image}
          env: {env}
          args: {args}
          volumeMounts:
            - {{name: data, mountPath: /data}}
            - {{name: conf, mountPath: /config}}
      volumes:
        - {{name: data, persistentVolumeClaim: {{claimName: myapp-data-pvc}}}}
        - {{name: conf, {conf}}}
"""


def app(
    *,
    namespace: str = "apps",
    annotations: str = "{}",
    image: str = "ghcr.io/example/app:1.0",
    env: str = "[]",
    args: str = "[]",
    conf: str = "persistentVolumeClaim: {claimName: myapp-config-pvc}",
) -> str:
    return APP.format(
        namespace=namespace, annotations=annotations, image=image, env=env, args=args, conf=conf
    )


@pytest.mark.parametrize(
    ("kwargs", "dbs"),
    [
        ({}, []),
        ({"image": "lscr.io/linuxserver/sonarr:4.0.0"}, ["/config/sonarr.db"]),
        ({"image": "vaultwarden/server:1.32.0-alpine"}, ["/data/db.sqlite3"]),
        ({"image": "ghcr.io/mealie-recipes/mealie:v1"}, []),  # known, /app/data not mounted
        ({"env": "[{name: DATABASE_URL, value: 'sqlite:////data/app.sqlite3'}]"},
         ["/data/app.sqlite3"]),
        ({"args": "['--db=/data/state.db']"}, ["/data/state.db"]),
        ({"args": "['--db=/tmp/state.db']"}, []),  # not on a mounted volume
        ({"annotations": "{statekeeper.io/sqlite: '/data/a.db, /data/b.sqlite'}"},
         ["/data/a.db", "/data/b.sqlite"]),
        ({"image": "lscr.io/linuxserver/sonarr", "annotations": "{statekeeper.io/sqlite: none}"},
         []),
    ],
)  # fmt: skip
def test_sqlite_detection(kwargs: dict[str, str], dbs: list[str]) -> None:
    detected = workload(inventory_of(app(**kwargs)), "app")
    assert [db.path for db in detected.sqlite_dbs] == dbs
    known_without_path = "mealie" in kwargs.get("image", "")
    assert detected.sqlite is (bool(dbs) or known_without_path)


@pytest.mark.parametrize(
    ("kwargs", "paths", "exempt"),
    [
        ({}, ["/config"], None),
        ({"conf": "configMap: {name: settings}"}, [], None),  # read-only input, not state
        ({"conf": "emptyDir: {}"}, [], None),  # lives as long as the pod: nothing to sync
        ({"annotations": "{statekeeper.io/config-path: '/data/conf, /config'}"},
         ["/data/conf", "/config"], None),
        ({"annotations": "{statekeeper.io/config-path: none}"}, [], None),
        ({"annotations": "{statekeeper.io/backup: 'none: rebuilt from git'}"}, ["/config"],
         "rebuilt from git"),
    ],
)  # fmt: skip
def test_config_detection_and_exemption(
    kwargs: dict[str, str], paths: list[str], exempt: str | None
) -> None:
    detected = workload(inventory_of(app(**kwargs)), "app")
    assert detected.config_paths == paths
    assert detected.backup_exempt == exempt


NAMESPACE = """\
apiVersion: v1
kind: Namespace
metadata:
  name: apps
  labels: {environment: prd}
---
"""


def test_environment_resolution_order() -> None:
    policy = load_policy()
    # 4. policy namespace mapping
    mapped = policy.model_copy(update={"namespace_environments": {"apps": "development"}})
    inv = inventory_of(app(), policy=mapped)
    assert workload(inv, "app").environment == "development"
    # 3. namespace label (an alias), over the mapping
    inv = inventory_of(NAMESPACE + app(), policy=mapped)
    assert workload(inv, "app").environment == "production"
    # 2. the overlay, over the label
    inv = inventory_of(NAMESPACE + app(), overlay="overlays/dev", environment="dev")
    assert workload(inv, "app").environment == "development"
    # 1. --env, over everything
    inv = inventory_of(NAMESPACE + app(), env="staging", overlay="overlays/prod",
                       environment="production")  # fmt: skip
    assert workload(inv, "app").environment == "development"


def test_unknown_environment_is_one_note_per_app_never_guessed() -> None:
    text = app() + "---\n" + app().replace("name: app\n", "name: app2\n")
    inv = inventory_of(text)
    assert {w.environment for w in inv.workloads} == {None}
    notes = [n for n in inv.notes if "environment unknown" in n.message]
    assert len(notes) == 1
    assert "app myapp" in notes[0].message
    assert "environment unknown for app myapp (Deployment app and 1 more resource(s)):" in (
        notes[0].message
    )


def test_unknown_environment_note_without_app_names_the_resource_once() -> None:
    pvc = """\
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: mealie-data, namespace: apps}
spec: {storageClassName: x}
"""
    notes = [n for n in inventory_of(pvc).notes if "environment unknown" in n.message]
    assert len(notes) == 1
    assert notes[0].message.startswith(
        "environment unknown for PersistentVolumeClaim mealie-data: storage class"
    )
    assert notes[0].message.count("mealie-data") == 1


def test_app_grouping() -> None:
    pvc = """\
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: myapp-data-pvc, namespace: apps}
spec: {storageClassName: x}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: loose, namespace: apps}
"""
    text = pvc + "---\n" + app()
    inv = inventory_of(text, source_dir="base/fallback", overlay="overlays/dev")
    assert workload(inv, "app").app == "myapp"  # pod template label
    assert inv.claims[0].app == "myapp"  # from the workload mounting it
    cm = next(r for r in inv.resources if r.kind == "ConfigMap")
    assert inv.app(cm) == "fallback"  # the kustomize app directory
    assert set(inv.apps) == {"myapp"}


UNLABELLED_WEB = """\
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: web-config-pvc, namespace: web}
spec:
  storageClassName: synelia-iscsi-retain
  resources: {requests: {storage: 1Gi}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: web}
spec:
  template:
    spec:
      containers:
        - name: web
          image: nginx:1.27
          volumeMounts: [{name: cfg, mountPath: /etc/web}]
      volumes:
        - name: cfg
          persistentVolumeClaim: {claimName: web-config-pvc}
"""


@pytest.mark.parametrize("source_dir", [".", "manifests", "/tmp/somewhere"])
def test_plain_directory_is_no_app_but_a_mounting_workload_name_is(source_dir: str) -> None:
    """A plain file's directory (no kustomization there) names no app; a claim named
    `<workload>-…` and mounted by that workload belongs to it, and so does the workload."""
    inv = inventory_of(UNLABELLED_WEB, source_dir=source_dir)
    assert [c.app for c in inv.claims] == ["web"]
    assert workload(inv, "web").app == "web"
    assert set(inv.apps) == {"web"}
    assert "SK103" not in {f.rule for f in audit(UNLABELLED_WEB, env="prod",
                                                   source_dir=source_dir).findings}  # fmt: skip


def test_unmounted_claim_in_a_plain_file_has_no_app() -> None:
    claim_only = UNLABELLED_WEB.split("---")[0].replace("web-config-pvc", "config")
    inv = inventory_of(claim_only, source_dir=".")
    assert [c.app for c in inv.claims] == [None]
    (finding,) = audit(claim_only, env="prod", only=["SK103"], source_dir=".").findings
    assert finding.app is None
    assert "app '.'" not in finding.message
    assert finding.message.endswith("e.g. <app>-config-pvc where <app> is the app's name")


def test_mounting_workload_labels_win_over_its_name() -> None:
    labelled = UNLABELLED_WEB.replace(
        "  template:\n    spec:", "  template:\n    metadata: {labels: {app: site}}\n    spec:"
    )
    inv = inventory_of(labelled, source_dir=".")
    assert [c.app for c in inv.claims] == ["site"]
    (finding,) = audit(labelled, env="prod", only=["SK103"], source_dir=".").findings
    assert "app 'site'" in finding.message


def test_directory_with_a_kustomization_is_the_app(tmp_path: Path) -> None:
    app_dir = tmp_path / "apps" / "blog"
    app_dir.mkdir(parents=True)
    claim_only = UNLABELLED_WEB.split("---")[0]
    assert [c.app for c in inventory_of(claim_only, source_dir=str(app_dir)).claims] == [None]
    (app_dir / "kustomization.yaml").write_text("resources: [pvc.yaml]\n")
    assert [c.app for c in inventory_of(claim_only, source_dir=str(app_dir)).claims] == ["blog"]


def test_overlay_directory_is_not_an_app() -> None:
    claim_only = UNLABELLED_WEB.split("---")[0]
    inv = inventory_of(claim_only, source_dir="overlays/prod", overlay="overlays/prod")
    assert [c.app for c in inv.claims] == [None]


def test_velero_helm_values_and_helmrelease() -> None:
    values = """\
configuration: {backupStorageLocation: []}
schedules:
  nightly:
    schedule: "@daily"
    template: {includedNamespaces: [a, b], snapshotVolumes: false, defaultVolumesToFsBackup: true}
  weekly:
    disabled: true
    schedule: "0 0 * * 0"
---
replicaCount: 1
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: velero, namespace: velero}
spec:
  values:
    schedules:
      all: {schedule: "0 */6 * * *", template: {excludedNamespaces: [scratch],
            includedResources: [deployments]}}
"""
    inv = inventory_of(values)
    got = [(s.name, s.source, s.included, s.excluded, s.volumes, s.disabled) for s in inv.schedules]
    assert got == [
        ("all", "helm values", ["*"], ["scratch"], False, False),
        ("nightly", "helm values", ["a", "b"], [], True, False),
        ("weekly", "helm values", ["*"], [], True, True),
    ]
    assert [n.message for n in inv.notes] == ["skipped: not a Kubernetes object"]


@pytest.mark.parametrize(
    ("cron", "seconds"),
    [
        ("0 3 * * *", 86400),
        ("@daily", 86400),
        ("CRON_TZ=Europe/Paris 30 2 * * *", 86400),
        ("0 */6 * * *", 6 * 3600),
        ("0 1,13 * * *", 12 * 3600),
        ("*/15 * * * *", 900),
        ("0 3 * * 0", 7 * 86400),
        ("0 3 * * 0-6", 86400),
        ("0 3 1 * *", 31 * 86400),
        ("@weekly", 7 * 86400),
        ("@every 12h", 12 * 3600),
        ("0 0 3 * * *", 86400),
        ("not a cron", None),
    ],
)
def test_cron_interval(cron: str, seconds: float | None) -> None:
    assert cron_interval(cron) == seconds


@pytest.mark.parametrize(
    ("image", "repo"),
    [
        ("lscr.io/linuxserver/sonarr:4.0@sha256:abc", "linuxserver/sonarr"),
        ("postgres:16", "postgres"),
        ("docker.io/library/postgres", "postgres"),
        ("localhost:5000/team/app:1", "team/app"),
        ("ghcr.io/mealie-recipes/mealie:v1.12.0", "mealie-recipes/mealie"),
    ],
)
def test_image_repository(image: str, repo: str) -> None:
    assert image_repository(image) == repo


def test_image_matches() -> None:
    assert image_matches("vaultwarden/server:1.32.0", ["vaultwarden/server"])
    assert not image_matches("example/server:1", ["vaultwarden/server"])
    assert image_matches("ghcr.io/hotio/sonarr:release", ["sonarr"])
    assert not image_matches("ghcr.io/hotio/sonarr-exporter", ["sonarr"])
    assert image_matches(
        "ghcr.io/statekeeper/statekeeper:0.1.0", ["ghcr.io/statekeeper/statekeeper"]
    )


RCLONE = """\
apiVersion: v1
kind: Pod
metadata: {{name: p}}
spec:
  containers:
    - name: rclone
      image: rclone/rclone
      command: [sh, -c]
      args: [{script!r}]
      env: {env}
      volumeMounts: [{{name: c, mountPath: /config}}]
  volumes: [{{name: c, emptyDir: {{}}}}]
"""


@pytest.mark.parametrize(
    ("script", "env", "seconds", "source"),
    [
        ("while true; do rclone sync /config s3:b/p; sleep 600; done", "[]", 600, "sleep 600"),
        ("while :; do rclone copy /config r:b; sleep 15m; done", "[]", 900, "sleep 15m"),
        ("while :; do rclone sync /config r:b; sleep $PERIOD; done",
         "[{name: PERIOD, value: '5m'}]", 300, "sleep $PERIOD (5m)"),
        ("rclone sync /config r:b", "[{name: SYNC_INTERVAL, value: '10m'}]", 600,
         "env SYNC_INTERVAL=10m"),
        ("rclone sync /config r:b", "[{name: CRON, value: '*/10 * * * *'}]", 600,
         "env CRON='*/10 * * * *'"),
        ("rclone sync /config r:b", "[]", None, "no interval found"),
    ],
)  # fmt: skip
def test_sync_interval(script: str, env: str, seconds: float | None, source: str) -> None:
    inv = inventory_of(RCLONE.format(script=script, env=env))
    container = inv.workloads[0].containers[0]
    assert container.role == "rclone"
    assert sync_interval(container, load_policy()) == (seconds, source)
    (sync,) = rclone_syncs(container, load_policy())
    assert sync.source == "/config"


def test_env_not_in_policy_is_a_note() -> None:
    inv = inventory_of(app(), env="moon")
    assert workload(inv, "app").environment == "moon"
    assert any("--env 'moon' is not an environment of the policy" in n.message for n in inv.notes)
