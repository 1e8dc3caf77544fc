"""Each rule's `bad_example` and `good_example` (shown on its docs page) run as tests: the bad
one yields at least one finding of the rule, the good one none.

An example is a fragment (a PVC without apiVersion, a pod's `containers:`, a `metadata:`
block), so each rule has a setting: the documents the example is merged into (with the merge
of the rule cases, tests/rules/casefile.py), where, and the environment. The setting only
supplies what the fragment leaves out; what the rule judges comes from the example itself.
The documents are audited through `run_audit`, like the cases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from statekeeper.engine import run_audit
from statekeeper.policy.load import load_policy
from statekeeper.rules.base import all_rules
from tests.rules.casefile import merge, write_tree

Path_ = tuple[str | int, ...]
POD = ("spec", "template", "spec")


@dataclass(frozen=True)
class Setting:
    """The example is merged into the first of `documents` at `at`; with `file` set, it is
    written to that file of the `files` tree instead, and the tree audited with kustomize."""

    documents: str = ""
    at: Path_ = ()
    env: str | None = "production"
    files: dict[str, str] = field(default_factory=dict)
    file: str | None = None


PVC = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {namespace: apps}\n"
SCHEDULE = """\
apiVersion: velero.io/v1
kind: Schedule
metadata: {name: daily, namespace: velero}
---
apiVersion: v1
kind: Namespace
metadata: {name: vaultwarden}
---
apiVersion: v1
kind: Namespace
metadata: {name: mealie}
"""


def _deployment(name: str, volumes: str, containers: str = "", more: str = "") -> str:
    """A Deployment `name` (namespace `apps`) with those volumes, app containers and documents."""
    text = f"""\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: apps}}
spec:
  strategy: {{type: Recreate}}
  template:
    spec:
      volumes: {volumes}
"""
    if containers:
        text += f"      containers: {containers}\n"
    return text + more


LITESTREAM_VOLUMES = (
    "[{name: data, persistentVolumeClaim: {claimName: APP-data-pvc}}, "
    "{name: litestream-config, configMap: {name: APP-litestream}}]"
)


def _litestream_config(app: str, db: str) -> str:
    return f"""\
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: {app}-litestream, namespace: apps}}
data:
  litestream.yml: |
    dbs:
      - path: {db}
        replicas: [{{url: s3://backups/{app}/db}}]
"""


def _sqlite_app(app: str, image: str, mount: str, db: str) -> str:
    """A SQLite app's Deployment, its app container mounting `data` at `mount`, and its
    litestream config listing `db`."""
    return _deployment(
        app,
        LITESTREAM_VOLUMES.replace("APP", app),
        f"[{{name: {app}, image: {image}, volumeMounts: [{{name: data, mountPath: {mount}}}]}}]",
        _litestream_config(app, db),
    )


SETTINGS: dict[str, Setting] = {
    "SK001": Setting(PVC + "spec: {storageClassName: synelia-iscsi-retain}\n"),
    "SK002": Setting(
        files={
            "base/kustomization.yaml": "resources: [configmap.yaml]\n",
            "base/configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n",
        },
        file="overlays/staging/kustomization.yaml",
        env=None,  # the overlay's own (development): `--env production` would skip it
    ),
    "SK003": Setting(file="apps/settings.yaml"),
    "SK101": Setting(PVC),
    "SK102": Setting("apiVersion: storage.k8s.io/v1\nkind: StorageClass\nprovisioner: nfs\n"),
    "SK103": Setting(PVC),
    "SK104": Setting(PVC),
    "SK105": Setting(
        _deployment(
            "jellyfin",
            "[]",
            "[{name: jellyfin, image: jellyfin/jellyfin:10.9.11, "
            "volumeMounts: [{name: media, mountPath: /media}]}]",
        ),
        at=POD,
    ),
    "SK106": Setting(PVC),
    "SK107": Setting(
        """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: vaultwarden, namespace: apps}
spec:
  template:
    spec:
      containers:
        - {name: vaultwarden, image: vaultwarden/server:1.32.0,
           volumeMounts: [{name: data, mountPath: /data}]}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: vaultwarden-data-pvc, namespace: apps}
spec: {accessModes: [ReadWriteOnce], storageClassName: synelia-iscsi-retain}
"""
    ),
    "SK201": Setting(
        _deployment("mealie", LITESTREAM_VOLUMES.replace("APP", "mealie"))
        + _litestream_config("mealie", "/app/data/mealie.db"),
        at=POD,
    ),
    "SK202": Setting(
        _sqlite_app("kuma", "louislam/uptime-kuma:1.23.13", "/app/data", "/app/data/kuma.db"),
        at=POD,
    ),
    "SK203": Setting(
        _sqlite_app("vaultwarden", "vaultwarden/server:1.32.0", "/data", "/data/db.sqlite3"),
        at=POD,
    ),
    "SK204": Setting(
        _sqlite_app("kuma", "louislam/uptime-kuma:1.23.13", "/app/data", "/app/data/kuma.db"),
        at=POD,
    ),
    "SK301": Setting(
        _deployment("syncthing", "[{name: config, persistentVolumeClaim: {claimName: c-pvc}}]"),
        at=POD,
    ),
    "SK302": Setting(
        _deployment(
            "app",
            "[{name: config, persistentVolumeClaim: {claimName: app-config-pvc}}]",
            "[{name: app, image: example/app:1.0, volumeMounts: [{name: config, "
            "mountPath: /config}]}]",
        ),
        at=POD,
    ),
    "SK401": Setting(SCHEDULE),
    "SK402": Setting(SCHEDULE),
    "SK501": Setting(
        _deployment("app", "[]", "[{name: rclone, image: rclone/rclone:1.68.1}]"),
        at=(*POD, "containers", 0),
    ),
}


def merge_at(document: Any, at: Path_, fragment: Any) -> Any:
    """`document` with `fragment` merged at path `at` (keys and list indexes)."""
    if not at:
        return merge(document, fragment)
    head, *rest = at
    if isinstance(head, int):
        document[head] = merge_at(document[head], tuple(rest), fragment)
    else:
        document[head] = merge_at(document.get(head) or {}, tuple(rest), fragment)
    return document


def audit_example(rule_id: str, example: str, root: Path) -> set[str]:
    """The rules finding something in `example` placed in the rule's setting."""
    setting = SETTINGS[rule_id]
    if setting.file is not None:
        write_tree(root, {**setting.files, setting.file: example})
        report = run_audit(["."], policy=load_policy(), env=setting.env, quiet=True)
    else:
        documents = list(yaml.safe_load_all(setting.documents))
        documents[0] = merge_at(documents[0], setting.at, yaml.safe_load(example))
        (root / "example.yaml").write_text(yaml.safe_dump_all(documents), encoding="utf-8")
        report = run_audit(
            ["example.yaml"], policy=load_policy(), env=setting.env, render=False, quiet=True
        )
    return {finding.rule for finding in report.findings}


RULES = {rule.id: rule for rule in all_rules()}


def test_every_rule_has_a_setting() -> None:
    assert sorted(SETTINGS) == sorted(RULES)


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_bad_example_is_found(
    rule_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert rule_id in audit_example(rule_id, RULES[rule_id].bad_example, tmp_path)


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_good_example_passes(rule_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert rule_id not in audit_example(rule_id, RULES[rule_id].good_example, tmp_path)
