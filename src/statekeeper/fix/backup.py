"""Fixer for SK201–SK203 (SQLite tier) and SK301 (config tier): give the pod its backup.

* A pod with no backup tooling gets statekeeper's agent (docs/agent-wiring.md): the restore init
  container first, the native sidecar second, both with the SQLite and config paths the audit
  detected, mounting the volumes that hold them; S3 keys by Secret reference only; a ConfigMap
  `<app>-statekeeper` for bucket/endpoint/prefix; Prometheus scrape annotations.
  `--style litestream` writes the strategy's own pattern instead: integrity-check init →
  litestream restore init → litestream sidecar (+ its ConfigMap) and an rclone sidecar.
* A pod whose integrity check runs after its restore (SK202) gets the two init containers
  swapped: the smallest change that restores the Fail-Safe Integrity order.
* A pod with its own litestream/rclone containers that still misses a piece is left alone with
  the reason: adding a second replicator for the same database would be worse than the finding.
"""

from __future__ import annotations

import copy
import posixpath
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from statekeeper import defaults
from statekeeper.errors import InputError
from statekeeper.fix.context import FindingGroup, FixContext, to_ruamel
from statekeeper.fix.sources import SourceDoc
from statekeeper.generate.wiring import (
    AGENT_TERMINATION_GRACE_SECONDS,
    BackupSpec,
    Mount,
    agent_containers,
    agent_init_containers,
    agent_rollout_strategy,
    litestream_config,
    litestream_pattern,
    needs_longer_grace,
    needs_recreate,
    scrape_annotations,
)
from statekeeper.inventory.annotations import pod_template
from statekeeper.inventory.build import read_workload
from statekeeper.inventory.model import Container
from statekeeper.inventory.providers import match_provider

SQLITE_RULES = {"SK201", "SK202", "SK203"}


def fix_workload(ctx: FixContext, groups: list[FindingGroup]) -> None:
    """All backup findings of one workload, fixed together (one coherent pod edit)."""
    first = groups[0]
    rules = {g.rule for g in groups}
    found = _the_pod(ctx, first)
    if isinstance(found, str):
        _refuse(ctx, groups, found)
        return
    doc, data, pod = found
    if _settled_by_existing_backup(ctx, groups, doc, data, pod):
        return
    paths_found = _paths_to_back_up(ctx, first, rules)
    if isinstance(paths_found, str):
        _refuse(ctx, groups, paths_found)
        return
    dbs, configs = paths_found
    app = next((f.app for g in groups for f in g.findings if f.app), None) or first.name
    mounts = _mounts_for(pod, [*dbs, *configs])
    if isinstance(mounts, str):
        _refuse(ctx, groups, mounts)
        return
    try:
        config_map = _ensure_config_map(ctx, doc, app)
    except InputError as exc:
        _refuse(ctx, groups, str(exc))
        return
    spec = BackupSpec(
        app=app,
        sqlite_paths=tuple(dbs),
        config_paths=tuple(configs),
        mounts=tuple(mounts),
        config_map=config_map,
        secret=_known_secret(ctx),
        rclone_interval=ctx.strategy.rclone_interval,
        native_sidecars=ctx.strategy.native_sidecars,
    )
    if ctx.style == "agent":
        _add_agent(pod, spec, data)
        what = "added statekeeper's restore init container and sidecar"
        lifecycle = _fit_agent_lifecycle(pod, data)
        if lifecycle:
            what += ", set " + " and ".join(lifecycle)
    else:
        _add_litestream(ctx, doc, pod, spec, app)
        what = "added integrity check, litestream restore, litestream and rclone sidecars"
    paths = ", ".join([*dbs, *configs])
    for group in groups:
        ctx.done(group, f"{what} ({paths}) in {ctx.show(doc.file)}")
    # The pod cannot start without the Secret, and fix must not write keys into git: say so.
    namespace = f"namespace {first.namespace}" if first.namespace else "the app's namespace"
    ctx.notes.append(
        f"the backup reads its S3 keys from Secret {spec.secret} (AWS_ACCESS_KEY_ID, "
        f"AWS_SECRET_ACCESS_KEY) in {namespace}: create it outside git (SOPS, "
        "External Secrets) before syncing, or the pod will not start"
    )


