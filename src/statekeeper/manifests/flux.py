"""Flux `Kustomization`s (kustomize.toolkit.fluxcd.io) applied the way Flux applies them.

A Flux Kustomization deploys `spec.path` of its Git source: its objects are the kustomization
found there (already rendered by `kustomize`, or the files as they are), plus what its
`spec.components` add, all put in `spec.targetNamespace`, then substituted by `postBuild`:
`${VAR}` from `substitute` and from the `substituteFrom` ConfigMaps and Secrets found in the
repo, `${VAR:=default}` / `${VAR:-default}` taking the default, `$${VAR}` staying a literal
`${VAR}`; an object annotated `kustomize.toolkit.fluxcd.io/substitute: disabled` is left alone.
A variable left unresolved stays as written, with one note per Kustomization (names made of it
are never trusted: `is_unresolved`).

Components are rendered once per set of components and namespace (through a temporary
kustomization naming them, with origin annotations, so findings point at the component's
files) and then substituted for each Kustomization using them: a shared backup component
gives every app its own claim.

`spec.path` is relative to the repository root: the root is the nearest folder above the Flux
Kustomization's file that holds the path.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from statekeeper.findings import Note
from statekeeper.manifests.files import kustomization_file, relative_to_cwd
from statekeeper.manifests.resource import Origin, Resource
from statekeeper.manifests.yaml import ReadError, parse_documents

_API = "kustomize.toolkit.fluxcd.io/"
_SUBST = re.compile(r"\$?\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[=-])([^}]*))?\}")
_UNRESOLVED = re.compile(r"(?<!\$)\$\{[A-Za-z_][A-Za-z0-9_]*\}")
SUBSTITUTE_ANNOTATION = "kustomize.toolkit.fluxcd.io/substitute"
CLUSTER_SCOPED = frozenset(
    {"Namespace", "StorageClass", "PersistentVolume", "ClusterRole", "ClusterRoleBinding",
     "CustomResourceDefinition", "PriorityClass", "IngressClass", "VolumeSnapshotClass",
     "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "APIService",
     "CSIDriver", "RuntimeClass", "ClusterIssuer", "ClusterSecretStore"}
)  # fmt: skip


def is_unresolved(text: str) -> bool:
    """True when `text` still holds a Flux `${VAR}` (never build a name from it)."""
    return "${" in text and _UNRESOLVED.search(text) is not None


@dataclass(eq=False)  # keys the maps of apply_flux: one per object, by identity
class _FluxKustomization:
    resource: Resource
    path: Path  # spec.path in the repo
    target_namespace: str | None
    components: tuple[Path, ...]
    post_build: dict[str, Any] | None


def apply_flux(
    resources: list[Resource], notes: list[Note], *, max_bytes: int = 16 * 1024 * 1024
) -> None:
    """Apply every Flux Kustomization of `resources` to the objects under its path (in place)
    and add the objects its components make."""
    found = [k for r in resources if (k := _read(r, notes)) is not None]
    if not found:
        return
    found.sort(key=lambda k: len(str(k.path)), reverse=True)  # the deepest path owns a file
    owners: dict[Resource, _FluxKustomization] = {}
    # What the objects under a path were rendered as (their overlay and environment): the
    # components' objects join them, so that claims and the workloads mounting them meet.
    scope: dict[_FluxKustomization, tuple[str | None, str | None]] = {}
    for resource in resources:
        file = Path(resource.origin.file).absolute()
        for flux in found:
            if file.is_relative_to(flux.path):
                owners[resource] = flux
                scope.setdefault(flux, (resource.origin.overlay, resource.origin.environment))
                break
    variables = {k: _variables(k, resources) for k in found}
    unresolved: dict[_FluxKustomization, set[str]] = {}
    for resource in resources:
        owner = owners.get(resource)
        if owner is None:
            continue
        _apply(resource, owner, variables[owner], unresolved.setdefault(owner, set()))
    rendered: dict[tuple[tuple[Path, ...], str | None], list[Resource] | str] = {}
    added: list[Resource] = []
    for flux in found:
        if not flux.components:
            continue
        key = (flux.components, flux.target_namespace)
        if key not in rendered:
            rendered[key] = _render_components(flux, max_bytes)
        objects = rendered[key]
        origin = flux.resource.origin
        if isinstance(objects, str):
            notes.append(Note(f"Flux Kustomization {flux.resource.name}: {objects}",
                              origin.file, origin.line))  # fmt: skip
            continue
        overlay, environment = scope.get(flux, (None, None))
        for template in objects:
            at = template.origin
            copy = Resource(template.body, replace(at, overlay=overlay, environment=environment))
            _apply(copy, flux, variables[flux], unresolved.setdefault(flux, set()))
            added.append(copy)
    resources.extend(added)
    used = {
        relative_to_cwd(kustomization_file(component))
        for key, objects in rendered.items()
        if not isinstance(objects, str)
        for component in key[0]
    }
    notes[:] = [n for n in notes if not (n.file in used and "Component" in n.message)]
    for flux in found:
        names = unresolved.get(flux)
        if names:
            listed = ", ".join(f"${{{n}}}" for n in sorted(names))
            origin = flux.resource.origin
            notes.append(
                Note(
                    f"Flux Kustomization {flux.resource.name}: postBuild leaves {listed} "
                    "unresolved; kept as written (not found in substitute/substituteFrom)",
                    origin.file,
                    origin.line,
                )
            )


def _read(resource: Resource, notes: list[Note]) -> _FluxKustomization | None:
    if resource.kind != "Kustomization" or not resource.api_version.startswith(_API):
        return None
    spec = resource.body.get("spec")
    if not isinstance(spec, dict) or not isinstance(spec.get("path"), str):
        return None
    relative = spec["path"].strip().removeprefix("./").strip("/")
    start = Path(resource.origin.file).absolute().parent
    path = next(
        (p / relative for p in (start, *start.parents) if relative and (p / relative).is_dir()),
        None,
    )
    if path is None:
        return None  # another repository's path, or the repository root itself
    components = tuple(
        Path(os.path.normpath(path / c))
        for c in spec.get("components") or []
        if isinstance(c, str) and (path / c).is_dir()
    )
    target = spec.get("targetNamespace")
    post = spec.get("postBuild")
    return _FluxKustomization(
        resource, Path(os.path.normpath(path)), str(target) if target else None, components,
        post if isinstance(post, dict) else None,
    )  # fmt: skip


def _variables(flux: _FluxKustomization, resources: Sequence[Resource]) -> dict[str, str] | None:
    """The postBuild variables; None when Flux does not substitute at all (no postBuild)."""
    post = flux.post_build
    if post is None:
        return None
    variables: dict[str, str] = {}
    for ref in post.get("substituteFrom") or []:
        if not isinstance(ref, dict):
            continue
        kind, name = str(ref.get("kind", "")), str(ref.get("name", ""))
        for resource in resources:
            if resource.kind == kind and resource.name == name:
                variables.update(config_data(resource))
                break
    substitute = post.get("substitute")
    if isinstance(substitute, dict):
        variables.update({str(k): str(v) for k, v in substitute.items()})
    return variables


def config_data(resource: Resource) -> dict[str, str]:
    """A ConfigMap's or Secret's data, decoded (`stringData` wins over `data`)."""
    out: dict[str, str] = {}
    secret = resource.kind == "Secret"
    for field_name, encoded in (("data", secret), ("stringData", False)):
        data = resource.body.get(field_name)
        if not isinstance(data, dict):
            continue
        for key, value in data.items():
            text = str(value)
            if encoded:
                try:
                    text = base64.b64decode(text, validate=True).decode("utf-8")
                except (binascii.Error, UnicodeDecodeError):
                    continue
            out[str(key)] = text
    return out


def _apply(
    resource: Resource,
    flux: _FluxKustomization,
    variables: dict[str, str] | None,
    unresolved: set[str],
) -> None:
    body = resource.body
    if flux.target_namespace and resource.kind not in CLUSTER_SCOPED:
        metadata = body.get("metadata")
        if isinstance(metadata, dict):
            body = {**body, "metadata": {**metadata, "namespace": flux.target_namespace}}
    if variables is not None and resource.annotations.get(SUBSTITUTE_ANNOTATION) != "disabled":
        body = substitute(body, variables, unresolved)
    resource.body = body


def substitute(value: Any, variables: dict[str, str], unresolved: set[str]) -> Any:
    """Flux's postBuild substitution on every string of `value` (a copy)."""
    if isinstance(value, str):
        if "${" not in value:
            return value

        def repl(match: re.Match[str]) -> str:
            if match.group(0).startswith("$$"):
                return match.group(0)[1:]  # `$${VAR}` is Flux's escape for a literal `${VAR}`
            name, operator, default = match.group(1), match.group(2), match.group(3)
            if name in variables:
                return variables[name]
            if operator:
                return default or ""
            unresolved.add(name)
            return match.group(0)

        return _SUBST.sub(repl, value)
    if isinstance(value, dict):
        return {k: substitute(v, variables, unresolved) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, variables, unresolved) for v in value]
    return value


