"""bjw-s `app-template` values read as the Kubernetes objects the chart would render.

app-template is a generic chart whose values *are* the pod spec, so when the chart cannot be
rendered (offline, OCI registry out of reach) its values are interpreted directly. Supported:
values schema v3 (chart 3.x) and v4 (chart 4.x; 5.x keeps the same schema for everything read
here), as in `charts/library/common` of bjw-s-labs/helm-charts:

- `controllers.<id>`: `enabled`, `type` (deployment — the default —, statefulset, daemonset,
  cronjob, job), `annotations`, `labels`, `pod` (merged over `defaultPodOptions`),
  `containers` / `initContainers` (`image`, `command`, `args`, `env` as a map or a list,
  `envFrom`, `securityContext`, `resources`), `statefulset.volumeClaimTemplates`;
- `persistence.<id>`: `enabled`, `type` (persistentVolumeClaim — the default —, emptyDir, nfs,
  hostPath, configMap, secret, custom), `existingClaim`, `storageClass`, `accessMode`, `size`,
  `retain`, `globalMounts`, `advancedMounts` (`<controller>.<container>: [...]`), mounted at
  `/<id>` unless a mount says `path`;
- names: the release name (app-template sets `nameOverride` to it), `fullnameOverride`; a
  controller or claim gets `-<id>` appended when there are several (v4: `forceRename`,
  `prefix`, `suffix`; v3: `nameOverride`, and claims always get `-<id>`).

Everything else (services, routes, ingresses, RBAC, raw resources) holds no state and is not
produced. Each object records the values path it came from, so findings point at the
HelmRelease's values (the container, the persistence entry).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

# A synthetic object's field path prefix -> the values path (below `spec.values`) that set it.
ValuesPaths = list[tuple[tuple[str | int, ...], tuple[str | int, ...]]]

_RELEASE_TEMPLATE = re.compile(r"\{\{-?\s*\.Release\.(Name|Namespace)\s*-?\}\}")
_CONTROLLER_KINDS = {
    "deployment": ("apps/v1", "Deployment"),
    "statefulset": ("apps/v1", "StatefulSet"),
    "daemonset": ("apps/v1", "DaemonSet"),
    "cronjob": ("batch/v1", "CronJob"),
    "job": ("batch/v1", "Job"),
}


@dataclass
class Interpreted:
    """One object the chart would render, with the values paths that set its fields."""

    body: dict[str, Any]
    values_path: tuple[str | int, ...]  # the controller or persistence entry
    paths: ValuesPaths = field(default_factory=list)


def is_app_template(chart: str) -> bool:
    """True for a chart reference naming bjw-s app-template (name, OCI or repo URL)."""
    return chart.rstrip("/").rsplit("/", 1)[-1].split(":", 1)[0] == "app-template"


def schema_major(version: str | None) -> int:
    """The values schema of a chart version: 3 for 3.x (and older), else 4."""
    if version:
        match = re.match(r"\s*[v=^~>]*\s*(\d+)", version)
        if match and int(match.group(1)) <= 3:
            return 3
    return 4


def substitute_release(value: Any, release: str, namespace: str) -> Any:
    """`{{ .Release.Name }}` / `{{ .Release.Namespace }}` in every string (other templates stay)."""
    if isinstance(value, str):
        if "{{" not in value:
            return value
        return _RELEASE_TEMPLATE.sub(
            lambda m: release if m.group(1) == "Name" else namespace, value
        )
    if isinstance(value, dict):
        return {k: substitute_release(v, release, namespace) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_release(v, release, namespace) for v in value]
    return value


def interpret(
    values: dict[str, Any], release: str, namespace: str | None, version: str | None
) -> list[Interpreted]:
    """The workloads and claims app-template would render for these values."""
    major = schema_major(version)
    values = substitute_release(values, release, namespace or "default")
    fullname = _fullname(values, release)
    labels = {"app.kubernetes.io/name": release, "app.kubernetes.io/instance": release}
    persistence = _enabled(values.get("persistence"))
    claims = {
        ident: item
        for ident, item in persistence.items()
        if _type(item) == "persistentVolumeClaim" and not item.get("existingClaim")
    }
    claim_names = {
        ident: _claim_name(fullname, ident, item, len(claims), major)
        for ident, item in claims.items()
    }
    out: list[Interpreted] = []
    controllers = _enabled(values.get("controllers"))
    pod_defaults = values.get("defaultPodOptions")
    for ident, controller in controllers.items():
        name = _controller_name(fullname, ident, controller, len(controllers), major)
        out.append(
            _controller(
                ident,
                name,
                controller,
                persistence,
                claim_names,
                labels,
                namespace,
                pod_defaults if isinstance(pod_defaults, dict) else {},
            )
        )
    for ident, item in claims.items():
        out.append(_claim(ident, claim_names[ident], item, labels, namespace))
    return out


# --------------------------------------------------------------------------- names


def _fullname(values: dict[str, Any], release: str) -> str:
    global_values = values.get("global") if isinstance(values.get("global"), dict) else {}
    assert isinstance(global_values, dict)
    override = global_values.get("fullnameOverride") or values.get("fullnameOverride")
    if override:
        return str(override)[:63].rstrip("-")
    name = str(global_values.get("nameOverride") or release)
    full = release if name in release else f"{release}-{name}"
    return full[:63].rstrip("-")


def _resource_name(fullname: str, ident: str, item: dict[str, Any], count: int) -> str:
    """v4 `determineResourceNameFromValues`."""
    if item.get("forceRename"):
        return str(item["forceRename"]).lower()
    name = fullname
    prefix = item.get("prefix")
    if prefix and str(prefix) != name:
        name = f"{prefix}-{name}"
    if count > 1 and not name.endswith(f"-{ident}") and ident != name:
        name = f"{name}-{ident}"
    suffix = item.get("suffix")
    if suffix and not name.endswith(f"-{suffix}"):
        name = f"{name}-{suffix}"
    return name.lower()


def _controller_name(
    fullname: str, ident: str, controller: dict[str, Any], count: int, major: int
) -> str:
    if major >= 4:
        return _resource_name(fullname, ident, controller, count)
    override = controller.get("nameOverride")
    if override:
        return fullname if str(override) == fullname else f"{fullname}-{override}"
    if count > 1 and ident != fullname:
        return f"{fullname}-{ident}"
    return fullname


def _claim_name(fullname: str, ident: str, item: dict[str, Any], count: int, major: int) -> str:
    if major >= 4:
        return _resource_name(fullname, ident, item, count)
    override = item.get("nameOverride")
    if override:
        return fullname if override == "-" else f"{fullname}-{override}"
    return fullname if ident == fullname else f"{fullname}-{ident}"


# --------------------------------------------------------------------------- objects


def _enabled(section: Any) -> dict[str, dict[str, Any]]:
    """The map entries of a values section that are not `enabled: false`."""
    if not isinstance(section, dict):
        return {}
    return {
        str(ident): item
        for ident, item in section.items()
        if isinstance(item, dict) and item.get("enabled", True) not in (False, "false")
    }


def _type(item: dict[str, Any]) -> str:
    return str(item.get("type") or "persistentVolumeClaim")


def _controller(
    ident: str,
    name: str,
    controller: dict[str, Any],
    persistence: dict[str, dict[str, Any]],
    claim_names: dict[str, str],
    labels: dict[str, str],
    namespace: str | None,
    pod_defaults: dict[str, Any],
) -> Interpreted:
    kind_key = str(controller.get("type") or "deployment").lower()
    api_version, kind = _CONTROLLER_KINDS.get(kind_key, _CONTROLLER_KINDS["deployment"])
    values_path: tuple[str | int, ...] = ("controllers", ident)
    pod_values = {**pod_defaults, **(controller.get("pod") or {})}
    template_labels = {**labels, "app.kubernetes.io/controller": ident}
    pod_spec: dict[str, Any] = {}
    for key in ("securityContext", "hostNetwork", "nodeSelector", "serviceAccountName"):
        if key in pod_values:
            pod_spec[key] = pod_values[key]
    paths: ValuesPaths = []
    claim_templates = _claim_templates(controller, labels)
    for key in ("initContainers", "containers"):
        containers: list[dict[str, Any]] = []
        for cident, container in _enabled(controller.get(key)).items():
            spec = _container(cident, container, ident, persistence, claim_templates)
            paths.append(
                (("spec", "template", "spec", key, len(containers)), (*values_path, key, cident))
            )
            containers.append(spec)
        if containers:
            pod_spec[key] = containers
    volumes = list(_volumes(ident, persistence, claim_names))
    for index, volume in enumerate(volumes):
        paths.append(
            (("spec", "template", "spec", "volumes", index), ("persistence", volume["name"]))
        )
    if volumes:
        pod_spec["volumes"] = volumes
    template: dict[str, Any] = {"metadata": {"labels": template_labels}, "spec": pod_spec}
    pod_annotations = pod_values.get("annotations")
    if isinstance(pod_annotations, dict) and pod_annotations:
        template["metadata"]["annotations"] = {str(k): str(v) for k, v in pod_annotations.items()}
    metadata = _metadata(name, namespace, {**labels, **_str_map(controller.get("labels"))})
    annotations = _str_map(controller.get("annotations"))
    if annotations:
        metadata["annotations"] = annotations
    body: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "metadata": metadata}
    if kind == "CronJob":
        schedule = (controller.get("cronjob") or {}).get("schedule", "0 * * * *")
        body["spec"] = {
            "schedule": str(schedule),
            "jobTemplate": {"spec": {"template": template}},
        }
        paths = [
            (("spec", "jobTemplate", "spec", "template", *p[0][2:]), p[1])
            if p[0][:2] == ("spec", "template")
            else p
            for p in paths
        ]
    elif kind == "Job":
        body["spec"] = {"template": template}
    else:
        body["spec"] = {"selector": {"matchLabels": template_labels}, "template": template}
        if kind == "Deployment":
            body["spec"]["strategy"] = _deployment_strategy(controller)
            if "strategy" in controller:
                paths.append((("spec", "strategy"), (*values_path, "strategy")))
        if kind == "StatefulSet" and claim_templates:
            body["spec"]["volumeClaimTemplates"] = [c for c, _ in claim_templates.values()]
    paths.append(((), values_path))
    return Interpreted(body, values_path, paths)


def _deployment_strategy(controller: dict[str, Any]) -> dict[str, Any]:
    """The chart's Deployment strategy: `Recreate` unless the values say otherwise (the
    common library's default), with `rollingUpdate.surge/unavailable` for RollingUpdate."""
    kind = str(controller.get("strategy") or "Recreate")
    strategy: dict[str, Any] = {"type": kind}
    rolling = controller.get("rollingUpdate")
    if kind == "RollingUpdate" and isinstance(rolling, dict):
        keys = {"surge": "maxSurge", "unavailable": "maxUnavailable"}
        given = {keys[k]: v for k, v in rolling.items() if k in keys and v is not None}
        if given:
            strategy["rollingUpdate"] = given
    return strategy