def _refuse(ctx: FixContext, groups: list[FindingGroup], reason: str) -> None:
    """The workload's findings are fixed together, so they are refused together."""
    for group in groups:
        ctx.refuse(group, reason)


def _settled_by_existing_backup(
    ctx: FixContext,
    groups: list[FindingGroup],
    doc: SourceDoc,
    data: CommentedMap,
    pod: CommentedMap,
) -> bool:
    """True when the pod already has backup containers, and the groups are settled for them:
    the smallest edit that completes them (the integrity check moved first, litestream's init
    containers added), or refused, since a second replicator would fight the first."""
    first = groups[0]
    rules = {g.rule for g in groups}
    roles = {"agent" if c.role.startswith("agent-") else c.role for c in _containers(ctx, data)}
    if "agent" in roles:
        _refuse(
            ctx,
            groups,
            "the pod already runs statekeeper's agent; add the missing paths to its "
            "STATEKEEPER_SQLITE_PATHS / STATEKEEPER_CONFIG_PATHS by hand",
        )
        return True
    if rules == {"SK202"} and _swap_integrity_first(ctx, pod):
        ctx.done(first, f"moved the integrity check before the restore in {ctx.show(doc.file)}")
        return True
    if "litestream" in roles and rules <= {"SK202", "SK203"}:
        dbs = ctx.detected.get((first.kind, first.namespace, first.name), ([], []))[0]
        what = _complete_litestream(ctx, pod, rules, dbs)
        if what is None:
            _refuse(
                ctx,
                groups,
                "the pod's litestream sidecar was not recognised (no `litestream replicate` "
                "container, or no database detected); add the init containers by hand",
            )
            return True
        for group in groups:
            ctx.done(group, f"{what} in {ctx.show(doc.file)}")
        return True
    if "litestream" in roles or "rclone" in roles:
        _refuse(
            ctx,
            groups,
            "the pod already has its own litestream/rclone containers; a second replicator "
            "would fight them — complete that setup by hand",
        )
        return True
    providers = sorted({p for c in _containers(ctx, data) if (p := _provider_of(ctx, c))})
    if providers:
        _refuse(
            ctx,
            groups,
            f"the pod is already protected by backup provider {', '.join(providers)}; a "
            "second replicator would fight it — add the missing paths to its configuration "
            "(docs/providers.md)",
        )
        return True
    return False


def _paths_to_back_up(
    ctx: FixContext, first: FindingGroup, rules: set[str]
) -> tuple[list[str], list[str]] | str:
    """(SQLite paths, config paths) the audit detected for the findings being fixed, or why
    one that a finding needs is unknown (the user names it with an annotation)."""
    dbs, configs = ctx.detected.get((first.kind, first.namespace, first.name), ([], []))
    dbs = dbs if rules & SQLITE_RULES else []
    configs = configs if "SK301" in rules else []
    if rules & SQLITE_RULES and not dbs:
        return "no SQLite path detected; name it with the statekeeper.io/sqlite annotation"
    if "SK301" in rules and not configs:
        return "no config directory detected; name it with statekeeper.io/config-path"
    return dbs, configs


# --- reading the pod ---------------------------------------------------------------------------


def _provider_of(ctx: FixContext, container: Container) -> str | None:
    """The declared backup provider (DataAngel, a user's) a container belongs to, if any."""
    if container.role != "provider":
        return None
    found = match_provider(container, ctx.strategy.policy)
    return found[0].name if found is not None else "unknown"


def _pod_spec(data: CommentedMap) -> CommentedMap | None:
    found = pod_template(data, str(data.get("kind", "")))
    pod = found[0].get("spec") if found is not None else None
    return pod if isinstance(pod, CommentedMap) else None


