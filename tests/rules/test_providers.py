"""Backup providers and the evidence SQLite/config/sizing rules decide by.

One compliant and one non-compliant case per built-in provider (statekeeper's agent and plain
litestream are also covered by test_rules.py's compliant cluster), per evidence kind, and for a
provider a user declares in their policy. Each case pins the exact findings of the backup rules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from statekeeper.findings import Severity
from statekeeper.policy.load import load_policy
from tests.rules.util import audit, found, inventory_of

BACKUP_RULES = ["SK201", "SK202", "SK203", "SK204", "SK301", "SK302"]
CREDS = """\
            - name: AWS_ACCESS_KEY_ID
              valueFrom: {secretKeyRef: {name: dataangel-credentials, key: access-key}}
            - name: AWS_SECRET_ACCESS_KEY
              valueFrom: {secretKeyRef: {name: dataangel-credentials, key: secret-key}}
"""


def deployment(
    *,
    annotations: dict[str, str] | None = None,
    app_env: list[dict[str, Any]] | None = None,
    init: list[dict[str, Any]] | None = None,
    sidecars: list[dict[str, Any]] | None = None,
    image: str = "ghcr.io/mealie-recipes/mealie:v1.12.0",
    mounts: list[dict[str, Any]] | None = None,
    volumes: list[dict[str, Any]] | None = None,
    env_from: list[dict[str, Any]] | None = None,
) -> str:
    """A production Deployment `app` (namespace `apps`) and its claims, as YAML."""
    app: dict[str, Any] = {
        "name": "app",
        "image": image,
        "volumeMounts": mounts or [{"name": "data", "mountPath": "/app/data"}],
    }
    if app_env:
        app["env"] = app_env
    if env_from:
        app["envFrom"] = env_from
    template: dict[str, Any] = {
        "metadata": {"labels": {"app": "app"}},
        "spec": {
            "initContainers": init or [],
            "containers": [app, *(sidecars or [])],
            "volumes": volumes
            or [{"name": "data", "persistentVolumeClaim": {"claimName": "app-data-pvc"}}],
        },
    }
    if annotations:
        template["metadata"]["annotations"] = annotations
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "app", "namespace": "apps", "labels": {"app": "app"}},
        "spec": {"strategy": {"type": "Recreate"}, "template": template},
    }
    return yaml.safe_dump(body, sort_keys=False)


def backup_findings(text: str, **kwargs: Any) -> list[tuple[str, str, str]]:
    return found(audit(text, env="production", only=BACKUP_RULES, **kwargs))


def messages(text: str) -> dict[str, str]:
    return {f.rule: f.message for f in audit(text, env="production", only=BACKUP_RULES).findings}


DEP = "Deployment"

# --- DataAngel (github.com/truxonline/dataAngel: README "Architecture (v0.2.0+)" and
# DEPLOYMENT.md): DATA_GUARD_* variables, fed from dataangel.io/* annotations by fieldRef.


def _from_annotation(var: str, annotation: str) -> dict[str, Any]:
    return {
        "name": var,
        "valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{annotation}']"}},
    }


def dataangel(
    *,
    command: str = "./dataangel",
    native: bool = True,
    with_fs: bool = True,
    startup_probe: bool = True,
) -> dict[str, Any]:
    env = [
        _from_annotation("DATA_GUARD_BUCKET", "dataangel.io/bucket"),
        _from_annotation("DATA_GUARD_SQLITE_PATHS", "dataangel.io/sqlite-paths"),
        _from_annotation("DATA_GUARD_S3_ENDPOINT", "dataangel.io/s3-endpoint"),
        {"name": "DATA_GUARD_DEPLOYMENT_NAME", "value": "app"},
        *yaml.safe_load(CREDS),
    ]
    if with_fs:
        env += [
            _from_annotation("DATA_GUARD_FS_PATHS", "dataangel.io/fs-paths"),
            _from_annotation("DATA_GUARD_RCLONE_INTERVAL", "dataangel.io/rclone-interval"),
        ]
    container: dict[str, Any] = {
        "name": "dataangel",
        "image": "charchess/dataangel:0.4.0",
        "command": [command],
        "env": env,
        "volumeMounts": [
            {"name": "data", "mountPath": "/app/data"},
            {"name": "config", "mountPath": "/config"},
        ],
    }
    if native:
        container["restartPolicy"] = "Always"
    if startup_probe:
        container["startupProbe"] = {"httpGet": {"path": "/ready", "port": 9090}}
    return container


DA_ANNOTATIONS = {
    "dataangel.io/bucket": "backups",
    "dataangel.io/sqlite-paths": "/app/data/mealie.db",
    "dataangel.io/fs-paths": "/config",
    "dataangel.io/rclone-interval": "600s",
    "dataangel.io/s3-endpoint": "http://minio.minio.svc:9000",
}
DA_MOUNTS = [
    {"name": "data", "mountPath": "/app/data"},
    {"name": "config", "mountPath": "/config"},
]
DA_VOLUMES = [
    {"name": "data", "persistentVolumeClaim": {"claimName": "app-data-pvc"}},
    {"name": "config", "persistentVolumeClaim": {"claimName": "app-config-pvc"}},
]


def da_app(annotations: dict[str, str] | None = None, **kwargs: Any) -> str:
    return deployment(
        annotations=DA_ANNOTATIONS if annotations is None else annotations,
        mounts=DA_MOUNTS,
        volumes=DA_VOLUMES,
        **kwargs,
    )


def test_dataangel_native_sidecar_covers_every_tier() -> None:
    assert backup_findings(da_app(init=[dataangel()])) == []


def test_dataangel_split_init_and_sidecar_form_is_compliant() -> None:
    init = dataangel(command="./init", native=False)
    side = dataangel(command="./sidecar", native=False)
    assert backup_findings(da_app(init=[init], sidecars=[side])) == []


def test_dataangel_sidecar_alone_does_not_restore() -> None:
    side = dataangel(command="./sidecar", native=False)
    assert backup_findings(da_app(sidecars=[side])) == [
        ("SK202", DEP, "app"),
        ("SK203", DEP, "app"),
    ]


def test_dataangel_covering_another_database_is_named() -> None:
    annotations = {**DA_ANNOTATIONS, "dataangel.io/sqlite-paths": "/app/data/other.db"}
    text = da_app(annotations, init=[dataangel()])
    assert backup_findings(text) == [
        ("SK201", DEP, "app"),
        ("SK202", DEP, "app"),
        ("SK203", DEP, "app"),
    ]
    expected = (
        "database /app/data/mealie.db is not streamed by dataangel container 'dataangel': it "
        "lists /app/data/other.db (annotation dataangel.io/sqlite-paths (env "
        "DATA_GUARD_SQLITE_PATHS))"
    )
    assert messages(text)["SK201"] == expected


def test_dataangel_without_fs_paths_leaves_config_unsynced() -> None:
    annotations = {k: v for k, v in DA_ANNOTATIONS.items() if "fs-paths" not in k}
    text = da_app(annotations, init=[dataangel()])
    assert backup_findings(text) == [("SK301", DEP, "app")]


def test_dataangel_default_interval_is_an_sk302_info() -> None:
    # DATA_GUARD_RCLONE_INTERVAL defaults to 60s (cmd/dataangel/config.go): more often than
    # the strategy's 5-15 min.
    annotations = {k: v for k, v in DA_ANNOTATIONS.items() if "interval" not in k}
    report = audit(da_app(annotations, init=[dataangel()]), env="production", only=BACKUP_RULES)
    (finding,) = report.findings
    assert (finding.rule, finding.severity) == ("SK302", Severity.INFO)
    assert "every 1 min (dataangel default 60s)" in finding.message
    assert "more S3 requests than needed" in finding.message


def test_dataangel_too_slow_interval_is_an_sk302_error() -> None:
    annotations = {**DA_ANNOTATIONS, "dataangel.io/rclone-interval": "1h"}
    report = audit(da_app(annotations, init=[dataangel()]), env="production", only=BACKUP_RULES)
    (finding,) = report.findings
    assert (finding.rule, finding.severity) == ("SK302", Severity.ERROR)
    assert "every 60 min (annotation dataangel.io/rclone-interval" in finding.message


def test_dataangel_native_sidecar_without_startup_probe_gets_a_note() -> None:
    inventory = inventory_of(da_app(init=[dataangel(startup_probe=False)]), env="production")
    assert any("has no startupProbe" in n.message for n in inventory.notes)
    inventory = inventory_of(da_app(init=[dataangel()]), env="production")
    assert not any("startupProbe" in n.message for n in inventory.notes)


def test_dataangel_provider_alone_makes_an_unknown_image_a_sqlite_app() -> None:
    text = da_app(init=[dataangel()], image="ghcr.io/example/app:1")
    inventory = inventory_of(text, env="production")
    (workload,) = inventory.workloads
    assert workload.sqlite
    assert [db.path for db in workload.sqlite_dbs] == ["/app/data/mealie.db"]
    assert backup_findings(text) == []


# --- plain rclone: native sidecar, and a CronJob mounting the same claim


RCLONE = {
    "name": "rclone",
    "image": "rclone/rclone:1.68.1",
    "command": ["/bin/sh", "-c"],
    "args": ["while true; do rclone sync /config minio:backups/app; sleep 600; done"],
    "volumeMounts": [{"name": "config", "mountPath": "/config"}],
}
CONFIG_ONLY = {
    "image": "lscr.io/linuxserver/syncthing:1.27.12",
    "mounts": [{"name": "config", "mountPath": "/config"}],
    "volumes": [{"name": "config", "persistentVolumeClaim": {"claimName": "app-config-pvc"}}],
}


def test_rclone_native_sidecar_is_compliant() -> None:
    assert (
        backup_findings(deployment(init=[{**RCLONE, "restartPolicy": "Always"}], **CONFIG_ONLY))
        == []
    )


def test_rclone_regular_init_container_is_not_a_sync() -> None:
    assert backup_findings(deployment(init=[RCLONE], **CONFIG_ONLY)) == [("SK301", DEP, "app")]


def cronjob(claim: str, schedule: str = "*/10 * * * *") -> str:
    body = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "app-config-backup", "namespace": "apps"},
        "spec": {
            "schedule": schedule,
            "jobTemplate": {
                "spec": {
                    "template": {
                        "spec": {
                            "restartPolicy": "OnFailure",
                            "containers": [
                                {
                                    "name": "rclone",
                                    "image": "rclone/rclone:1.68.1",
                                    "args": ["sync", "/config", "minio:backups/app"],
                                    "volumeMounts": [{"name": "config", "mountPath": "/config"}],
                                }
                            ],
                            "volumes": [
                                {"name": "config", "persistentVolumeClaim": {"claimName": claim}}
                            ],
                        }
                    }
                }
            },
        },
    }
    return yaml.safe_dump(body, sort_keys=False)


def test_rclone_cronjob_on_the_same_claim_syncs_config() -> None:
    text = deployment(**CONFIG_ONLY) + "---\n" + cronjob("app-config-pvc")
    assert backup_findings(text) == []


def test_rclone_cronjob_on_another_claim_does_not() -> None:
    text = deployment(**CONFIG_ONLY) + "---\n" + cronjob("other-config-pvc")
    assert backup_findings(text) == [("SK301", DEP, "app")]


def test_rclone_cronjob_running_hourly_is_sk302() -> None:
    text = deployment(**CONFIG_ONLY) + "---\n" + cronjob("app-config-pvc", "0 * * * *")
    assert backup_findings(text) == [("SK302", DEP, "app")]
    assert "CronJob 'app-config-backup' syncs /config every 60 min" in messages(text)["SK302"]


# --- plain litestream as a native sidecar (the regular form is in test_rules.py)


def test_litestream_native_sidecar_counts_as_the_replicator() -> None:
    integrity = {
        "name": "integrity-check",
        "image": "keinos/sqlite3:3.46.1",
        "command": ["sh", "-c", "sqlite3 /app/data/mealie.db 'PRAGMA integrity_check'"],
        "volumeMounts": [{"name": "data", "mountPath": "/app/data"}],
    }
    restore = {
        "name": "restore",
        "image": "litestream/litestream:0.5.2",
        "args": [
            "restore",
            "-if-db-not-exists",
            "-if-replica-exists",
            "-o",
            "/app/data/mealie.db",
            "s3://backups/app/mealie.db",
        ],
        "volumeMounts": [{"name": "data", "mountPath": "/app/data"}],
    }
    replicate = {
        "name": "litestream",
        "image": "litestream/litestream:0.5.2",
        "args": ["replicate", "/app/data/mealie.db", "s3://backups/app/mealie.db"],
        "restartPolicy": "Always",
        "volumeMounts": [{"name": "data", "mountPath": "/app/data"}],
    }
    assert backup_findings(deployment(init=[integrity, restore, replicate])) == []
    no_replicator = deployment(init=[integrity, restore])
    assert backup_findings(no_replicator) == [("SK201", DEP, "app")]


# --- statekeeper's agent read as a provider


def agent(args: str, paths: str, native: bool = False) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": f"statekeeper-{args.split()[-1]}",
        "image": "ghcr.io/statekeeper/statekeeper:0.1.0",
        "args": args.split(),
        "env": [{"name": "STATEKEEPER_SQLITE_PATHS", "value": paths}],
        "volumeMounts": [{"name": "data", "mountPath": "/app/data"}],
    }
    if native:
        container["restartPolicy"] = "Always"
    return container


def test_agent_covers_the_databases_it_lists() -> None:
    good = deployment(
        init=[agent("agent restore", "/app/data/mealie.db"),
              agent("agent run", "/app/data/mealie.db", native=True)]
    )  # fmt: skip
    assert backup_findings(good) == []
    # the run sidecar without the restore init container: streamed, never restored
    only_run = deployment(init=[agent("agent run", "/app/data/mealie.db", native=True)])
    assert backup_findings(only_run) == [("SK202", DEP, "app"), ("SK203", DEP, "app")]


# --- a provider declared by the user


USER_POLICY = """\
backup:
  providers:
    - name: sqlite-guard
      containers:
        - {images: [example/sqlite-guard], tiers: [integrity-check, restore-on-start,
                                                    sqlite-stream]}
      sqlite_paths: [{arg: --db}]
