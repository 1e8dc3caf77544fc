"""SK501 backup-credentials-from-secret: S3 keys come only from a Secret.

The rule's docs page is docs/rules/SK501-backup-credentials-from-secret.md, its test cases
tests/rules/cases/SK501.yaml.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from statekeeper.findings import Severity
from statekeeper.inventory.model import FieldPath, Inventory, Workload
from statekeeper.inventory.shell import matches_any
from statekeeper.policy.model import Policy
from statekeeper.rules.base import NotFixable, Rule, Violation, distinct, register

_TOPIC = "S3 keys not from a Secret"


@register
class BackupCredentialsFromSecret(Rule):
    id = "SK501"
    slug = "backup-credentials-from-secret"
    severity = Severity.ERROR
    joins_violations = True
    title = "S3 keys come only from a Secret"
    rationale = (
        'Every backup tier of the strategy streams "to S3 storage" (§3). The keys to that '
        "store open every backup of every app: written inline in a manifest (or a ConfigMap) "
        "they sit in git history, in `kubectl describe` output and in every rendered overlay."
    )
    remediation = (
        "Put the keys in a Secret (sealed or external in git) and reference it: "
        "`envFrom: [{secretRef: {name: <secret>}}]` or `valueFrom.secretKeyRef`. Rotate the "
        "keys that were committed."
    )
    bad_example = """\
env:
  - name: RCLONE_CONFIG_MINIO_SECRET_ACCESS_KEY
    value: devminio-Kq7u2-not-a-real-secret
"""
    good_example = """\
env:
  - name: RCLONE_CONFIG_MINIO_SECRET_ACCESS_KEY
    valueFrom:
      secretKeyRef: {name: rclone-s3, key: secret-access-key}
"""
    details = (
        "Looks at every container of every workload: env variables named in "
        "`credentials.env` (globs) set with `value:` or from a ConfigMap (`configMapKeyRef`, "
        "`envFrom.configMapRef`), command-line flags of `credentials.args` with a value, and "
        "`credentials.config_keys` written in a litestream config the pod mounts. One finding "
        "per workload; the values themselves are never shown."
    )
    fix = NotFixable(
        "moving an S3 key into a Secret needs the key, which must not be written to git: "
        "create the Secret (SOPS, External Secrets) and reference it with secretKeyRef"
    )

    def check(self, inventory: Inventory, policy: Policy) -> Iterable[Violation]:
        creds = policy.credentials
        for workload in inventory.workloads:
            yield from distinct(
                Violation(workload.resource, message, path, topic=_TOPIC)
                for message, path in self._problems(workload, creds.env, creds.args)
            )

    @staticmethod
    def _problems(
        workload: Workload, env: list[str], args: list[str]
    ) -> Iterator[tuple[str, FieldPath | None]]:
        """Each key not from a Secret, and the field it is set at (None: in a config file)."""
        for container in workload.all_containers:
            for var in container.env:
                if not matches_any(var.name, env):
                    continue
                if var.source == "value" and var.value:
                    yield (
                        f"{container.name}: env {var.name} is written inline",
                        (*container.path, "env", var.index),
                    )
                elif var.source in ("configMapKeyRef", "configMapRef"):
                    yield f"{container.name}: env {var.name} comes from a ConfigMap", container.path
            for i, arg in enumerate(container.argv):
                flag = arg.split("=", 1)[0]
                if flag in args and ("=" in arg or i + 1 < len(container.argv)):
                    yield f"{container.name}: {flag} given on the command line", container.path
        for message in BackupCredentialsFromSecret._configs(workload):
            yield message, None

    @staticmethod
    def _configs(workload: Workload) -> list[str]:
        found = []
        for _container, config, _path in workload.litestream_configs:
            if config is not None and config.inline_credentials:
                keys = ", ".join(config.inline_credentials)
                found.append(
                    f"litestream config {config.resource.name}/{config.key} contains {keys}"
                )
        return found
