"""Every rule on a compliant and a non-compliant fixture.

`fixtures/compliant.yaml` is a production cluster that follows the whole strategy: all rules
together find nothing there. Each non-compliant case breaks exactly one thing in a copy of it and
pins the exact set of findings all rules then report.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml

from statekeeper.rules.base import all_rules
from tests.rules.util import audit, fixture, found

Docs = list[dict[str, Any]]


def compliant_docs() -> Docs:
    return [d for d in yaml.safe_load_all(fixture("compliant.yaml")) if d]


def doc(docs: Docs, kind: str, name: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def pod(docs: Docs, name: str, kind: str = "Deployment") -> dict[str, Any]:
    spec: dict[str, Any] = doc(docs, kind, name)["spec"]["template"]["spec"]
    return spec


def container(docs: Docs, workload: str, name: str) -> dict[str, Any]:
    spec = pod(docs, workload)
    every = [*spec.get("initContainers", []), *spec["containers"]]
    return next(c for c in every if c["name"] == name)


def run(docs: Docs, **kwargs: Any) -> list[tuple[str, str, str]]:
    return found(audit(yaml.safe_dump_all(docs), **kwargs))


def test_compliant_cluster_has_no_findings() -> None:
    report = audit(fixture("compliant.yaml"))
    assert report.findings == []
    assert report.suppressed == []
    assert report.apps == {
        "vaultwarden": {"production"},
        "esphome": {"production"},
        "postgresql": {"production"},
        "jellyfin": {"production"},
    }


def _set(path: list[Any], value: Any) -> Callable[[Docs], None]:
    def apply(docs: Docs) -> None:
        target: Any = doc(docs, path[0], path[1])
        for key in path[2:-1]:
            target = target[key]
        if value is None:
            del target[path[-1]]
        else:
            target[path[-1]] = value

    return apply


def _sk101_rwo_on_shared(docs: Docs) -> None:
    doc(docs, "PersistentVolumeClaim", "jellyfin-logs-pvc")["spec"]["accessModes"] = [
        "ReadWriteOnce"
    ]


def _sk103_rename(docs: Docs) -> None:
    doc(docs, "PersistentVolumeClaim", "esphome-config-pvc")["metadata"]["name"] = "esphome-conf"
    pod(docs, "esphome")["volumes"][0]["persistentVolumeClaim"]["claimName"] = "esphome-conf"


def _sk103_template(docs: Docs) -> None:
    sts = doc(docs, "StatefulSet", "postgresql")
    sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] = "data-pvc"
    pod(docs, "postgresql", "StatefulSet")["containers"][0]["volumeMounts"][0]["name"] = "data-pvc"


def _sk103_sts_name(docs: Docs) -> None:
    doc(docs, "StatefulSet", "postgresql")["metadata"]["name"] = "db"


def _sk105_pvc(docs: Docs) -> None:
    docs.append(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "jellyfin-media-pvc", "namespace": "media"},
            "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": "nfs-storage",
                     "resources": {"requests": {"storage": "4Ti"}}},
        }
    )  # fmt: skip
    pod(docs, "jellyfin")["volumes"][3] = {
        "name": "media",
        "persistentVolumeClaim": {"claimName": "jellyfin-media-pvc"},
    }


def _sk105_hostpath(docs: Docs) -> None:
    pod(docs, "jellyfin")["volumes"][3] = {"name": "media", "hostPath": {"path": "/mnt/media"}}


def _sk105_mount_at(path: str, source: dict[str, Any] | None) -> Callable[[Docs], None]:
    """Jellyfin's library mounted at `path`; its volume replaced by `source` unless None."""

    def apply(docs: Docs) -> None:
        spec = pod(docs, "jellyfin")
        for item in spec["containers"]:
            for mount in item.get("volumeMounts", []):
                if mount["name"] == "media":
                    mount["mountPath"] = path
        if source is not None:
            spec["volumes"][3] = {"name": "media", **source}

    return apply