"""


def test_user_declared_provider(tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(USER_POLICY, encoding="utf-8")
    policy = load_policy(policy_file)
    guard = {
        "name": "guard",
        "image": "ghcr.io/example/sqlite-guard:2",
        "args": ["--db", "/app/data/mealie.db"],
        "restartPolicy": "Always",
        "startupProbe": {"exec": {"command": ["true"]}},
        "volumeMounts": [{"name": "data", "mountPath": "/app/data"}],
    }
    assert backup_findings(deployment(init=[guard]), policy=policy) == []
    other = {**guard, "args": ["--db", "/app/data/other.db"]}
    assert backup_findings(deployment(init=[other]), policy=policy) == [
        ("SK201", DEP, "app"),
        ("SK202", DEP, "app"),
        ("SK203", DEP, "app"),
    ]
    # the built-in providers stay unless the user's list replaces them: here it does
    assert [p.name for p in policy.backup.providers] == ["sqlite-guard"]


def test_provider_sources_need_exactly_one_kind(tmp_path: Path) -> None:
    from statekeeper.errors import PolicyError

    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(
        USER_POLICY.replace("{arg: --db}", "{arg: --db, env: DB}"), encoding="utf-8"
    )
    with pytest.raises(PolicyError, match="exactly one of env, annotation, arg"):
        load_policy(policy_file)


# --- evidence: is it really SQLite?

VAULTWARDEN = {
    "image": "vaultwarden/server:1.32.0",
    "mounts": [{"name": "data", "mountPath": "/data"}],
}


@pytest.mark.parametrize(
    ("env", "env_from", "evidence"),
    [
        ([{"name": "DATABASE_URL", "value": "postgresql://vw:hunter2@pg.databases:5432/vw"}],
         None, "env DATABASE_URL=postgresql://… (server database)"),
        ([{"name": "DATABASE_URL", "value": "mysql://vw@mariadb/vw"}], None,
         "env DATABASE_URL=mysql://…"),
        ([{"name": "MEALIE_DB_TYPE", "value": "postgres"}], None, "env MEALIE_DB_TYPE=postgres"),
        ([{"name": "DB_ENGINE", "value": "postgresql"}], None, "env DB_ENGINE=postgresql"),
        ([{"name": "APP_DATABASE_DIALECT", "value": "mysql"}], None,
         "env APP_DATABASE_DIALECT=mysql"),
        ([{"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "vw-postgres-url",
                                                                  "key": "url"}}}],
         None, "env DATABASE_URL from Secret 'vw-postgres-url'"),
        (None, [{"secretRef": {"name": "vaultwarden-postgres"}}],
         "envFrom Secret 'vaultwarden-postgres'"),
    ],
)  # fmt: skip
def test_server_database_evidence_means_no_sqlite_rules(
    env: list[dict[str, Any]] | None, env_from: list[dict[str, Any]] | None, evidence: str
) -> None:
    text = deployment(app_env=env, env_from=env_from, **VAULTWARDEN)
    assert backup_findings(text) == []
    inventory = inventory_of(text, env="production")
    (note,) = [n.message for n in inventory.notes if "not judged as a SQLite app" in n.message]
    assert evidence in note
    assert "hunter2" not in note  # a URL's password is never repeated


@pytest.mark.parametrize(
    "env",
    [
        [{"name": "DATABASE_URL", "value": "/data/db.sqlite3"}],
        [{"name": "DATABASE_URL", "value": "sqlite:////data/db.sqlite3"}],
        [{"name": "DB_ENGINE", "value": "sqlite"}],
        None,
    ],
)
def test_sqlite_configured_app_is_judged(env: list[dict[str, Any]] | None) -> None:
    text = deployment(app_env=env, **VAULTWARDEN)
    assert backup_findings(text) == [
        ("SK201", DEP, "app"),
        ("SK202", DEP, "app"),
        ("SK203", DEP, "app"),
    ]


def test_database_url_from_an_unreadable_reference_is_a_note_not_an_error() -> None:
    env = [{"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "vw", "key": "url"}}}]
    text = deployment(app_env=env, **VAULTWARDEN)
    assert backup_findings(text) == []
    notes = [n.message for n in inventory_of(text, env="production").notes]
    assert any(
        "env DATABASE_URL comes from secretKeyRef 'vw': cannot tell whether the app uses SQLite"
        in n
        for n in notes
    ), notes


def test_config_on_empty_dir_needs_no_sync() -> None:
    ephemeral = {**CONFIG_ONLY, "volumes": [{"name": "config", "emptyDir": {}}]}
    assert backup_findings(deployment(**ephemeral)) == []
    assert backup_findings(deployment(**CONFIG_ONLY)) == [("SK301", DEP, "app")]
    assert "mounts /config but no rclone sidecar or backup provider syncs it to S3" in messages(
        deployment(**CONFIG_ONLY)
    ).get("SK301", "")


def test_sqlite_messages_name_their_evidence() -> None:
    text = deployment(
        app_env=[{"name": "DATABASE_URL", "value": "/data/db.sqlite3"}], **VAULTWARDEN
    )
    assert messages(text)["SK201"].startswith("SQLite app app (known image vaultwarden/server")


# --- evidence: sizing categories


def claim_yaml(name: str, size: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": "apps", "labels": {"app": "app"}},
            "spec": {
                "storageClassName": "synelia-iscsi-retain",
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": size}},
            },
        }
    )


def test_a_cache_of_a_non_media_app_is_not_a_media_cache() -> None:
    text = (
        claim_yaml("app-cache-pvc", "1Gi")
        + "---\n"
        + deployment(
            image="ghcr.io/home-assistant/home-assistant:2024.10",
            mounts=[{"name": "cache", "mountPath": "/config/cache"}],
            volumes=[{"name": "cache", "persistentVolumeClaim": {"claimName": "app-cache-pvc"}}],
        )
    )
    assert found(audit(text, env="production", only=["SK104"])) == []


def test_a_media_server_cache_is_judged_and_says_why() -> None:
    text = (
        claim_yaml("app-cache-pvc", "1Gi")
        + "---\n"
        + deployment(
            image="jellyfin/jellyfin:10.9.11",
            mounts=[{"name": "cache", "mountPath": "/cache"}],
            volumes=[{"name": "cache", "persistentVolumeClaim": {"claimName": "app-cache-pvc"}}],
        )
    )
    (finding,) = audit(text, env="production", only=["SK104"]).findings
    assert finding.message == (
        "requests 1Gi; Media Cache (media-cache: purpose 'cache'; mounted at /cache by "
        "jellyfin/jellyfin) needs 50Gi–100Gi"
    )
    # the mount path is evidence too, without a purpose word in the name
    renamed = text.replace("app-cache-pvc", "app-transcodes-pvc").replace("/cache", "/transcode")
    assert found(audit(renamed, env="production", only=["SK104"])) == [
        ("SK104", "PersistentVolumeClaim", "app-transcodes-pvc")
    ]


# --- SK402 on Velero schedules: CRs, chart values, and where a VolumeSnapshotLocation lives

SCHEDULE_NO_SNAPSHOT_FLAG = """\
apiVersion: velero.io/v1
kind: Schedule
metadata: {name: daily, namespace: velero}
spec:
  schedule: "0 3 * * *"
  template:
    includedNamespaces: ["*"]
    ttl: 720h0m0s
