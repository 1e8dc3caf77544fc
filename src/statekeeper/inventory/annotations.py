"""The `statekeeper.io/*` annotations, and where a workload's pod template is.

One place for both: the inventory reads the annotations of a workload and of its pod template,
the engine and SK001 read them to honour exemptions, and fix edits the pod template.
"""

from __future__ import annotations

from typing import Any

from statekeeper.manifests.resource import Resource

ANNOTATION_SQLITE = "statekeeper.io/sqlite"
ANNOTATION_CONFIG_PATH = "statekeeper.io/config-path"
ANNOTATION_BACKUP = "statekeeper.io/backup"
ANNOTATION_IGNORE = "statekeeper.io/ignore"

FieldPath = tuple[str | int, ...]


def pod_template_path(kind: str) -> FieldPath:
    """Where a workload of `kind` keeps its pod template (metadata + spec): `()` for a Pod
    (the Pod is its own template)."""
    if kind == "Pod":
        return ()
    if kind == "CronJob":
        return ("spec", "jobTemplate", "spec", "template")
    return ("spec", "template")  # Deployment, StatefulSet, DaemonSet, Job, ReplicaSet, …


def pod_template(body: Any, kind: str) -> tuple[dict[str, Any], FieldPath] | None:
    """The pod template of a workload document and its path, if it has one."""
    path = pod_template_path(kind)
    if not isinstance(body, dict):
        return None
    template: Any = body
    for key in path:
        template = template.get(key) if isinstance(template, dict) else None
    return (template, path) if isinstance(template, dict) else None


def template_annotations(resource: Resource) -> dict[str, str]:
    """The annotations of a workload's pod template (empty for a Pod, whose own annotations are
    its template's)."""
    found = pod_template(resource.body, resource.kind)
    if found is None or resource.kind == "Pod":
        return {}
    metadata = found[0].get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    if not isinstance(annotations, dict):
        return {}
    return {str(k): str(v) for k, v in annotations.items()}


def subject_annotations(resource: Resource) -> dict[str, str]:
    """The annotations that may exempt a resource or configure its backup: its own over its
    pod template's."""
    return {**template_annotations(resource), **resource.annotations}