def _drop_container(workload: str, name: str) -> Callable[[Docs], None]:
    def apply(docs: Docs) -> None:
        spec = pod(docs, workload)
        for key in ("initContainers", "containers"):
            spec[key] = [c for c in spec.get(key, []) if c["name"] != name]

    return apply


def _sk201_emptydir(docs: Docs) -> None:
    pod(docs, "vaultwarden")["volumes"][0] = {"name": "data", "emptyDir": {}}


def _sk201_wrong_path(docs: Docs) -> None:
    cm = doc(docs, "ConfigMap", "vaultwarden-litestream")
    cm["data"]["litestream.yml"] = cm["data"]["litestream.yml"].replace("db.sqlite3", "other.db")


def _sk201_not_s3(docs: Docs) -> None:
    cm = doc(docs, "ConfigMap", "vaultwarden-litestream")
    cm["data"]["litestream.yml"] = "dbs:\n  - path: /data/db.sqlite3\n    replicas:\n" \
        "      - {type: file, path: /backup/db}\n"  # fmt: skip


def _sk202_order(docs: Docs) -> None:
    spec = pod(docs, "vaultwarden")
    spec["initContainers"].reverse()


def _sk203_flag(docs: Docs) -> None:
    restore = container(docs, "vaultwarden", "litestream-restore")
    restore["args"].remove("-if-replica-exists")


def _sk204_no_config_mount(docs: Docs) -> None:
    restore = container(docs, "vaultwarden", "litestream-restore")
    restore["volumeMounts"] = restore["volumeMounts"][:1]


def _sk204_unmounted_path(docs: Docs) -> None:
    cm = doc(docs, "ConfigMap", "vaultwarden-litestream")
    cm["data"]["litestream.yml"] += "  - path: /backup/extra.db\n    replicas: [{url: s3://b/x}]\n"


def _sk301_interval(value: str) -> Callable[[Docs], None]:
    def apply(docs: Docs) -> None:
        cm = doc(docs, "ConfigMap", "esphome-sync")
        cm["data"]["sync.sh"] = cm["data"]["sync.sh"].replace("sleep 10m", value)

    return apply


def _sk301_local(docs: Docs) -> None:
    container(docs, "esphome", "rclone")["env"][0]["value"] = "local"


def _sk401_include(docs: Docs) -> None:
    doc(docs, "Schedule", "daily")["spec"]["template"]["includedNamespaces"] = ["vaultwarden"]


def _sk501_inline(docs: Docs) -> None:
    side = container(docs, "vaultwarden", "litestream")
    side["env"][1] = {"name": "AWS_SECRET_ACCESS_KEY", "value": "sup3r-s3cret-value"}


def _sk501_config(docs: Docs) -> None:
    cm = doc(docs, "ConfigMap", "vaultwarden-litestream")
    cm["data"]["litestream.yml"] = "access-key-id: AKIA\nsecret-access-key: sup3r-s3cret-value\n" \
        + cm["data"]["litestream.yml"]  # fmt: skip


def _sk001(docs: Docs) -> None:
    pvc = doc(docs, "PersistentVolumeClaim", "esphome-config-pvc")
    pvc["metadata"]["annotations"] = {"statekeeper.io/ignore": "SK104"}


def _agent_db_missing(docs: Docs) -> None:
    for name in ("statekeeper-restore", "statekeeper-agent"):
        container(docs, "jellyfin", name)["env"][0]["value"] = "/config/data/jellyfin.db"


def _native_sidecar_litestream(docs: Docs) -> None:
    spec = pod(docs, "vaultwarden")
    side = next(c for c in spec["containers"] if c["name"] == "litestream")
    spec["containers"].remove(side)
    spec["initContainers"].append({**side, "restartPolicy": "Always"})


def _positional_replicate(docs: Docs) -> None:
    side = container(docs, "vaultwarden", "litestream")
    side["args"] = ["replicate", "/data/db.sqlite3", "s3://backups/vaultwarden/db"]


def _namespace_ignored(docs: Docs) -> None:
    _sk401_include(docs)
    for name in ("databases", "home", "media", "velero"):
        doc(docs, "Namespace", name)["metadata"]["annotations"] = {
            "statekeeper.io/ignore": "SK401: backed up by the NAS"
        }


