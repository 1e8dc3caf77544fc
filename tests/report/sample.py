"""A hand-built report shaped like an audit of examples/homelab, shared by the reporter tests."""

from __future__ import annotations

from dataclasses import dataclass

from statekeeper.findings import Finding, Note, Report, Severity, Suppressed

SECRET = "devminio-Kq7u2-not-a-real-secret"


def finding(rule: str, slug: str, severity: Severity, **kw: object) -> Finding:
    base: dict[str, object] = {
        "message": f"{slug} violated",
        "remediation": f"make {slug} hold",
        "kind": "Deployment",
        "name": "mealie",
        "namespace": "mealie",
        "app": "mealie",
        "environment": "production",
        "file": "base/mealie/deployment.yaml",
        "line": 1,
    }
    base.update(kw)
    return Finding(rule=rule, slug=slug, severity=severity, **base)  # type: ignore[arg-type]


def sample_report() -> Report:
    e, w, i = Severity.ERROR, Severity.WARNING, Severity.INFO
    findings = [
        finding(
            "SK201",
            "sqlite-needs-litestream-sidecar",
            e,
            message="SQLite database /app/data/mealie.db is not replicated by litestream.",
            remediation="Add a litestream sidecar that replicates /app/data/mealie.db to S3.",
        ),
        finding("SK201", "sqlite-needs-litestream-sidecar", e, environment="development"),
        finding(
            "SK103",
            "pvc-name",
            w,
            kind="PersistentVolumeClaim",
            name="mealie-data",
            file="base/mealie/pvc.yaml",
            line=2,
            message='PVC name "mealie-data" does not match <app>-<purpose>-pvc.',
            remediation="Rename the claim, e.g. mealie-data-pvc.",
        ),
        finding(
            "SK102",
            "reclaim-policy",
            e,
            kind="StorageClass",
            name="nfs-storage",
            namespace=None,
            app=None,
            environment="development",
            file="overlays/dev/nfs-storage-delete.yaml",
            line=3,
            message="StorageClass nfs-storage has reclaimPolicy Delete; the shared class Retains.",
            remediation="Set reclaimPolicy: Retain.",
        ),
        finding(
            "SK301",
            "config-needs-rclone-sidecar",
            i,
            kind="Deployment",
            name="syncthing",
            namespace="syncthing",
            app="syncthing",
            file=None,
            line=None,
        ),
    ]
    suppressed = [
        Suppressed(
            finding(
                "SK104",
                "pvc-size",
                w,
                kind="PersistentVolumeClaim",
                name="esphome-config-pvc",
                namespace="home-automation",
                app="esphome",
                file="base/esphome/pvc.yaml",
                line=1,
            ),
            reason="ESPHome build caches need 5Gi",
        )
    ]
    notes = [
        Note("skipped: not Kubernetes YAML", file="README.md"),
        Note("environment unknown for namespace scratch", file="extra/ns.yaml", line=4),
    ]
    return Report(
        findings=findings,
        suppressed=suppressed,
        notes=notes,
        apps={
            "mealie": {"development", "production"},
            "vaultwarden": {"development", "production"},
            "esphome": {"development", "production"},
            "syncthing": {"production"},
        },
        resources=42,
        sources=["overlays/dev", "overlays/prod"],
    )


@dataclass(frozen=True)
class FakeRule:
    """Rule metadata as statekeeper.rules.base provides it (plain data, not a test double of
    behaviour: the SARIF reporter only reads these fields)."""

    id: str
    slug: str
    severity: Severity
    title: str
    rationale: str
    remediation: str


RULES = [
    FakeRule("SK102", "reclaim-policy", Severity.ERROR, "Reclaim policy", "Why.", "Fix it."),
    FakeRule("SK103", "pvc-name", Severity.WARNING, "PVC name", "Why.", "Rename it."),
    FakeRule(
        "SK201", "sqlite-needs-litestream-sidecar", Severity.ERROR, "Litestream", "Why.", "Add."
    ),
]
