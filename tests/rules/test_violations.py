"""The rule contract: rules yield violations, the engine makes the findings.

A rule that joins its violations reports one finding per subject (`<topic>: a; b`, at the line
of the first violation with a field path); any other rule reports one finding per violation,
even several about the same object. Lines come from a real file, as in an audit.
"""

from __future__ import annotations

from pathlib import Path

from statekeeper.engine import run_audit
from statekeeper.findings import Finding, Severity
from statekeeper.policy.load import load_policy


def audit_file(tmp_path: Path, text: str, *only: str) -> list[Finding]:
    path = tmp_path / "app.yaml"
    path.write_text(text)
    report = run_audit([str(path)], policy=load_policy(), env="production", render=False,
                       only=only, quiet=True)  # fmt: skip
    return report.findings


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


RESTORES = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: kuma, namespace: kuma, labels: {app: kuma}}
spec:
  template:
    spec:
      initContainers:
        - name: integrity-check
          image: keinos/sqlite3:3.46.1
          command: [sh, -c, "sqlite3 /app/data/kuma.db 'PRAGMA integrity_check'"]
          volumeMounts: [{name: data, mountPath: /app/data}]
        - name: NAME
          image: litestream/litestream:0.5.2
          args: ARGS
          volumeMounts: [{name: data, mountPath: /app/data}]
      containers:
        - name: kuma
          image: louislam/uptime-kuma:1.23.16
          volumeMounts: [{name: data, mountPath: /app/data}]
      volumes: [{name: data, persistentVolumeClaim: {claimName: kuma-data-pvc}}]
"""


def test_joined_violations_make_one_finding_at_the_first_field(tmp_path: Path) -> None:
    text = RESTORES.replace("NAME", "litestream-restore").replace(
        "ARGS", "[restore, /app/data/other.db]"
    )
    (finding,) = audit_file(tmp_path, text, "SK203")
    assert finding.message == (
        "'litestream-restore' restores without -if-db-not-exists -if-replica-exists; "
        "database /app/data/kuma.db is not restored by an init container"
    )
    assert finding.line == line_of(text, "- name: litestream-restore")


def test_the_restore_container_is_carried_not_read_back_from_the_message(tmp_path: Path) -> None:
    # A container named "restore" appears in "is not restored", yet only a container that the
    # problem is about gives the finding its line.
    text = RESTORES.replace("NAME", "restore").replace(
        "ARGS", "[restore, -if-db-not-exists, -if-replica-exists, /app/data/other.db]"
    )
    (finding,) = audit_file(tmp_path, text, "SK203")
    assert finding.message == "database /app/data/kuma.db is not restored by an init container"
    assert finding.line == 1


def test_a_rule_that_does_not_join_reports_each_violation(tmp_path: Path) -> None:
    text = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: jellyfin, namespace: media}
spec:
  template:
    spec:
      containers:
        - name: jellyfin
          image: jellyfin/jellyfin:10.9.11
          volumeMounts:
            - {name: movies, mountPath: /media/movies}
            - {name: shows, mountPath: /media/shows}
      volumes:
        - {name: movies, hostPath: {path: /mnt/movies}}
        - {name: shows, hostPath: {path: /mnt/shows}}
"""
    findings = audit_file(tmp_path, text, "SK105")
    assert [(f.kind, f.name, f.line) for f in findings] == [
        ("Deployment", "jellyfin", line_of(text, "mountPath: /media/movies")),
        ("Deployment", "jellyfin", line_of(text, "mountPath: /media/shows")),
    ]


def test_each_volume_claim_template_is_its_own_finding(tmp_path: Path) -> None:
    text = """\
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: postgresql, namespace: db}
spec:
  template:
    spec:
      containers:
        - name: postgresql
          image: postgres:16.4
  volumeClaimTemplates:
    - metadata: {name: data}
      spec:
        resources: {requests: {storage: 10Gi}}
    - metadata: {name: wal}
      spec:
        resources: {requests: {storage: 10Gi}}
"""
    findings = audit_file(tmp_path, text, "SK106")
    spec_of = {name: line_of(text, f"name: {name}") + 1 for name in ("data", "wal")}
    assert [(f.kind, f.name, f.message.split(":")[0], f.line) for f in findings] == [
        ("StatefulSet", "postgresql", "volumeClaimTemplate 'data'", spec_of["data"]),
        ("StatefulSet", "postgresql", "volumeClaimTemplate 'wal'", spec_of["wal"]),
    ]


def test_a_topic_heads_the_joined_messages(tmp_path: Path) -> None:
    text = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: backup, namespace: tools}
spec:
  template:
    spec:
      containers:
        - name: rclone
          image: rclone/rclone:1.68.1
          env:
            - {name: RCLONE_CONFIG_MINIO_ACCESS_KEY_ID, value: minio-admin-not-real}
            - {name: RCLONE_CONFIG_MINIO_SECRET_ACCESS_KEY, value: not-a-real-secret-xyz}
"""
    (finding,) = audit_file(tmp_path, text, "SK501")
    assert finding.message == (
        "S3 keys not from a Secret: rclone: env RCLONE_CONFIG_MINIO_ACCESS_KEY_ID is written "
        "inline; rclone: env RCLONE_CONFIG_MINIO_SECRET_ACCESS_KEY is written inline"
    )
    assert finding.line == line_of(text, "RCLONE_CONFIG_MINIO_ACCESS_KEY_ID")
    assert finding.severity is Severity.ERROR