def _script(container: Any) -> str:
    parts: list[str] = []
    for key in ("command", "args"):
        value = container.get(key) if isinstance(container, dict) else None
        if isinstance(value, list):
            parts += [str(v) for v in value]
    return " ".join(parts)


def _the_pod(
    ctx: FixContext, group: FindingGroup
) -> tuple[SourceDoc, CommentedMap, CommentedMap] | str:
    """The one source document defining the group's workload (editable) and its pod spec, or
    why it cannot be edited."""
    what = f"{group.kind} {group.name}"
    placements = {(p.doc.file, p.doc.index): p.doc for _o, p in
                  ctx.index.locate(group.kind, group.name, group.namespace, None)}  # fmt: skip
    if not placements:
        return f"{what} was not found in the local source files"
    if len(placements) > 1:
        files = ", ".join(sorted({ctx.show(d.file) for d in placements.values()}))
        return f"{what} is defined in several files ({files}); edit by hand"
    (doc,) = placements.values()
    _yfile, data = ctx.edit_doc(doc.file, doc.kind, doc.name)
    pod = _pod_spec(data)
    if pod is None:
        return f"{what} has no pod template in {ctx.show(doc.file)}"
    return doc, data, pod


def _containers(ctx: FixContext, data: CommentedMap) -> list[Container]:
    """The pod's containers (init containers first), each with the role the audit's own
    classification gives it ("litestream", "rclone", "agent-run", ...): fix sees what the audit
    saw. `Container.raw` is the editable mapping."""
    workload = read_workload(data, ctx.strategy.policy)
    return workload.all_containers if workload is not None else []


def _swap_integrity_first(ctx: FixContext, pod: CommentedMap) -> bool:
    """Move an integrity-check init container that runs after the restore to just before it."""
    markers = ctx.strategy.policy.tiers.sqlite.integrity_markers
    init = pod.get("initContainers")
    if not isinstance(init, CommentedSeq):
        return False
    restore = next((i for i, c in enumerate(init) if "restore" in _script(c).split()), None)
    check = next(
        (i for i, c in enumerate(init) if any(m in _script(c) or m in str(c.get("name", ""))
                                              for m in markers)),
        None,
    )  # fmt: skip
    if restore is None or check is None or check < restore:
        return False
    container = init.pop(check)
    init.insert(restore, container)
    return True


def _complete_litestream(
    ctx: FixContext, pod: CommentedMap, rules: set[str], dbs: list[str]
) -> str | None:
    """A pod with a litestream sidecar but no Fail-Safe Integrity init containers gets them,
    built from the sidecar itself (its image, config, environment and mounts)."""
    sidecar = next(
        (c for key in ("containers", "initContainers") for c in pod.get(key) or []
         if "replicate" in _script(c).split() and "litestream" in str(c.get("image", ""))),
        None,
    )  # fmt: skip
    if sidecar is None or not dbs:
        return None
    argv = [str(a) for a in (sidecar.get("args") or [])]
    config = argv[argv.index("-config") + 1] if "-config" in argv[:-1] else None
    shared = {k: sidecar[k] for k in ("envFrom", "env", "volumeMounts") if k in sidecar}
    init = pod.get("initContainers")
    if not isinstance(init, list):
        init = to_ruamel([])
        _insert_before(pod, "containers", "initContainers", init)
    done: list[str] = []
    restore_at = next((i for i, c in enumerate(init) if "restore" in _script(c).split()), None)
    if "SK203" in rules and restore_at is None:
        for offset, db in enumerate(dbs):
            args = ["restore", "-if-db-not-exists", "-if-replica-exists"]
            args += ["-config", config] if config else []
            container = {
                "name": "litestream-restore" if offset == 0 else f"litestream-restore-{offset}",
                "image": str(sidecar.get("image")),
                "args": [*args, db],
                **copy.deepcopy(shared),
            }
            init.append(to_ruamel(container))
        restore_at = len(init) - len(dbs)
        done.append("added the litestream restore init container")
    if "SK202" in rules and not _swap_integrity_first(ctx, pod):
        mounts = sidecar.get("volumeMounts") or []
        spec = BackupSpec(app="", sqlite_paths=tuple(dbs), config_paths=(), mounts=(),
                          config_map="")  # fmt: skip
        check = litestream_pattern(spec, "")[0][0]
        check["volumeMounts"] = copy.deepcopy(
            [m for m in mounts if not str(m.get("mountPath", "")).endswith((".yml", ".yaml"))]
        )
        init.insert(restore_at if restore_at is not None else 0, to_ruamel(check))
        done.append("added the integrity check before the restore")
    elif "SK202" in rules:
        done.append("moved the integrity check before the restore")
    return "; ".join(done) if done else None


