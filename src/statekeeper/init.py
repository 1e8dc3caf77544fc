"""`statekeeper init`: write a `.statekeeper.yaml` from what the repository holds.

Detection reads the YAML files as they are (no kustomize) and finds:

- StorageClasses (name, reclaimPolicy) and the classes claims ask for. When the built-in
  policy's class of an environment is nowhere in the repository, the config maps that
  environment to the repository's class that fits: a Retain class for production and shared (a
  name with `nfs` for shared), a Delete class for development; names mentioning the
  environment win.
- Namespaces, and the environment each one's `environment` label names.
- Overlay directories (`overlays/<name>/kustomization.yaml`): those whose name the policy
  knows are listed under their environment; the others are left as comments to fill in.

The file is YAML with comments, a starting point to edit; the built-in `elite` policy stays the
base (`extends: elite`).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from statekeeper.policy.model import Policy

CONFIG_FILE = ".statekeeper.yaml"
BASELINE_FILE = ".statekeeper-baseline.json"
_KUSTOMIZATION = ("kustomization.yaml", "kustomization.yml", "Kustomization")


@dataclass
class Detected:
    """What `init` found in a repository."""

    storage_classes: dict[str, str] = field(default_factory=dict)  # name -> reclaimPolicy
    claimed_classes: Counter[str] = field(default_factory=Counter)
    namespaces: dict[str, str | None] = field(default_factory=dict)  # name -> env label
    overlays: list[str] = field(default_factory=list)  # relative POSIX paths
    files: int = 0


def detect(root: Path, policy: Policy) -> Detected:
    """Scan `root` (YAML as written, hidden directories skipped)."""
    from statekeeper.manifests.load import load_sources

    found = Detected()
    loaded = load_sources([str(root)], render=False)
    found.files = len(loaded.sources)
    for resource in loaded.resources:
        body = resource.body
        if resource.kind == "StorageClass":
            found.storage_classes[resource.name] = str(body.get("reclaimPolicy") or "Delete")
        elif resource.kind == "PersistentVolumeClaim":
            spec = body.get("spec")
            name = spec.get("storageClassName") if isinstance(spec, dict) else None
            if isinstance(name, str) and name:
                found.claimed_classes[name] += 1
        elif resource.kind == "Namespace":
            labels = (body.get("metadata") or {}).get("labels") or {}
            label = labels.get(policy.environment_label) if isinstance(labels, dict) else None
            found.namespaces[resource.name] = str(label) if label else None
        if resource.namespace and resource.namespace not in found.namespaces:
            found.namespaces[resource.namespace] = None
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        here = Path(directory)
        if here.parent.name == "overlays" and any(name in files for name in _KUSTOMIZATION):
            found.overlays.append(here.relative_to(root).as_posix())
    found.overlays.sort()
    return found


def _pick_class(env: str, spec_reclaim: str, detected: Detected, taken: set[str]) -> str | None:
    candidates = [
        name
        for name, reclaim in detected.storage_classes.items()
        if reclaim == spec_reclaim and name not in taken
    ]
    if not candidates:
        return None

    def score(name: str) -> tuple[int, int, str]:
        lowered = name.lower()
        hint = {"production": ("prod", "retain"), "development": ("dev", "delete")}.get(
            env, ("nfs", "shared")
        )
        named = any(word in lowered for word in hint)
        return (0 if named else 1, -detected.claimed_classes.get(name, 0), name)

    return sorted(candidates, key=score)[0]


def storage_class_mapping(detected: Detected, policy: Policy) -> dict[str, str]:
    """Environment -> the repository's class, for environments whose built-in class is absent."""
    present = set(detected.storage_classes) | set(detected.claimed_classes)
    mapping: dict[str, str] = {}
    taken = {spec.storage_class for spec in policy.environments.values()} & present
    for env, spec in policy.environments.items():
        if spec.storage_class in present or not detected.storage_classes:
            continue
        choice = _pick_class(env, spec.reclaim_policy, detected, taken)
        if choice is not None:
            mapping[env] = choice
            taken.add(choice)
    return mapping


def render_config(detected: Detected, policy: Policy) -> str:
    """The `.statekeeper.yaml` text for what was detected."""
    import yaml

    def dump(data: Any) -> str:
        return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=100)

    lines = [
        "# statekeeper configuration, written by `statekeeper init`; edit freely.",
        "# Found: "
        f"{len(detected.storage_classes)} StorageClass(es), "
        f"{len(detected.namespaces)} namespace(s), {len(detected.overlays)} overlay(s) "
        f"in {detected.files} YAML file(s).",
        "# Every field is optional; `statekeeper audit --help` and docs/audit.md explain them.",
        "",
    ]
    classes = ", ".join(f"{n} ({r})" for n, r in sorted(detected.storage_classes.items()))
    lines.append(f"# StorageClasses in the repository: {classes or 'none'}")
    policy_data: dict[str, Any] = {"extends": policy.extends or "elite"}
    mapping = storage_class_mapping(detected, policy)
    if mapping:
        policy_data["environments"] = {env: {"storage_class": c} for env, c in mapping.items()}
    labelled = {
        ns: env
        for ns, env in sorted(detected.namespaces.items())
        if env and policy.canonical_environment(env) is not None
    }
    unlabelled = sorted(ns for ns, env in detected.namespaces.items() if not env)
    if labelled:
        policy_data["namespace_environments"] = {
            ns: policy.canonical_environment(env) for ns, env in labelled.items()
        }
    lines.append("# Policy overrides, merged over the built-in policy (as a --policy file).")
    lines.append(dump({"policy": policy_data}).rstrip())
    if unlabelled:
        lines.append(
            "  # Namespaces with no environment label: map them under namespace_environments"
        )
        lines.append(f"  # if overlays do not tell: {', '.join(unlabelled)}")
    lines.append("")
    known: dict[str, list[str]] = {}
    unknown: list[str] = []
    for overlay in detected.overlays:
        env = policy.canonical_environment(Path(overlay).name)
        if env is None:
            unknown.append(overlay)
        else:
            known.setdefault(env, []).append(overlay)
    lines.append("# Overlay directories audited as each environment.")
    if known:
        lines.append(dump({"environments": known}).rstrip())
    else:
        lines.append("environments: {}")
    for overlay in unknown:
        lines.append(f"  # {Path(overlay).name}: [{overlay}]   # which environment is it?")
    lines += [
        "",
        "# Globs (relative to this file) whose objects are not judged.",
        "exclude: []",
        "",
        "# Known findings: `statekeeper audit --write-baseline " + BASELINE_FILE + "` records",
        "# them; later audits report only new ones (a missing file counts as empty).",
        f"baseline: {BASELINE_FILE}",
        "",
        "output:",
        "  format: [text]",
        "  fail-on: error",
        "  color: auto",
        "",
        "# Severity overrides, e.g. SK104: info",
        "severity: {}",
        "",
        "# Where rule links point; {page} is the rule's page, e.g. SK101-storage-class-for-...md",
        "# doc-url: https://github.com/statekeeper/statekeeper/blob/main/docs/rules/{page}",
        "",
    ]
    return "\n".join(lines)
