"""Each fixer on small trees, fed the findings the audit would report for them.

The golden tests (test_golden.py) run the real audit end to end; these pin the fixers' decisions,
especially what they refuse and why.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from statekeeper.findings import Finding, Severity
from statekeeper.fix.engine import FixResult, plan_fixes
from statekeeper.fix.pvc_name import proposed_name
from statekeeper.fix.workspace import ChangedOnDisk
from statekeeper.generate.strategy import Strategy, load_strategy


@pytest.fixture(scope="module")
def strategy() -> Strategy:
    return load_strategy()


def finding(rule: str, kind: str, namespace: str | None, name: str, env: str, app: str) -> Finding:
    return Finding(
        rule=rule, slug=rule.lower(), severity=Severity.ERROR, message="m", remediation="r",
        kind=kind, name=name, namespace=namespace, app=app, environment=env,
    )  # fmt: skip


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def snapshot(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in root.rglob("*") if p.is_file()}


def render(kubectl: str, overlay: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [kubectl, "kustomize", str(overlay)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


PVC = """\
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {name}
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 1Gi
"""
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  selector:
    matchLabels: {{app: app}}
  template:
    metadata:
      labels: {{app: app}}
    spec:
      containers:
        - name: app
          image: example/app:1
          env:
            - name: DB
              value: /data/app.db
          volumeMounts:
            - name: data
              mountPath: /data
      volumes:
        - name: data
          persistentVolumeClaim:
            claimName: {claim}
"""
KUSTOMIZATION = """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: apps
resources:
  - pvc.yaml
  - deployment.yaml
"""


def overlay(env: str) -> str:
    return (
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"# the {env} environment\nresources:\n  - ../../base\n"
    )


def small_tree(root: Path, claim: str = "app-data-pvc") -> None:
    write(
        root,
        {
            "base/kustomization.yaml": KUSTOMIZATION,
            "base/pvc.yaml": PVC.format(name=claim),
            "base/deployment.yaml": DEPLOYMENT.format(claim=claim),
            "overlays/dev/kustomization.yaml": overlay("dev"),
            "overlays/prod/kustomization.yaml": overlay("prod"),
        },
    )


def both(rule: str, kind: str, name: str) -> list[Finding]:
    return [finding(rule, kind, "apps", name, env, "app") for env in ("development", "production")]


def test_storage_class_is_a_migration_set_in_each_overlay_not_base(
    tmp_path: Path, strategy: Strategy, kubectl: str
) -> None:
    """storageClassName is immutable on a bound claim: the class goes on a new claim created
    beside the old one (which keeps its data and its class), set per overlay, never in base."""
    small_tree(tmp_path)
    result = plan_fixes(tmp_path, both("SK106", "PersistentVolumeClaim", "app-data-pvc"), strategy)
    assert not result.cannot
    changed = {result.workspace.display(p) for p in result.workspace.changes()}
    assert changed == {
        "overlays/dev/kustomization.yaml",
        "overlays/prod/kustomization.yaml",
        "base/pvc.yaml",
        "base/deployment.yaml",
        "base/MIGRATION-app-data-v2-pvc.md",
    }
    result.workspace.commit()
    assert "storageClassName" not in (tmp_path / "base/pvc.yaml").read_text()
    for env, canonical in (("dev", "development"), ("prod", "production")):
        docs = render(kubectl, tmp_path / "overlays" / env)
        claims = {d["metadata"]["name"]: d for d in docs if d["kind"] == "PersistentVolumeClaim"}
        assert "storageClassName" not in claims["app-data-pvc"]["spec"]  # unchanged in place
        assert (
            "SK106: replaced by app-data-v2-pvc"
            in (claims["app-data-pvc"]["metadata"]["annotations"]["statekeeper.io/ignore"])
        )
        new_class = claims["app-data-v2-pvc"]["spec"]["storageClassName"]
        assert new_class == strategy.environments[canonical].storage_class
        (deploy,) = [d for d in docs if d["kind"] == "Deployment"]
        volume = deploy["spec"]["template"]["spec"]["volumes"][0]
        assert volume["persistentVolumeClaim"]["claimName"] == "app-data-v2-pvc"
    note = (tmp_path / "base/MIGRATION-app-data-v2-pvc.md").read_text()
    assert "cp -a /old/. /new/" in note


