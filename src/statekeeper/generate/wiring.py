"""The statekeeper agent wiring of docs/agent-wiring.md, and the plain Litestream/rclone pattern.

Both `generate app` and the SK2xx/SK301 fixer build containers here, so the audit, the generator
and the fixer share one definition of "a pod that is backed up".
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml.scalarstring import LiteralScalarString

from statekeeper import __version__, defaults
from statekeeper.inventory.model import starts_new_pod_first
from statekeeper.policy.model import parse_duration

AGENT_IMAGE = f"ghcr.io/statekeeper/statekeeper:{__version__}"
LITESTREAM_IMAGE = "litestream/litestream:0.5.2"
RCLONE_IMAGE = "rclone/rclone:1.71"
SQLITE_CHECK_IMAGE = "keinos/sqlite3:3.47.2"
METRICS_PORT = 9090
RESTORE_NAME = "statekeeper-restore"
SIDECAR_NAME = "statekeeper-agent"
# The sidecar's final flush on SIGTERM takes up to `shutdown_timeout` (20 s default) plus the kill
# grace of its children (10 s); 40 leaves headroom. Kubernetes' default (30 s) cuts it short.
AGENT_TERMINATION_GRACE_SECONDS = 40


@dataclass(frozen=True, slots=True)
class Mount:
    """A volume mount the backup containers need: `volume` mounted at `path`."""

    volume: str
    path: str
    sub_path: str | None = None

    def as_k8s(self) -> dict[str, Any]:
        mount: dict[str, Any] = {"name": self.volume, "mountPath": self.path}
        if self.sub_path:
            mount["subPath"] = self.sub_path
        return mount


@dataclass(frozen=True, slots=True)
class BackupSpec:
    """What to protect and where the replicas go (secrets by reference only)."""

    app: str
    sqlite_paths: tuple[str, ...]
    config_paths: tuple[str, ...]
    mounts: tuple[Mount, ...]
    config_map: str  # ConfigMap holding STATEKEEPER_BUCKET / _S3_ENDPOINT / _PREFIX
    secret: str = defaults.S3_SECRET  # Secret holding AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
    rclone_interval: str = defaults.SYNC_INTERVAL
    image: str = AGENT_IMAGE
    extra_env: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    # Kubernetes >= 1.29: sidecars are native (init containers with restartPolicy: Always), so
    # they start before the app and stop after it; otherwise regular containers.
    native_sidecars: bool = True


def _env(spec: BackupSpec) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = []
    if spec.sqlite_paths:
        env.append({"name": "STATEKEEPER_SQLITE_PATHS", "value": ",".join(spec.sqlite_paths)})
    if spec.config_paths:
        env.append({"name": "STATEKEEPER_CONFIG_PATHS", "value": ",".join(spec.config_paths)})
        env.append({"name": "STATEKEEPER_RCLONE_INTERVAL", "value": spec.rclone_interval})
    env.extend({"name": k, "value": v} for k, v in spec.extra_env)
    return env


def _env_from(spec: BackupSpec) -> list[dict[str, Any]]:
    return [
        {"configMapRef": {"name": spec.config_map}},
        {"secretRef": {"name": spec.secret}},
    ]


def agent_restore_container(spec: BackupSpec) -> dict[str, Any]:
    """The Fail-Safe Integrity init container: check, quarantine, restore; refuse when unsafe."""
    return {
        "name": RESTORE_NAME,
        "image": spec.image,
        "args": ["agent", "restore"],
        "envFrom": _env_from(spec),
        "env": _env(spec),
        "volumeMounts": [m.as_k8s() for m in spec.mounts],
    }


def agent_sidecar_container(spec: BackupSpec) -> dict[str, Any]:
    """The sidecar running `agent run`: a native sidecar (init container with restartPolicy:
    Always) unless the policy says the cluster is older than Kubernetes 1.29."""
    container: dict[str, Any] = {
        "name": SIDECAR_NAME,
        "image": spec.image,
        "args": ["agent", "run"],
        "restartPolicy": "Always",
        "ports": [{"name": "metrics", "containerPort": METRICS_PORT}],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": "metrics"}},
        "envFrom": _env_from(spec),
        "env": _env(spec),
        "volumeMounts": [m.as_k8s() for m in spec.mounts],
    }
    if not spec.native_sidecars:
        del container["restartPolicy"]
    return container


def agent_init_containers(spec: BackupSpec) -> list[dict[str, Any]]:
    """Restore first, then the native sidecar: the order the contract requires (the restore
    alone when sidecars are not native: see `agent_containers`)."""
    if not spec.native_sidecars:
        return [agent_restore_container(spec)]
    return [agent_restore_container(spec), agent_sidecar_container(spec)]


def agent_containers(spec: BackupSpec) -> list[dict[str, Any]]:
    """The agent's regular containers: its sidecar on a cluster without native sidecars."""
    return [] if spec.native_sidecars else [agent_sidecar_container(spec)]