def _mounts_for(pod: CommentedMap, paths: list[str]) -> list[Mount] | str:
    """The app containers' mounts holding each path (the longest mount path wins)."""
    mounts: list[Mount] = []
    for path in paths:
        best: Any = None
        for container in pod.get("containers") or []:
            for mount in container.get("volumeMounts") or []:
                mount_path = str(mount.get("mountPath", "")).rstrip("/")
                if (path == mount_path or path.startswith(mount_path + "/")) and (
                    best is None or len(mount_path) > len(str(best.get("mountPath")))
                ):
                    best = mount
        if best is None:
            return f"{path} is not on a mounted volume of the app container"
        found = Mount(str(best["name"]), str(best["mountPath"]), best.get("subPath"))
        if found not in mounts:
            mounts.append(found)
    return mounts


def _known_secret(ctx: FixContext) -> str:
    """The Secret other agent containers in the repo read their S3 keys from, if any."""
    for docs in ctx.index.docs.values():
        for doc in docs:
            for ref in _agent_secret_refs(doc.body):
                return ref
    return defaults.S3_SECRET


def _agent_secret_refs(value: Any) -> list[str]:
    found: list[str] = []
    if isinstance(value, dict):
        if "agent restore" in _script(value) or "agent run" in _script(value):
            for source in value.get("envFrom") or []:
                ref = source.get("secretRef") if isinstance(source, dict) else None
                if isinstance(ref, dict) and ref.get("name"):
                    found.append(str(ref["name"]))
        for item in value.values():
            found += _agent_secret_refs(item)
    elif isinstance(value, list):
        for item in value:
            found += _agent_secret_refs(item)
    return found


# --- writing -----------------------------------------------------------------------------------


def _add_agent(pod: CommentedMap, spec: BackupSpec, data: CommentedMap) -> None:
    init = pod.get("initContainers")
    containers = [to_ruamel(c) for c in agent_init_containers(spec)]
    if isinstance(init, list):
        for offset, container in enumerate(containers):  # restore first: before anything else
            init.insert(offset, container)
    else:
        _insert_before(pod, "containers", "initContainers", to_ruamel(containers))
    pod.setdefault("containers", CommentedSeq()).extend(to_ruamel(agent_containers(spec)))
    found = pod_template(data, str(data.get("kind", "")))
    template = found[0] if found is not None else None
    if not isinstance(template, CommentedMap):
        return
    meta = template.get("metadata")
    if meta is None:
        meta = CommentedMap()
        template.insert(0, "metadata", meta)
    annotations = meta.get("annotations")
    if annotations is None:
        annotations = CommentedMap()
        meta["annotations"] = annotations
    for key, value in scrape_annotations().items():
        annotations.setdefault(key, to_ruamel(value))


