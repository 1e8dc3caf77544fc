"""Property: on any small kustomize repo, compliant or not, `fix` never harms and converges.

Random repos (apps with a claim and a Deployment in a shared base, dev/prod overlays, a prod
patch that may grow or shrink a claim, maybe a Velero Schedule) → audit → fix → write. Then,
with real kustomize: every root still renders, no claim in any environment got smaller, a
second fix changes nothing and has nothing left to fix. Examples are few and bounded so the
test stays fast; each runs the same code path as `statekeeper fix`.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statekeeper.fix.audit import audit_findings, audit_tree
from statekeeper.fix.engine import FixResult, fix_tree
from statekeeper.fix.workspace import fingerprint
from statekeeper.generate.strategy import Strategy, load_strategy, parse_quantity

STRATEGY = load_strategy()
CLASSES = [None, "synelia-iscsi-retain", "synelia-iscsi-delete", "local-path"]
SIZES = ["500Mi", "1Gi", "2Gi", "5Gi", "20Gi", "60Gi"]


@st.composite
def app_specs(draw: st.DrawFn, index: int) -> dict[str, Any]:
    name = ["alpha", "bravo", "charlie"][index]
    claim = draw(st.sampled_from([f"{name}-config-pvc", f"{name}-data", "config", f"{name}-cache"]))
    return {
        "name": name,
        "claim": claim,
        "size": draw(st.sampled_from(SIZES)),
        "class": draw(st.sampled_from(CLASSES)),
        "prod_size": draw(st.none() | st.sampled_from(SIZES)),
    }


@st.composite
def repos(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(min_value=1, max_value=3))
    return {
        "apps": [draw(app_specs(i)) for i in range(count)],
        "velero": draw(st.sampled_from(["none", "all", "listed"])),
        "overlay_namespace": draw(st.booleans()),
    }


def write_repo(root: Path, spec: dict[str, Any]) -> None:
    files: dict[str, str] = {}
    apps = spec["apps"]
    for app in apps:
        name, claim = app["name"], app["claim"]
        klass = f"  storageClassName: {app['class']}\n" if app["class"] else ""
        files[f"base/{name}/pvc.yaml"] = (
            f"apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: {claim}\n"
            f"spec:\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n"
            f"      storage: {app['size']}\n{klass}"
        )
        files[f"base/{name}/deployment.yaml"] = (
            f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n"
            f"  labels: {{app.kubernetes.io/name: {name}}}\nspec:\n"
            f"  selector:\n    matchLabels: {{app: {name}}}\n  template:\n"
            f"    metadata:\n      labels: {{app: {name}, app.kubernetes.io/name: {name}}}\n"
            f"    spec:\n      containers:\n        - name: {name}\n          image: nginx:1\n"
            f"          volumeMounts: [{{name: data, mountPath: /srv}}]\n"
            f"      volumes:\n        - name: data\n          persistentVolumeClaim:\n"
            f"            claimName: {claim}\n"
        )
        files[f"base/{name}/namespace.yaml"] = (
            f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n"
        )
        files[f"base/{name}/kustomization.yaml"] = (
            f"namespace: {name}\nresources:\n  - namespace.yaml\n  - pvc.yaml\n"
            "  - deployment.yaml\n"
        )
    files["base/kustomization.yaml"] = "resources:\n" + "".join(f"  - {a['name']}\n" for a in apps)
    for env in ("dev", "prod"):
        text = "resources:\n  - ../../base\n"
        patches = [a for a in apps if env == "prod" and a["prod_size"]]
        if patches:
            text += "patches:\n"
            for app in patches:
                text += (
                    f"  - target:\n      kind: PersistentVolumeClaim\n      name: {app['claim']}\n"
                    "    patch: |-\n      - op: replace\n"
                    "        path: /spec/resources/requests/storage\n"
                    f"        value: {app['prod_size']}\n"
                )
        files[f"overlays/{env}/kustomization.yaml"] = text
    if spec["velero"] != "none":
        included = '["*"]' if spec["velero"] == "all" else "[velero]"
        files["cluster/velero/kustomization.yaml"] = "resources:\n  - schedule.yaml\n"
        files["cluster/velero/schedule.yaml"] = (
            "apiVersion: velero.io/v1\nkind: Schedule\nmetadata:\n  name: daily\n"
            "  namespace: velero\nspec:\n  schedule: '0 3 * * *'\n  template:\n"
            f"    includedNamespaces: {included}\n    snapshotVolumes: true\n"
        )
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def render(kubectl: str, root: Path) -> dict[str, list[dict[str, Any]]]:
    """Every kustomization root of the tree → its documents (asserting that it builds)."""
    out = {}
    for overlay in [root / "overlays/dev", root / "overlays/prod", root / "cluster/velero"]:
        if not overlay.is_dir():
            continue
        done = subprocess.run(
            [kubectl, "kustomize", str(overlay)], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, f"{overlay}: {done.stderr}"
        out[overlay.name] = [d for d in yaml.safe_load_all(done.stdout) if d]
    return out


def sizes(rendered: dict[str, list[dict[str, Any]]]) -> dict[tuple[str, str, str], int]:
    return {
        (env, d["metadata"].get("namespace", ""), d["metadata"]["name"]): parse_quantity(
            d["spec"]["resources"]["requests"]["storage"]
        )
        for env, docs in rendered.items()
        for d in docs
        if d["kind"] == "PersistentVolumeClaim"
    }


def run_fix(root: Path, strategy: Strategy) -> FixResult:
    audited = fingerprint(root)
    outcome = audit_tree(root, strategy.policy, quiet=True)
    return fix_tree(
        root,
        outcome.findings,
        strategy,
        lambda paths: audit_findings(paths, strategy.policy),
        detected=outcome.detected,
        audited=audited,
    )


@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=repos())
def test_fix_never_harms_and_converges(kubectl: str, spec: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory(prefix="sk-property-") as temp:
        root = Path(temp)
        write_repo(root, spec)
        before = render(kubectl, root)

        first = run_fix(root, STRATEGY)
        first.workspace.commit()

        after = render(kubectl, root)  # every root still builds
        old, new = sizes(before), sizes(after)
        for key, size in old.items():
            assert key in new, f"claim {key} disappeared (its data with it)"
            assert new[key] >= size, f"claim {key} shrank: {size} → {new[key]}"

        second = run_fix(root, STRATEGY)
        assert second.workspace.changes() == {}, second.workspace.diff()
        assert second.fixed == []  # nothing fixable left: what remains needs a person