def test_rename_creates_the_new_claim_beside_the_old_and_writes_migration_note(
    tmp_path: Path, strategy: Strategy, kubectl: str
) -> None:
    small_tree(tmp_path, claim="data")
    (tmp_path / "overlays/prod/kustomization.yaml").write_text(
        overlay("prod")
        + "patches:\n  - target:\n      kind: PersistentVolumeClaim\n      name: data\n"
        "    patch: |-\n      - op: replace\n        path: /spec/resources/requests/storage\n"
        "        value: 2Gi\n"
    )
    result = plan_fixes(tmp_path, both("SK103", "PersistentVolumeClaim", "data"), strategy)
    assert not result.cannot, result.cannot
    result.workspace.commit()
    note = tmp_path / "base" / "MIGRATION-app-data-pvc.md"
    assert '"claimName":"data"' in note.read_text()
    assert "delete pvc" not in note.read_text()
    assert any("MIGRATION-app-data-pvc.md" in n for n in result.notes)
    prod = render(kubectl, tmp_path / "overlays" / "prod")
    claims = {d["metadata"]["name"]: d for d in prod if d["kind"] == "PersistentVolumeClaim"}
    assert set(claims) == {"data", "app-data-pvc"}  # the old one stays, with its data
    for claim in claims.values():  # the patch is copied, not moved: both keep 2Gi
        assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"
    (deploy,) = [d for d in prod if d["kind"] == "Deployment"]
    volume = deploy["spec"]["template"]["spec"]["volumes"][0]
    assert volume["persistentVolumeClaim"]["claimName"] == "app-data-pvc"


@pytest.mark.parametrize(
    ("app", "old", "new"),
    [
        ("mealie", "mealie-data", "mealie-data-pvc"),
        ("mealie", "data-mealie", "mealie-data-pvc"),
        ("home-assistant", "home-assistant-config", "home-assistant-config-pvc"),
        ("app", "pvc-app", "app-data-pvc"),
        ("app", "app_cache_volume", "app-cache-pvc"),
        # The app is not repeated in the purpose.
        ("authentik-server", "authentik-data", "authentik-server-data-pvc"),
        ("authentik-server", "authentik-server-authentik-data", "authentik-server-data-pvc"),
    ],
)
def test_proposed_name(app: str, old: str, new: str) -> None:
    assert proposed_name(app, old) == new


def test_rename_refused_when_helm_values_name_the_claim(tmp_path: Path, strategy: Strategy) -> None:
    small_tree(tmp_path, claim="data")
    write(tmp_path, {"charts/app-values.yaml": "persistence:\n  existingClaim: data\n"})
    before = snapshot(tmp_path)
    result = plan_fixes(tmp_path, both("SK103", "PersistentVolumeClaim", "data"), strategy)
    assert [c.reason for c in result.cannot] == [
        "PVC data is also named in charts/app-values.yaml, which is not a Kubernetes manifest "
        "(Helm values?); rename it there and in the chart by hand"
    ]
    assert result.workspace.diff() == ""
    result.workspace.commit()
    assert snapshot(tmp_path) == before


def test_rename_refused_when_fixing_a_single_file(tmp_path: Path, strategy: Strategy) -> None:
    """`fix base/pvc.yaml` cannot see the Deployment's claimName: renaming would break it."""
    small_tree(tmp_path, claim="data")
    before = snapshot(tmp_path)
    findings = both("SK103", "PersistentVolumeClaim", "data")
    result = plan_fixes(tmp_path / "base" / "pvc.yaml", findings, strategy)
    assert [c.reason for c in result.cannot] == [
        "moving a claim to a new one must update every reference to it, in other files too: "
        "run fix on the repository's directory"
    ]
    assert result.workspace.diff() == ""
    result.workspace.commit()
    assert snapshot(tmp_path) == before