def agent_rollout_strategy() -> dict[str, Any]:
    """The Deployment strategy a pod with the agent needs: Recreate.

    The agent holds a lease in S3 and its `/ready` stays 503 until it has it, so under a
    RollingUpdate with surge the new pod waits for a lease the old pod (kept until the new one is
    Ready) never gives up: the rollout deadlocks. Recreate stops the old pod (and lets it flush)
    first; it is also the only strategy that works with a ReadWriteOnce volume."""
    return {"type": "Recreate"}


def needs_longer_grace(current: Any) -> bool:
    """True when a pod's `terminationGracePeriodSeconds` is missing or below the agent's need.
    A value that is not a number (a template placeholder) is left to the user."""
    if current is None:
        return True
    if isinstance(current, bool) or not isinstance(current, int):
        return False
    return current < AGENT_TERMINATION_GRACE_SECONDS


def needs_recreate(strategy: Any) -> bool:
    """True when a Deployment's `strategy` would deadlock the agent's lease (the new pod waits
    for a lease the old one, kept until the new one is Ready, never gives up): see
    `starts_new_pod_first`."""
    return starts_new_pod_first(strategy)


def scrape_annotations() -> dict[str, str]:
    """Prometheus scrape annotations for the agent's metrics port."""
    return {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(METRICS_PORT),
        "prometheus.io/path": "/metrics",
    }


# --- The strategy's plain pattern (`fix --style litestream`) ------------------------------------


def litestream_config(spec: BackupSpec) -> str:
    """litestream.yml replicating every database to `s3://$BUCKET/$PREFIX/sqlite/<file>`."""
    lines = ["dbs:"]
    for db in spec.sqlite_paths:
        lines += [
            f"  - path: {db}",
            "    replicas:",
            "      - type: s3",
            "        bucket: ${STATEKEEPER_BUCKET}",
            f"        path: ${{STATEKEEPER_PREFIX}}/sqlite/{posixpath.basename(db)}",
            "        endpoint: ${STATEKEEPER_S3_ENDPOINT}",
        ]
    return "\n".join(lines) + "\n"


def litestream_pattern(
    spec: BackupSpec, litestream_config_map: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """(init containers, sidecar containers, extra volume) of the strategy's hand-written pattern:
    integrity check → litestream restore → litestream + rclone sidecars (native sidecars, at the
    end of the init containers, when `spec.native_sidecars`)."""
    config_mount = {"name": "litestream-config", "mountPath": "/etc/litestream.yml",
                    "subPath": "litestream.yml"}  # fmt: skip
    mounts = [m.as_k8s() for m in spec.mounts]
    env_from = _env_from(spec)
    init: list[dict[str, Any]] = []
    sidecars: list[dict[str, Any]] = []
    if spec.sqlite_paths:
        # Fail-Safe Integrity: a corrupt database is quarantined (never deleted), so the
        # restore that follows fetches the replica instead of keeping the damaged file.
        check = (
            "set -eu\n"
            f"for db in {' '.join(spec.sqlite_paths)}; do\n"
            '  if [ -f "$db" ] && '
            '[ "$(sqlite3 "$db" \'PRAGMA integrity_check;\')" != "ok" ]; then\n'
            '    mv "$db" "$db.corrupt-$(date +%s)"\n'
            "  fi\n"
            "done\n"
        )
        init.append(
            {
                "name": "check-integrity",
                "image": SQLITE_CHECK_IMAGE,
                "command": ["sh", "-c", LiteralScalarString(check)],
                "volumeMounts": mounts,
            }
        )
        for index, db in enumerate(spec.sqlite_paths):
            init.append(
                {
                    "name": "litestream-restore" if index == 0 else f"litestream-restore-{index}",
                    "image": LITESTREAM_IMAGE,
                    "args": ["restore", "-if-db-not-exists", "-if-replica-exists", db],
                    "envFrom": env_from,
                    "volumeMounts": [*mounts, config_mount],
                }
            )
        sidecars.append(
            {
                "name": "litestream",
                "image": LITESTREAM_IMAGE,
                "args": ["replicate"],
                "envFrom": env_from,
                "volumeMounts": [*mounts, config_mount],
            }
        )
    seconds = int(parse_duration(spec.rclone_interval) or 600)
    for index, path in enumerate(spec.config_paths):
        target = f"${{STATEKEEPER_BUCKET}}/${{STATEKEEPER_PREFIX}}/files/{posixpath.basename(path)}"
        script = (
            "while true; do\n"
            f'  rclone sync {path} ":s3:{target}" \\\n'
            '    --s3-provider Other --s3-env-auth --s3-endpoint "$STATEKEEPER_S3_ENDPOINT"\n'
            f"  sleep {seconds}\n"
            "done\n"
        )
        sidecars.append(
            {
                "name": "rclone" if index == 0 else f"rclone-{index}",
                "image": RCLONE_IMAGE,
                "command": ["sh", "-c", LiteralScalarString(script)],
                "envFrom": env_from,
                "volumeMounts": mounts,
            }
        )
    volume = {"name": "litestream-config", "configMap": {"name": litestream_config_map}}
    if spec.native_sidecars:
        # After the check and the restores: a native sidecar starts in init order, and must not
        # replicate a database the restore has not brought back yet.
        init += [{**sidecar, "restartPolicy": "Always"} for sidecar in sidecars]
        sidecars = []
    return init, sidecars, volume