def _fit_agent_lifecycle(pod: CommentedMap, data: CommentedMap) -> list[str]:
    """What the agent's lease and final flush need from the workload (docs/agent-wiring.md),
    changed only where the workload falls short: a grace period of at least 40 s, and for a
    Deployment a strategy without surge (Recreate; an explicit Recreate or a RollingUpdate with
    maxSurge 0 is kept). Returns what was changed, for the report."""
    changed: list[str] = []
    grace = pod.get("terminationGracePeriodSeconds")
    if needs_longer_grace(grace):
        if "terminationGracePeriodSeconds" in pod:
            pod["terminationGracePeriodSeconds"] = AGENT_TERMINATION_GRACE_SECONDS
        else:
            _insert_before(pod, "initContainers", "terminationGracePeriodSeconds",
                           AGENT_TERMINATION_GRACE_SECONDS)  # fmt: skip
        changed.append(f"terminationGracePeriodSeconds {AGENT_TERMINATION_GRACE_SECONDS}")
    spec = data.get("spec")
    is_deployment = data.get("kind") == "Deployment" and isinstance(spec, CommentedMap)
    if is_deployment and _set_recreate(spec):
        changed.append("strategy Recreate")
    return changed


def _set_recreate(spec: CommentedMap) -> bool:
    """Give a Deployment spec `strategy: {type: Recreate}` unless its strategy already stops the
    old pod first; True if it changed."""
    if not needs_recreate(spec.get("strategy")):
        return False
    # A fresh mapping: a Recreate strategy must not keep a `rollingUpdate` block.
    strategy = to_ruamel(agent_rollout_strategy())
    if "strategy" in spec:
        spec["strategy"] = strategy
    else:
        anchor = "selector" if "selector" in spec else "template"
        _insert_before(spec, anchor, "strategy", strategy)
    return True


def fix_rollout(ctx: FixContext, group: FindingGroup) -> None:
    """SK107: a Deployment mounting a ReadWriteOnce claim gets `strategy: Recreate` where it is
    defined (an overlay patch setting another strategy would win: the re-audit then keeps the
    finding, and the edit is dropped)."""
    if group.kind != "Deployment":
        ctx.refuse(group, f"only Deployments have a rollout strategy to set ({group.kind})")
        return
    found = _the_pod(ctx, group)
    if isinstance(found, str):
        ctx.refuse(group, found)
        return
    doc, data, _pod = found
    spec = data.get("spec")
    if not isinstance(spec, CommentedMap):
        ctx.refuse(group, f"Deployment {group.name} has no spec in {ctx.show(doc.file)}")
        return
    if _set_recreate(spec):
        ctx.done(group, f"strategy Recreate in {ctx.show(doc.file)}")
    else:
        ctx.done(group, f"strategy already stops the old pod first in {ctx.show(doc.file)}")


def _add_litestream(
    ctx: FixContext, doc: SourceDoc, pod: CommentedMap, spec: BackupSpec, app: str
) -> None:
    config_map = f"{app}-litestream"
    init, sidecars, volume = litestream_pattern(spec, config_map)
    existing = pod.get("initContainers")
    if isinstance(existing, list):
        for offset, container in enumerate(init):
            existing.insert(offset, to_ruamel(container))
    elif init:
        _insert_before(pod, "containers", "initContainers", to_ruamel(init))
    pod.setdefault("containers", CommentedSeq()).extend(to_ruamel(sidecars))
    if spec.sqlite_paths:
        pod.setdefault("volumes", CommentedSeq()).append(to_ruamel(volume))
        _add_resource(ctx, doc, config_map, {"litestream.yml": litestream_config(spec)},
                      "litestream-configmap.yaml", literal_keys=True)  # fmt: skip


def _insert_before(mapping: CommentedMap, before: str, key: str, value: Any) -> None:
    keys = list(mapping.keys())
    position = keys.index(before) if before in keys else len(keys)
    mapping.insert(position, key, value)