PVC = "PersistentVolumeClaim"
VW = ("Deployment", "vaultwarden")
CASES: list[tuple[str, Callable[[Docs], None], list[tuple[str, str, str]]]] = [
    ("SK101 wrong class", _set([PVC, "vaultwarden-data-pvc", "spec", "storageClassName"],
                               "synelia-iscsi-delete"), [("SK101", PVC, "vaultwarden-data-pvc")]),
    ("SK101 shared class without shared access", _sk101_rwo_on_shared,
     [("SK101", PVC, "jellyfin-logs-pvc")]),
    ("SK102 class", _set(["StorageClass", "nfs-storage", "reclaimPolicy"], "Delete"),
     [("SK102", "StorageClass", "nfs-storage")]),
    ("SK102 default is Delete", _set(["StorageClass", "synelia-iscsi-retain", "reclaimPolicy"],
                                     None), [("SK102", "StorageClass", "synelia-iscsi-retain")]),
    ("SK102 pv", _set(["PersistentVolume", "pv-archive", "spec",
                       "persistentVolumeReclaimPolicy"], "Delete"),
     [("SK102", "PersistentVolume", "pv-archive")]),
    ("SK103 pvc", _sk103_rename, [("SK103", PVC, "esphome-conf")]),
    ("SK103 template", _sk103_template, [("SK103", "StatefulSet", "postgresql")]),
    ("SK103 statefulset name", _sk103_sts_name, [("SK103", "StatefulSet", "db")]),
    ("SK104 cache", _set([PVC, "jellyfin-cache-pvc", "spec", "resources"],
                         {"requests": {"storage": "20Gi"}}),
     [("SK104", PVC, "jellyfin-cache-pvc")]),
    ("SK104 config", _set([PVC, "esphome-config-pvc", "spec", "resources"],
                          {"requests": {"storage": "5Gi"}}),
     [("SK104", PVC, "esphome-config-pvc")]),
    ("SK104 shared pg", _set(["StatefulSet", "postgresql", "spec", "volumeClaimTemplates"],
                             [{"metadata": {"name": "data"},
                               "spec": {"storageClassName": "synelia-iscsi-retain",
                                        "resources": {"requests": {"storage": "20Gi"}}}}]),
     [("SK104", "StatefulSet", "postgresql")]),
    ("SK104 sqlite db", _set([PVC, "vaultwarden-data-pvc", "spec", "resources"],
                             {"requests": {"storage": "1Gi"}}),
     [("SK104", PVC, "vaultwarden-data-pvc")]),
    ("SK105 pvc", _sk105_pvc, [("SK105", PVC, "jellyfin-media-pvc")]),
    ("SK105 hostPath", _sk105_hostpath, [("SK105", "Deployment", "jellyfin")]),
    ("SK105 below a library path", _sk105_mount_at("/media/movies/", {"hostPath": {"path": "/m"}}),
     [("SK105", "Deployment", "jellyfin")]),
    ("compliant: NFS below a library path", _sk105_mount_at("/media/movies", None), []),
    ("compliant: not a library path", _sk105_mount_at("/mediastore", {"emptyDir": {}}), []),
    ("SK106", _set([PVC, "esphome-config-pvc", "spec", "storageClassName"], None),
     [("SK106", PVC, "esphome-config-pvc")]),
    ("SK201 no sidecar", _drop_container("vaultwarden", "litestream"), [("SK201", *VW)]),
    ("SK201 emptyDir", _sk201_emptydir, [("SK201", *VW)]),
    ("SK201 path not replicated", _sk201_wrong_path, [("SK201", *VW)]),
    ("SK201 not s3", _sk201_not_s3, [("SK201", *VW)]),
    ("SK202 missing", _drop_container("vaultwarden", "integrity-check"), [("SK202", *VW)]),
    ("SK202 after restore", _sk202_order, [("SK202", *VW)]),
    ("SK203 missing", _drop_container("vaultwarden", "litestream-restore"), [("SK203", *VW)]),
    ("SK203 flag", _sk203_flag, [("SK203", *VW)]),
    ("SK204 restore lacks config", _sk204_no_config_mount, [("SK204", *VW)]),
    ("SK204 config path unmounted", _sk204_unmounted_path, [("SK204", *VW)]),
    ("SK301 no sidecar", _drop_container("esphome", "rclone"),
     [("SK301", "Deployment", "esphome")]),
    ("SK302 too slow", _sk301_interval("sleep 30m"), [("SK302", "Deployment", "esphome")]),
    ("SK302 too fast", _sk301_interval("sleep 60"), [("SK302", "Deployment", "esphome")]),
    ("SK302 no period", _sk301_interval("true"), [("SK302", "Deployment", "esphome")]),
    ("SK301 not s3", _sk301_local, [("SK301", "Deployment", "esphome")]),
    ("SK302 agent interval", _set(["ConfigMap", "jellyfin-statekeeper", "data"],
                                  {"STATEKEEPER_RCLONE_INTERVAL": "1h"}),
     [("SK302", "Deployment", "jellyfin")]),
    ("SK401 namespaces", _sk401_include,
     [("SK401", "Namespace", ns) for ns in ("databases", "home", "media", "velero")]),
    ("SK401 weekly", _set(["Schedule", "daily", "spec", "schedule"], "0 3 * * 0"),
     [("SK401", "Namespace", ns) for ns in
      ("databases", "home", "media", "vaultwarden", "velero")]),
    # volume data is SK402's: one finding on the schedule, not one per namespace
    ("SK402 no volumes", _set(["Schedule", "daily", "spec", "template", "snapshotVolumes"], False),
     [("SK402", "Schedule", "daily")]),
    ("SK402 snapshots without a location",
     _set(["Schedule", "daily", "spec", "template", "snapshotVolumes"], None),
     [("SK402", "Schedule", "daily")]),
    ("compliant: fs backup", _set(["Schedule", "daily", "spec", "template"],
                                  {"includedNamespaces": ["*"], "defaultVolumesToFsBackup": True,
                                   "ttl": "720h0m0s"}), []),
    ("SK402 excluded on all", _set(["Schedule", "daily", "spec", "template", "excludedNamespaces"],
                                   ["kube-system"]),
     [("SK402", "Schedule", "daily")]),
    ("compliant: excluded with cluster resources", _set(
        ["Schedule", "daily", "spec", "template"],
        {"includedNamespaces": ["*"], "excludedNamespaces": ["kube-system"],
         "includeClusterResources": True, "snapshotVolumes": True}), []),
    ("SK402 ttl shorter than interval", _set(["Schedule", "daily", "spec", "template", "ttl"],
                                             "12h"),
     [("SK402", "Schedule", "daily")]),
    # the agent lists one database: the other is neither streamed, checked nor restored
    ("SK201 agent misses a db", _agent_db_missing,
     [("SK201", "Deployment", "jellyfin"), ("SK202", "Deployment", "jellyfin"),
      ("SK203", "Deployment", "jellyfin")]),
    ("SK202+SK203 agent without restore", _drop_container("jellyfin", "statekeeper-restore"),
     [("SK202", "Deployment", "jellyfin"), ("SK203", "Deployment", "jellyfin")]),
    ("compliant: native sidecar", _native_sidecar_litestream, []),
    ("compliant: positional replicate", _positional_replicate, []),
    ("compliant: namespaces exempted", _namespace_ignored, []),
    ("SK107 default strategy", _set(["Deployment", "vaultwarden", "spec", "strategy"], None),
     [("SK107", *VW)]),
    ("SK107 surging rollout", _set(["Deployment", "vaultwarden", "spec", "strategy"],
                                   {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}),
     [("SK107", *VW)]),
    ("compliant: rollout without surge", _set(
        ["Deployment", "vaultwarden", "spec", "strategy"],
        {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}), []),
    ("SK501 inline", _sk501_inline, [("SK501", *VW)]),
    ("SK501 config", _sk501_config, [("SK501", *VW)]),
    ("SK001", _sk001, [("SK001", PVC, "esphome-config-pvc")]),
]  # fmt: skip