def _render_components(flux: _FluxKustomization, max_bytes: int) -> list[Resource] | str:
    """The objects the components add, as kustomize builds them (unsubstituted)."""
    # Imported here, not at the top: only a render pays for them (start-up time).
    import subprocess
    import tempfile

    from statekeeper.manifests import kustomize

    command = kustomize.kustomize_command()
    if command is None:
        return "components not rendered: neither kustomize nor kubectl is on PATH"
    with tempfile.TemporaryDirectory(prefix="statekeeper-flux-") as wrapper:
        lines = ["apiVersion: kustomize.config.k8s.io/v1beta1", "kind: Kustomization",
                 "buildMetadata: [originAnnotations]", "components:"]  # fmt: skip
        for component in flux.components:
            lines.append(f"- {_quote(os.path.relpath(component, wrapper))}")
        if flux.target_namespace:
            lines.append(f"namespace: {_quote(flux.target_namespace)}")
        Path(wrapper, "kustomization.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        try:
            done = subprocess.run(
                [*command, wrapper], capture_output=True, check=False,
                timeout=kustomize.RENDER_TIMEOUT_S, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as err:
            return f"components not rendered: {err}"
        if done.returncode != 0:
            return f"components not rendered: {kustomize.first_error(done.stderr)}"
        try:
            docs = parse_documents(done.stdout, "Flux components (rendered)")
        except ReadError as err:
            return f"components not rendered: {err.reason}"
        mapper = kustomize.SourceMapper(max_bytes)
        fallback_file = relative_to_cwd(flux.resource.origin.file)
        out: list[Resource] = []
        for doc in docs:
            body = doc.data
            if not isinstance(body, dict) or not isinstance(body.get("kind"), str):
                continue
            where = kustomize.pop_origin(body)
            origin = Origin(fallback_file, 0, 1, relative_to_cwd(flux.components[0]), None)
            if where is not None:
                origin = mapper.locate(body, where, Path(wrapper), origin)
            # The app comes from the Flux Kustomization's folder, not the shared component's.
            origin = replace(
                origin,
                flux_kustomization=flux.resource.name,
                source_dir=relative_to_cwd(flux.path),
            )
            out.append(Resource(body, origin))
        return out


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