def test_rename_in_a_lone_base_without_overlays(tmp_path: Path, strategy: Strategy) -> None:
    """`fix base/` (a kustomization no overlay uses) is audited as plain files: the fixer
    finds the claim there too, instead of saying it is not in the local source files."""
    small_tree(tmp_path, claim="data")
    base = tmp_path / "base"
    findings = [finding("SK103", "PersistentVolumeClaim", None, "data", "production", "app")]
    result = plan_fixes(base, findings, strategy)
    assert not result.cannot, result.cannot
    result.workspace.commit()
    assert "name: app-data-pvc" in (base / "pvc.yaml").read_text()
    assert "name: data\n" in (base / "pvc.yaml").read_text()  # kept beside it
    assert "claimName: app-data-pvc" in (base / "deployment.yaml").read_text()


def test_claim_from_remote_base_is_not_fixable(tmp_path: Path, strategy: Strategy) -> None:
    write(
        tmp_path,
        {
            "overlays/prod/kustomization.yaml": (
                "resources:\n  - https://github.com/example/apps//base?ref=v1.0.0\n"
            )
        },
    )
    result = plan_fixes(
        tmp_path,
        [finding("SK106", "PersistentVolumeClaim", "apps", "app-data-pvc", "production", "app")],
        strategy,
    )
    (cannot,) = result.cannot
    assert "remote base https://github.com/example/apps//base?ref=v1.0.0 cannot be edited" in (
        cannot.reason
    )
    assert result.workspace.changes() == {}


def test_anchored_file_is_refused_and_other_fixes_go_ahead(
    tmp_path: Path, strategy: Strategy
) -> None:
    small_tree(tmp_path, claim="app-data-pvc")
    # An anchor on the Deployment labels, aliased by the pod template labels.
    anchored = (
        DEPLOYMENT.format(claim="app-data-pvc")
        .replace("  name: app\n", "  name: app\n  labels: &labels {app: app}\n", 1)
        .replace("      labels: {app: app}\n", "      labels: *labels\n")
    )
    (tmp_path / "base" / "deployment.yaml").write_text(anchored)
    findings = [
        *both("SK201", "Deployment", "app"),
        finding("SK401", "Namespace", None, "apps", "production", "app"),
    ]
    detected = {("Deployment", "apps", "app"): (["/data/app.db"], [])}
    result = plan_fixes(tmp_path, findings, strategy, detected=detected)
    (cannot,) = result.cannot
    assert cannot.rule == "SK201"
    assert "base/deployment.yaml: document 1 uses YAML anchors/aliases" in cannot.reason
    assert {f.rule for f in result.fixed} == {"SK401"}
    changed = {result.workspace.display(p) for p in result.workspace.changes()}
    assert "base/deployment.yaml" not in changed
    assert "base/statekeeper-configmap.yaml" not in changed  # rolled back with the pod edit


def test_file_changed_between_audit_and_write(tmp_path: Path, strategy: Strategy) -> None:
    small_tree(tmp_path)
    result = plan_fixes(tmp_path, both("SK106", "PersistentVolumeClaim", "app-data-pvc"), strategy)
    prod = tmp_path / "overlays/prod/kustomization.yaml"
    prod.write_text(prod.read_text() + "# edited by someone else\n")
    before = snapshot(tmp_path)
    with pytest.raises(ChangedOnDisk, match=r"overlays/prod/kustomization\.yaml changed while fix"):
        result.workspace.commit()
    assert snapshot(tmp_path) == before


def _agent_pod(result: FixResult, kubectl: str, root: Path) -> dict[str, Any]:
    result.workspace.commit()
    docs = render(kubectl, root / "overlays" / "prod")
    (deploy,) = [d for d in docs if d["kind"] == "Deployment"]
    assert any(d["kind"] == "ConfigMap" for d in docs)
    pod: dict[str, Any] = deploy["spec"]["template"]["spec"]
    return pod