@pytest.mark.parametrize(("change", "expected"), [(c, e) for _, c, e in CASES],
                         ids=[n for n, _, _ in CASES])  # fmt: skip
def test_non_compliant_case(change: Callable[[Docs], None], expected: list[Any]) -> None:
    docs = compliant_docs()
    change(docs)
    assert run(docs) == sorted(expected)


def test_every_rule_has_a_non_compliant_case() -> None:
    covered = {rule for _, _, expected in CASES for rule, _, _ in expected}
    # SK002/SK003 judge inputs, not manifests: tests/rules/test_inputs.py has their cases.
    assert covered == {rule.id for rule in all_rules()} - {"SK002", "SK003"}


def test_secret_value_never_in_findings() -> None:
    docs = compliant_docs()
    _sk501_inline(docs)
    _sk501_config(docs)
    report = audit(yaml.safe_dump_all(docs))
    text = repr([f.to_dict() for f in report.findings])
    assert "SK501" in text
    assert "sup3r-s3cret-value" not in text
    assert "AKIA" not in text


def test_messages_say_what_is_wrong() -> None:
    docs = compliant_docs()
    _sk202_order(docs)
    (finding,) = audit(yaml.safe_dump_all(docs)).findings
    assert "'integrity-check' checks integrity AFTER 'litestream-restore'" in finding.message
    assert finding.environment == "production"
    assert finding.app == "vaultwarden"
    assert finding.namespace == "vaultwarden"
    assert finding.remediation

    docs = compliant_docs()
    _sk301_interval("sleep 30m")(docs)
    (finding,) = audit(yaml.safe_dump_all(docs)).findings
    assert "every 30 min (sleep 30m)" in finding.message

    docs = compliant_docs()
    _sk401_include(docs)
    messages = [f.message for f in audit(yaml.safe_dump_all(docs)).findings]
    assert (
        "namespace 'media' is not covered: Schedule velero/daily does not include it"
        in " ".join(messages)
    )