def _claim_templates(
    controller: dict[str, Any], labels: dict[str, str]
) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """name -> (volumeClaimTemplate, its values) of a statefulset controller."""
    found: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    statefulset = controller.get("statefulset")
    templates = statefulset.get("volumeClaimTemplates") if isinstance(statefulset, dict) else None
    for item in templates if isinstance(templates, list) else []:
        if not isinstance(item, dict) or not item.get("name"):
            continue
        if item.get("enabled", True) in (False, "false"):
            continue
        claim = {
            "metadata": {"name": str(item["name"]), "labels": dict(labels)},
            "spec": _claim_spec(item),
        }
        found[str(item["name"])] = (claim, item)
    return found


def _claim_spec(item: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": [str(item.get("accessMode") or "ReadWriteOnce")]}
    if item.get("size") is not None:
        spec["resources"] = {"requests": {"storage": str(item["size"])}}
    storage_class = item.get("storageClass")
    if storage_class:
        spec["storageClassName"] = "" if storage_class == "-" else str(storage_class)
    for key in ("volumeName", "dataSource", "dataSourceRef"):
        if item.get(key):
            spec[key] = item[key]
    return spec


def _claim(
    ident: str, name: str, item: dict[str, Any], labels: dict[str, str], namespace: str | None
) -> Interpreted:
    metadata = _metadata(name, namespace, {**labels, **_str_map(item.get("labels"))})
    annotations = _str_map(item.get("annotations"))
    if item.get("retain"):
        annotations["helm.sh/resource-policy"] = "keep"
    if annotations:
        metadata["annotations"] = annotations
    body = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata,
        "spec": _claim_spec(item),
    }
    values_path: tuple[str | int, ...] = ("persistence", ident)
    paths: ValuesPaths = [
        (("spec", "storageClassName"), (*values_path, "storageClass")),
        (("spec", "resources", "requests", "storage"), (*values_path, "size")),
        (("spec", "accessModes"), (*values_path, "accessMode")),
        ((), values_path),
    ]
    return Interpreted(body, values_path, paths)