def test_agent_added_with_detected_paths(tmp_path: Path, strategy: Strategy, kubectl: str) -> None:
    small_tree(tmp_path)
    detected = {("Deployment", "apps", "app"): (["/data/app.db"], [])}
    findings = [*both("SK201", "Deployment", "app"), *both("SK203", "Deployment", "app")]
    result = plan_fixes(tmp_path, findings, strategy, detected=detected)
    assert not result.cannot
    pod = _agent_pod(result, kubectl, tmp_path)
    restore, sidecar = pod["initContainers"]
    assert restore["args"] == ["agent", "restore"] and sidecar["args"] == ["agent", "run"]
    assert sidecar["restartPolicy"] == "Always"
    env = {e["name"]: e["value"] for e in restore["env"]}
    assert env == {"STATEKEEPER_SQLITE_PATHS": "/data/app.db"}
    assert restore["volumeMounts"] == [{"name": "data", "mountPath": "/data"}]
    assert {"secretRef": {"name": "statekeeper-s3"}} in restore["envFrom"]
    assert any("Secret statekeeper-s3" in n and "namespace apps" in n for n in result.notes)


Detected = dict[tuple[str, str | None, str], tuple[list[str], list[str]]]


def app_db_detected() -> Detected:
    """What the audit detects in small_tree's Deployment: one database, no config directory."""
    return {("Deployment", "apps", "app"): (["/data/app.db"], [])}