SQLITE_APP_WITHOUT_BACKUP = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: vaultwarden, namespace: vaultwarden, labels: {app: vaultwarden}}
spec:
  template:
    metadata: {labels: {app: vaultwarden}}
    spec:
      containers:
        - name: vaultwarden
          image: vaultwarden/server:1.30.5
          volumeMounts: [{name: data, mountPath: /data}]
      volumes: [{name: data, persistentVolumeClaim: {claimName: vaultwarden-data-pvc}}]
"""


def test_sqlite_messages_name_the_app_without_nested_parentheses() -> None:
    report = audit(SQLITE_APP_WITHOUT_BACKUP, env="production", only=["SK201", "SK202", "SK203"])
    messages = {f.rule: f.message for f in report.findings}
    app = "SQLite app vaultwarden (known image vaultwarden/server:1.30.5)"
    assert messages == {
        "SK201": f"{app} has no litestream sidecar streaming it to S3",
        "SK202": f"{app} has no integrity-check init container for Fail-Safe Integrity",
        "SK203": f"{app} has no init container restoring it with "
        "`litestream restore -if-db-not-exists -if-replica-exists`",
    }


def test_pvc_name_message_without_an_app_invents_none() -> None:
    pvc = """\
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: mealie-data, namespace: apps}
spec: {storageClassName: synelia-iscsi-retain}
"""
    (finding,) = audit(pvc, env="production", only=["SK103"]).findings
    assert finding.app is None
    assert finding.message == (
        "PVC name 'mealie-data' does not match <app>-<purpose>-pvc; "
        "e.g. <app>-data-pvc where <app> is the app's name"
    )


def test_pvc_name_message_with_an_app_gives_a_full_example() -> None:
    docs = compliant_docs()
    _sk103_rename(docs)
    (finding,) = audit(yaml.safe_dump_all(docs)).findings
    assert finding.message == (
        "PVC name 'esphome-conf' does not match <app>-<purpose>-pvc "
        "(app 'esphome', e.g. esphome-conf-pvc)"
    )