def _metadata(name: str, namespace: str | None, labels: dict[str, str]) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "labels": labels}
    if namespace:
        metadata["namespace"] = namespace
    return metadata


def _str_map(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _container(
    ident: str,
    values: dict[str, Any],
    controller: str,
    persistence: dict[str, dict[str, Any]],
    claim_templates: dict[str, tuple[dict[str, Any], dict[str, Any]]],
) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": str(values.get("nameOverride") or ident)}
    image = values.get("image")
    if isinstance(image, dict):
        ref = str(image.get("repository") or "")
        if image.get("tag"):
            ref = f"{ref}:{image['tag']}"
        if image.get("digest"):
            ref = f"{ref}@{image['digest']}"
        spec["image"] = ref
    elif isinstance(image, str):
        spec["image"] = image
    for key in ("command", "args"):
        value = values.get(key)
        if isinstance(value, str):
            spec[key] = [value]
        elif isinstance(value, list):
            spec[key] = [str(v) for v in value]
    env = _env(values.get("env"))
    if env:
        spec["env"] = env
    for key in ("envFrom", "securityContext", "resources", "workingDir"):
        if values.get(key):
            spec[key] = values[key]
    mounts = list(_mounts(controller, ident, persistence, claim_templates))
    if mounts:
        spec["volumeMounts"] = mounts
    return spec


def _env(value: Any) -> list[dict[str, Any]]:
    """app-template env: a list of EnvVars, or a map of name -> value | {value|valueFrom}."""
    if isinstance(value, list):
        return [dict(v) for v in value if isinstance(v, dict) and v.get("name")]
    env: list[dict[str, Any]] = []
    if not isinstance(value, dict):
        return env
    for name, item in value.items():
        if isinstance(item, dict):
            if "valueFrom" in item:
                env.append({"name": str(name), "valueFrom": item["valueFrom"]})
            elif "value" in item:
                env.append({"name": str(name), "value": _env_text(item["value"])})
            else:
                env.append({"name": str(name), "valueFrom": item})  # {secretKeyRef: ...}
        else:
            env.append({"name": str(name), "value": _env_text(item)})
    return env


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _mount_sets(
    persistence: dict[str, dict[str, Any]],
    claim_templates: dict[str, tuple[dict[str, Any], dict[str, Any]]],
    controller: str,
) -> Iterator[tuple[str, dict[str, Any]]]:
    yield from persistence.items()
    for name, (_claim_template, item) in claim_templates.items():
        mounts: dict[str, Any] = {}
        if item.get("globalMounts"):
            mounts["globalMounts"] = item["globalMounts"]
        if item.get("advancedMounts"):
            mounts["advancedMounts"] = {controller: item["advancedMounts"]}
        yield name, mounts


def _mounts(
    controller: str,
    container: str,
    persistence: dict[str, dict[str, Any]],
    claim_templates: dict[str, tuple[dict[str, Any], dict[str, Any]]],
) -> Iterator[dict[str, Any]]:
    """The chart's `volumeMounts` field: globalMounts, plus this container's advancedMounts,
    else one mount at `/<id>` (hostPath: at the host path)."""
    for ident, item in sorted(_mount_sets(persistence, claim_templates, controller)):
        default_path = f"/{ident}"
        if _type(item) == "hostPath" and item.get("hostPath"):
            default_path = str(item["hostPath"])
        global_mounts = item.get("globalMounts")
        advanced = item.get("advancedMounts")
        if global_mounts or advanced:
            mounts = list(global_mounts) if isinstance(global_mounts, list) else []
            if isinstance(advanced, dict):
                per_controller = advanced.get(controller)
                if isinstance(per_controller, dict):
                    extra = per_controller.get(container)
                    mounts.extend(extra if isinstance(extra, list) else [])
            for mount in mounts:
                if not isinstance(mount, dict):
                    continue
                volume_mount: dict[str, Any] = {
                    "name": ident,
                    "mountPath": str(mount.get("path") or default_path),
                }
                for key in ("subPath", "subPathExpr", "readOnly", "mountPropagation"):
                    if mount.get(key):
                        volume_mount[key] = mount[key]
                yield volume_mount
        else:
            yield {"name": ident, "mountPath": default_path}


def _volumes(
    controller: str, persistence: dict[str, dict[str, Any]], claim_names: dict[str, str]
) -> Iterator[dict[str, Any]]:
    """The chart's pod `volumes`: items mounted in this controller (advancedMounts of other
    controllers only do not count)."""
    for ident, item in sorted(persistence.items()):
        has_global = bool(item.get("globalMounts"))
        advanced = item.get("advancedMounts")
        has_advanced = bool(advanced)
        mine = advanced.get(controller) if isinstance(advanced, dict) else None
        if not (has_global or (has_advanced and mine) or (not has_global and not has_advanced)):
            continue
        kind = _type(item)
        volume: dict[str, Any] = {"name": ident}
        if kind == "persistentVolumeClaim":
            claim = item.get("existingClaim") or claim_names.get(ident, ident)
            volume["persistentVolumeClaim"] = {"claimName": str(claim)}
        elif kind == "configMap":
            volume["configMap"] = {"name": str(item.get("name") or item.get("identifier") or "")}
        elif kind == "secret":
            volume["secret"] = {"secretName": str(item.get("name") or item.get("identifier") or "")}
        elif kind == "emptyDir":
            volume["emptyDir"] = {
                k: item[k] for k in ("medium", "sizeLimit") if item.get(k) is not None
            }
        elif kind == "hostPath":
            volume["hostPath"] = {"path": str(item.get("hostPath") or "")}
        elif kind == "nfs":
            volume["nfs"] = {
                "server": str(item.get("server") or ""),
                "path": str(item.get("path") or ""),
            }
        elif kind == "custom" and isinstance(item.get("volumeSpec"), dict):
            volume = {**item["volumeSpec"], "name": ident}
        else:
            volume["emptyDir"] = {}  # an unknown type: the chart refuses it; hold no state
        yield volume