def test_agent_gets_grace_period_and_recreate(
    tmp_path: Path, strategy: Strategy, kubectl: str
) -> None:
    """The lease and the final flush: Kubernetes' defaults (30 s, RollingUpdate with 25% surge)
    are replaced, and the report says so."""
    small_tree(tmp_path)
    detected = app_db_detected()
    result = plan_fixes(tmp_path, both("SK201", "Deployment", "app"), strategy, detected=detected)
    assert not result.cannot
    assert all("terminationGracePeriodSeconds 40 and strategy Recreate" in d.what
               for d in result.fixed)  # fmt: skip
    result.workspace.commit()
    (deploy,) = [d for d in render(kubectl, tmp_path / "overlays" / "prod")
                 if d["kind"] == "Deployment"]  # fmt: skip
    assert deploy["spec"]["strategy"] == {"type": "Recreate"}
    assert deploy["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 40


@pytest.mark.parametrize(
    ("strategy_yaml", "grace", "expected_strategy", "expected_grace"),
    [
        # A surging RollingUpdate deadlocks: replaced, without a leftover rollingUpdate block.
        ("{type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}", 10,
         {"type": "Recreate"}, 40),
        ("{type: RollingUpdate, rollingUpdate: {maxSurge: 25%}}", 30, {"type": "Recreate"}, 40),
        # The user's own choices that already work are kept.
        ("{type: Recreate}", 120, {"type": "Recreate"}, 120),
        ("{type: RollingUpdate, rollingUpdate: {maxSurge: 0, maxUnavailable: 1}}", 40,
         {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}, 40),
    ],
)  # fmt: skip
def test_agent_keeps_workable_strategy_and_grace(
    tmp_path: Path,
    strategy: Strategy,
    kubectl: str,
    strategy_yaml: str,
    grace: int,
    expected_strategy: dict[str, Any],
    expected_grace: int,
) -> None:
    small_tree(tmp_path)
    deployment = tmp_path / "base" / "deployment.yaml"
    text = deployment.read_text()
    text = text.replace("  selector:\n", f"  strategy: {strategy_yaml}\n  selector:\n")
    grace_line = f"      terminationGracePeriodSeconds: {grace}\n"
    text = text.replace("    spec:\n      containers:", f"    spec:\n{grace_line}      containers:")
    deployment.write_text(text)
    detected = app_db_detected()
    result = plan_fixes(tmp_path, both("SK201", "Deployment", "app"), strategy, detected=detected)
    assert not result.cannot
    result.workspace.commit()
    (deploy,) = [d for d in render(kubectl, tmp_path / "overlays" / "prod")
                 if d["kind"] == "Deployment"]  # fmt: skip
    assert deploy["spec"]["strategy"] == expected_strategy
    assert deploy["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == expected_grace
    changed = expected_strategy != yaml.safe_load(strategy_yaml) or expected_grace != grace
    assert all(("set " in d.what) == changed for d in result.fixed)


@pytest.mark.parametrize(
    ("strategy_yaml", "expected"),
    [
        (None, {"type": "Recreate"}),
        ("{type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}",
         {"type": "Recreate"}),
    ],
)  # fmt: skip
def test_sk107_sets_recreate_in_the_base(
    tmp_path: Path,
    strategy: Strategy,
    kubectl: str,
    strategy_yaml: str | None,
    expected: dict[str, Any],
) -> None:
    small_tree(tmp_path)
    if strategy_yaml:
        deployment = tmp_path / "base" / "deployment.yaml"
        text = deployment.read_text()
        deployment.write_text(
            text.replace("  selector:\n", f"  strategy: {strategy_yaml}\n  selector:\n")
        )
    result = plan_fixes(tmp_path, both("SK107", "Deployment", "app"), strategy)
    assert not result.cannot
    assert [d.what for d in result.fixed] == ["strategy Recreate in base/deployment.yaml"]
    result.workspace.commit()
    for env in ("dev", "prod"):
        (deploy,) = [d for d in render(kubectl, tmp_path / "overlays" / env)
                     if d["kind"] == "Deployment"]  # fmt: skip
        assert deploy["spec"]["strategy"] == expected


def test_sk107_refuses_a_statefulset(tmp_path: Path, strategy: Strategy) -> None:
    small_tree(tmp_path)
    result = plan_fixes(tmp_path, both("SK107", "StatefulSet", "app"), strategy)
    assert not result.fixed
    assert all("only Deployments" in c.reason for c in result.cannot)


def test_pod_protected_by_another_provider_is_not_given_a_second_one(
    tmp_path: Path, strategy: Strategy
) -> None:
    """A DataAngel native sidecar that misses a database: fix must not add the agent beside it
    (two replicators of one file), and says where to add the path."""
    small_tree(tmp_path)
    deployment = tmp_path / "base" / "deployment.yaml"
    sidecar = (
        "      initContainers:\n"
        "        - name: dataangel\n"
        "          image: charchess/dataangel:0.4.0\n"
        "          command: [./dataangel]\n"
        "          restartPolicy: Always\n"
        "          env: [{name: DATA_GUARD_SQLITE_PATHS, value: /data/other.db}]\n"
    )
    deployment.write_text(
        deployment.read_text().replace(
            "    spec:\n      containers:", f"    spec:\n{sidecar}      containers:"
        )
    )
    before = snapshot(tmp_path)
    result = plan_fixes(tmp_path, both("SK201", "Deployment", "app"), strategy,
                        detected=app_db_detected())  # fmt: skip
    assert not result.fixed
    assert result.cannot
    assert all(
        c.reason.startswith("the pod is already protected by backup provider dataangel")
        for c in result.cannot
    )
    result.workspace.commit()
    assert snapshot(tmp_path) == before


def test_litestream_style_leaves_strategy_and_grace_alone(
    tmp_path: Path, strategy: Strategy
) -> None:
    """Only the agent holds a lease; the plain pattern changes nothing outside its containers."""
    small_tree(tmp_path)
    detected = app_db_detected()
    result = plan_fixes(
        tmp_path, both("SK201", "Deployment", "app"), strategy, detected=detected,
        style="litestream",
    )  # fmt: skip
    result.workspace.commit()
    text = (tmp_path / "base" / "deployment.yaml").read_text()
    assert "strategy" not in text and "terminationGracePeriodSeconds" not in text


def test_containers_recognised_as_the_audit_recognises_them(
    tmp_path: Path, strategy: Strategy, kubectl: str
) -> None:
    """An exporter whose image merely contains "rclone" is no rclone sidecar for the audit (it
    reports SK301/SK201), so fix must not refuse the pod as already having its own tooling."""
    small_tree(tmp_path)
    deployment = tmp_path / "base" / "deployment.yaml"
    deployment.write_text(
        deployment.read_text().replace(
            "      volumes:\n",
            "        - name: metrics\n          image: ghcr.io/acme/rclone-exporter:1\n"
            "      volumes:\n",
        )
    )
    detected = {("Deployment", "apps", "app"): (["/data/app.db"], [])}
    result = plan_fixes(tmp_path, both("SK201", "Deployment", "app"), strategy, detected=detected)
    assert not result.cannot
    pod = _agent_pod(result, kubectl, tmp_path)
    assert [c["name"] for c in pod["containers"]] == ["app", "metrics"]
    assert [c["args"] for c in pod["initContainers"]] == [["agent", "restore"], ["agent", "run"]]


def test_litestream_style(tmp_path: Path, strategy: Strategy, kubectl: str) -> None:
    small_tree(tmp_path)
    detected = {("Deployment", "apps", "app"): (["/data/app.db"], [])}
    result = plan_fixes(
        tmp_path, both("SK201", "Deployment", "app"), strategy, detected=detected,
        style="litestream",
    )  # fmt: skip
    assert not result.cannot
    pod = _agent_pod(result, kubectl, tmp_path)
    # the replicator is a native sidecar, after the check and the restore (policy default:
    # backup.native_sidecars, Kubernetes >= 1.29)
    init = pod["initContainers"]
    assert [c["name"] for c in init] == ["check-integrity", "litestream-restore", "litestream"]
    assert "-if-db-not-exists" in init[1]["args"]
    assert [c.get("restartPolicy") for c in init] == [None, None, "Always"]
    assert [c["name"] for c in pod["containers"]] == ["app"]
    assert {"name": "litestream-config", "configMap": {"name": "app-litestream"}} in pod["volumes"]


@pytest.mark.parametrize("style", ["agent", "litestream"])
def test_regular_sidecars_when_the_policy_says_no_native_sidecars(
    tmp_path: Path, kubectl: str, style: str
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("backup: {native_sidecars: false}\n")
    tree = tmp_path / "tree"
    small_tree(tree)
    detected = {("Deployment", "apps", "app"): (["/data/app.db"], [])}
    result = plan_fixes(
        tree, both("SK201", "Deployment", "app"), load_strategy(policy), detected=detected,
        style=style,
    )  # fmt: skip
    assert not result.cannot
    pod = _agent_pod(result, kubectl, tree)
    assert all("restartPolicy" not in c for c in pod["initContainers"])
    sidecar = "statekeeper-agent" if style == "agent" else "litestream"
    assert [c["name"] for c in pod["containers"]] == ["app", sidecar]


def test_unknown_rule_is_a_usage_error(tmp_path: Path, strategy: Strategy) -> None:
    from statekeeper.errors import InputError

    small_tree(tmp_path)
    with pytest.raises(InputError, match=r"--rule SK999: not a fixable rule"):
        plan_fixes(tmp_path, [], strategy, rules=["SK999"])


def test_rules_marked_fixable_are_exactly_the_rules_fix_fixes() -> None:
    """The docs' "Fixed by `statekeeper fix`" line comes from `Rule.fix`: it must agree with
    the fixers, and every other rule must say why it is not fixed."""
    from statekeeper.fix.engine import FIXABLE, NOT_FIXABLE
    from statekeeper.rules.base import FixedBy, all_rules

    marked = {rule.id for rule in all_rules() if isinstance(rule.fix, FixedBy)}
    assert marked == set(FIXABLE)
    assert "SK501" not in marked  # the key would have to be written to git
    assert {rule.id for rule in all_rules()} - marked == set(NOT_FIXABLE)


def test_every_rule_declares_a_fixer_that_exists_or_a_reason() -> None:
    """`fix = FixedBy("statekeeper.fix.<module>:<function>", ...)` names a real function in
    that file; `fix = NotFixable(reason)` gives a reason; the fixers run renames first and
    Velero last, as the plan needs."""
    import inspect

    from statekeeper.fix.engine import families
    from statekeeper.rules.base import FixedBy, NotFixable, all_rules

    src = Path(__file__).resolve().parents[2] / "src"
    for rule in all_rules():
        assert isinstance(rule.fix, FixedBy | NotFixable), rule.id
        if isinstance(rule.fix, NotFixable):
            assert rule.fix.reason.strip(), rule.id
            continue
        assert (src / rule.fix.file).is_file(), rule.fix.file
    found = families()
    for family in found:
        function = family.resolve()
        assert inspect.isfunction(function), family.fixer.target
        assert function.__module__ == family.fixer.module
    order = [rule for family in found for rule in family.rules]
    assert order[0] == "SK103" and order[-1] == "SK401"
    assert order.index("SK201") < order.index("SK107")


def test_rules_sharing_a_fixer_must_agree_on_its_step() -> None:
    from statekeeper.fix.engine import families
    from statekeeper.rules.base import FixedBy, Rule

    class First(Rule):
        id, fix = "SK901", FixedBy("statekeeper.fix.velero:fix_all", step=8)

    class Second(Rule):
        id, fix = "SK902", FixedBy("statekeeper.fix.velero:fix_all", step=9)

    with pytest.raises(ValueError, match="different steps or batches"):
        families([First(), Second()])
    with pytest.raises(ValueError, match=r"not 'statekeeper\.fix\.<module>:<function>'"):
        FixedBy("statekeeper/fix/velero.py", step=1)


def test_velero_schedule_written_once_at_cluster_dir_not_per_overlay(
    tmp_path: Path, strategy: Strategy
) -> None:
    """A Schedule is cluster-wide: with no Velero in the repo it is written once, at
    --cluster-dir, and the note says where it belongs; no overlay gets a copy."""
    small_tree(tmp_path)
    findings = [
        finding("SK401", "Namespace", None, "apps", env, "app")
        for env in ("production", "development")
    ]
    result = plan_fixes(tmp_path, findings, strategy)
    assert not result.cannot
    changed = {result.workspace.display(p) for p in result.workspace.changes()}
    assert changed == {"cluster/velero-schedule.yaml"}
    assert any(
        "add it to the app that deploys the cluster's own objects" in n for n in result.notes
    )
    result.workspace.commit()
    schedule = yaml.safe_load((tmp_path / "cluster/velero-schedule.yaml").read_text())
    assert schedule["spec"]["template"]["includedNamespaces"] == ["*"]


def test_velero_schedule_goes_into_the_folder_holding_velero(
    tmp_path: Path, strategy: Strategy, kubectl: str
) -> None:
    small_tree(tmp_path)
    write(
        tmp_path,
        {
            "infra/velero/kustomization.yaml": "resources:\n  - namespace.yaml\n",
            "infra/velero/namespace.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n"
            "  name: velero\n",
        },
    )
    findings = [finding("SK401", "Namespace", None, "apps", "production", "app")]
    result = plan_fixes(tmp_path, findings, strategy)
    assert not result.cannot
    changed = {result.workspace.display(p) for p in result.workspace.changes()}
    assert changed == {"infra/velero/kustomization.yaml", "infra/velero/velero-schedule.yaml"}
    result.workspace.commit()
    kinds = [d["kind"] for d in render(kubectl, tmp_path / "infra/velero")]
    assert sorted(kinds) == ["Namespace", "Schedule"]


def test_velero_schedule_from_helm_values_is_edited_there(
    tmp_path: Path, strategy: Strategy
) -> None:
    small_tree(tmp_path)
    write(
        tmp_path,
        {
            "infra/velero-values.yaml": (
                "schedules:\n  daily:\n    schedule: '0 3 * * *'\n"
                "    template:\n      includedNamespaces: [velero]\n"
            )
        },
    )
    findings = [finding("SK401", "Namespace", None, "apps", "production", "app")]
    result = plan_fixes(tmp_path, findings, strategy)
    assert not result.cannot
    changed = {result.workspace.display(p) for p in result.workspace.changes()}
    assert changed == {"infra/velero-values.yaml"}
    result.workspace.commit()
    values = yaml.safe_load((tmp_path / "infra/velero-values.yaml").read_text())
    assert values["schedules"]["daily"]["template"]["includedNamespaces"] == ["velero", "apps"]


STATEFULSET = """\
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
spec:
  serviceName: db
  selector:
    matchLabels: {app: db}
  template:
    metadata:
      labels: {app: db}
    spec:
      containers:
        - name: db
          image: postgres:16
  volumeClaimTemplates:
    - metadata:
        name: data
      spec:
        accessModes: [ReadWriteOnce]
        resources:
          requests:
            storage: 10Gi
"""


def test_statefulset_claim_template_class_is_not_edited(tmp_path: Path, strategy: Strategy) -> None:
    """volumeClaimTemplates are immutable on a live StatefulSet: a patch would fail the sync."""
    write(
        tmp_path,
        {
            "base/kustomization.yaml": "namespace: apps\nresources:\n  - statefulset.yaml\n",
            "base/statefulset.yaml": STATEFULSET,
            "overlays/dev/kustomization.yaml": overlay("dev"),
            "overlays/prod/kustomization.yaml": overlay("prod"),
        },
    )
    findings = [finding("SK106", "StatefulSet", "apps", "db", "development", "db")]
    result = plan_fixes(tmp_path, findings, strategy)
    (cannot,) = result.cannot
    assert cannot.reason.startswith("volumeClaimTemplates cannot change on a live StatefulSet")
    assert result.workspace.changes() == {}


def test_file_changed_between_audit_and_fix_stops_the_run(
    tmp_path: Path, strategy: Strategy
) -> None:
    from statekeeper.fix.workspace import fingerprint

    small_tree(tmp_path)
    audited = fingerprint(tmp_path)  # what the audit read
    dev = tmp_path / "overlays/dev/kustomization.yaml"
    dev.write_text(dev.read_text() + "nameSuffix: -edited\n")  # someone edits meanwhile
    before = snapshot(tmp_path)
    with pytest.raises(ChangedOnDisk, match=r"^overlays/dev/kustomization\.yaml changed after"):
        plan_fixes(
            tmp_path,
            both("SK106", "PersistentVolumeClaim", "app-data-pvc"),
            strategy,
            audited=audited,
        )
    assert snapshot(tmp_path) == before


def test_secret_values_found_like_the_audit(strategy: Strategy) -> None:
    from statekeeper.fix.secrets import mask, secret_values

    text = (
        "env:\n  - {name: RCLONE_CONFIG_MINIO_SECRET_ACCESS_KEY, value: devminio-key}\n"
        "  - {name: TZ, value: Europe/Paris}\n"
        "data:\n  litestream.yml: |\n    access-key-id: AKIAINLINE\n"
    )
    found = secret_values([text], strategy.policy)
    assert found == {"devminio-key", "AKIAINLINE"}
    assert mask("x devminio-key AKIAINLINE Europe/Paris", found) == "x *** *** Europe/Paris"


def test_claim_without_an_app_is_named_after_the_one_workload_mounting_it(
    tmp_path: Path, strategy: Strategy
) -> None:
    small_tree(tmp_path, claim="data")
    findings = [
        finding("SK103", "PersistentVolumeClaim", "apps", "data", env, "")
        for env in ("development", "production")
    ]
    result = plan_fixes(tmp_path, findings, strategy)
    assert not result.cannot, result.cannot
    assert result.renames == {("apps", "data"): "app-data-pvc"}


def test_claim_no_visible_workload_mounts_is_not_migrated(
    tmp_path: Path, strategy: Strategy
) -> None:
    """Mounted through a chart's template (`{{ .Release.Name }}-cache`): a new claim nobody
    mounts would only hide the finding, so the claim is left with the reason."""
    small_tree(tmp_path, claim="data")
    (tmp_path / "base/deployment.yaml").write_text(DEPLOYMENT.format(claim="other-claim"))
    result = plan_fixes(tmp_path, both("SK103", "PersistentVolumeClaim", "data"), strategy)
    assert [c.reason for c in result.cannot] == [
        "no workload in the local sources mounts PVC data (a Helm chart's template?): "
        "move it by hand where it is mounted"
    ]
    assert result.workspace.changes() == {}