def _ensure_config_map(ctx: FixContext, doc: SourceDoc, app: str) -> str:
    """`<app>-statekeeper` with bucket, endpoint and prefix; reuses one that exists. Bucket and
    endpoint are copied from another app's statekeeper ConfigMap when the repo has one."""
    name = f"{app}-statekeeper"
    for docs in ctx.index.docs.values():
        if any(d.kind == "ConfigMap" and d.name == name for d in docs):
            return name
    bucket, endpoint = defaults.S3_BUCKET, defaults.S3_ENDPOINT
    for docs in ctx.index.docs.values():
        for other in docs:
            values = other.body.get("data") if other.kind == "ConfigMap" else None
            if isinstance(values, dict) and "STATEKEEPER_BUCKET" in values:
                bucket = str(values["STATEKEEPER_BUCKET"])
                endpoint = str(values.get("STATEKEEPER_S3_ENDPOINT", endpoint))
                break
    data = {
        "STATEKEEPER_BUCKET": bucket,
        "STATEKEEPER_S3_ENDPOINT": endpoint,
        "STATEKEEPER_PREFIX": app,
    }
    _add_resource(ctx, doc, name, data, "statekeeper-configmap.yaml")
    return name


def _add_resource(
    ctx: FixContext,
    doc: SourceDoc,
    name: str,
    values: dict[str, str],
    filename: str,
    *,
    literal_keys: bool = False,
) -> None:
    """A ConfigMap next to the workload: a new file listed in the workload's kustomization just
    before the workload's own file, or a new document in the workload's file."""
    from statekeeper.generate.yamlout import dump_documents, literal

    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": {k: literal(v) if literal_keys else v for k, v in values.items()},
    }
    kust = ctx.index.kustomizations.get(doc.file.parent)
    if kust is None or doc.file not in kust.resource_files:
        ctx.workspace.load(doc.file).append_document(to_ruamel(body))
        return
    target = doc.file.parent / filename
    if target.exists() or target.resolve() in ctx.workspace.new_files:
        target = doc.file.parent / f"{name}-configmap.yaml"
    ctx.workspace.create(target, dump_documents([body]))
    kdata = ctx.edit_first(kust.file)
    resources = kdata.get("resources")
    if not isinstance(resources, list):
        raise InputError(f"{ctx.show(kust.file)} has no resources list to add {target.name} to")
    entry = posixpath.relpath(doc.file, kust.dir).replace("\\", "/")
    names = [str(r) for r in resources]
    position = names.index(entry) if entry in names else len(names)
    resources.insert(position, target.name)


def fix_config_mount(ctx: FixContext, group: FindingGroup) -> None:
    """SK204: a litestream container that reads its config without mounting it gets the mount
    the pod's other litestream container uses for that config. Other SK204 cases (the config's
    paths differ from the databases) need a person's decision."""
    found = _the_pod(ctx, group)
    if isinstance(found, str):
        ctx.refuse(group, found)
        return
    doc, data, _pod = found
    containers = [c.raw for c in _containers(ctx, data) if c.role == "litestream"]
    config_mounts = [
        m
        for c in containers
        for m in c.get("volumeMounts") or []
        if str(m.get("mountPath", "")).endswith((".yml", ".yaml"))
        or "litestream" in str(m.get("mountPath", ""))
    ]
    if not config_mounts:
        ctx.refuse(group, "no container of the pod mounts a litestream config to copy; "
                          "mount the config in every litestream container by hand")  # fmt: skip
        return
    template = config_mounts[0]
    added = []
    for container in containers:
        mounts = container.get("volumeMounts")
        paths = {str(m.get("mountPath")) for m in mounts or []}
        if str(template["mountPath"]) in paths:
            continue
        if mounts is None:
            mounts = to_ruamel([])
            container["volumeMounts"] = mounts
        mounts.append(to_ruamel({k: template[k] for k in template}))
        added.append(str(container.get("name")))
    if not added:
        ctx.refuse(group, "every litestream container mounts the config already; the config's "
                          "database paths need a person's decision")  # fmt: skip
        return
    ctx.done(group, f"mounted {template['mountPath']} in {', '.join(added)} "
                    f"({ctx.show(doc.file)})")  # fmt: skip