"""
VSL = """\
apiVersion: velero.io/v1
kind: VolumeSnapshotLocation
metadata: {name: default, namespace: velero}
spec: {provider: csi}
"""
HELM_RELEASE = """\
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {{name: velero, namespace: velero}}
spec:
  chart: {{spec: {{chart: velero}}}}
  values:
    snapshotsEnabled: {snapshots}
    configuration:
      volumeSnapshotLocation:
        - {{name: default, provider: csi}}
    schedules:
      nightly:
        schedule: "0 2 * * *"
        template:
          ttl: {ttl}
"""


def velero_findings(text: str) -> list[tuple[str, str, str]]:
    return found(audit(text, env="production", only=["SK402"]))


def test_sk402_unset_snapshots_need_a_location() -> None:
    assert velero_findings(SCHEDULE_NO_SNAPSHOT_FLAG) == [("SK402", "Schedule", "daily")]
    assert velero_findings(SCHEDULE_NO_SNAPSHOT_FLAG + "---\n" + VSL) == []


def test_sk402_on_chart_values() -> None:
    good = HELM_RELEASE.format(snapshots="true", ttl="240h")
    assert velero_findings(good) == []
    # snapshots disabled in the chart: its location does not count
    no_snapshots = HELM_RELEASE.format(snapshots="false", ttl="240h")
    assert velero_findings(no_snapshots) == [("SK402", "Schedule", "nightly")]
    short_ttl = HELM_RELEASE.format(snapshots="true", ttl="6h")
    (finding,) = audit(short_ttl, env="production", only=["SK402"]).findings
    assert "ttl 6h is shorter than its interval (24h, '0 2 * * *')" in finding.message


INJECTED_POLICY = """\
backup:
  providers:
    - name: injected-guard
      injected_by_annotations: [example.com/inject-guard]
      injected_tiers: [sqlite-stream, integrity-check, restore-on-start, file-sync]
      sqlite_paths: [{annotation: example.com/guard-dbs}]
"""


def test_provider_injected_by_an_admission_webhook(tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(INJECTED_POLICY, encoding="utf-8")
    policy = load_policy(policy_file)
    injected = {"example.com/inject-guard": "true", "example.com/guard-dbs": "/app/data/mealie.db"}
    assert backup_findings(deployment(annotations=injected), policy=policy) == []
    # without the annotation nothing is injected: the built-in rules apply
    assert backup_findings(deployment(), policy=policy) == [
        ("SK201", DEP, "app"),
        ("SK202", DEP, "app"),
        ("SK203", DEP, "app"),
    ]


def test_builtin_policy_lists_the_four_providers() -> None:
    policy = load_policy()
    assert [p.name for p in policy.backup.providers] == [
        "statekeeper-agent",
        "litestream",
        "rclone",
        "dataangel",
    ]


def test_old_image_keys_say_where_they_moved(tmp_path: Path) -> None:
    from statekeeper.errors import PolicyError

    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text("tiers:\n  sqlite:\n    litestream_images: [litestream]\n")
    with pytest.raises(PolicyError, match=r"litestream_images moved to backup\.providers"):
        load_policy(policy_file)
