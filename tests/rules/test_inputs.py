"""SK002/SK003: input problems the loader kept going past are findings, in the engine's usual way
(severity, file, line, environment; policy `rules:` settings apply)."""

from __future__ import annotations

from statekeeper.engine import evaluate
from statekeeper.findings import Severity
from statekeeper.inventory.build import build_inventory
from statekeeper.manifests.resource import InputProblem
from statekeeper.policy.load import load_policy
from statekeeper.policy.model import Policy, RuleSettings

PROBLEMS = [
    InputProblem(
        "build",
        "overlays/staging/kustomization.yaml",
        "kustomize build failed: x",
        environment="development",
    ),
    InputProblem(
        "build", "apps/remote/kustomization.yaml", "remote base cannot be fetched", remote=True
    ),
    InputProblem("read", "apps/broken.yaml", "document 1, line 4, column 7: invalid YAML: x", 4, 7),
    InputProblem("read", "apps/binary.yaml", "binary file (contains NUL bytes), not YAML"),
]


def _report(policy: Policy | None = None) -> list[tuple[str, str, str, str | None, int | None]]:
    policy = policy or load_policy()
    inventory = build_inventory([], [], policy)
    inventory.input_problems = list(PROBLEMS)
    report = evaluate(inventory, policy)
    return [(f.rule, f.severity.value, f.name, f.environment, f.line) for f in report.findings]


def test_input_problems_are_findings() -> None:
    assert sorted(_report()) == [
        ("SK002", "error", "overlays/staging", "development", 1),
        ("SK002", "warning", "apps/remote", None, 1),  # offline: a warning, not an error
        ("SK003", "error", "apps/binary.yaml", None, 1),
        ("SK003", "error", "apps/broken.yaml", None, 4),
    ]


def test_input_rules_obey_policy_settings() -> None:
    base = load_policy()
    policy = base.model_copy(
        update={
            "rules": {
                "unreadable-manifest": RuleSettings(enabled=False),
                "SK002": RuleSettings(severity="info"),
            }
        }
    )
    found = _report(policy)
    assert {rule for rule, *_ in found} == {"SK002"}
    assert {severity for _, severity, *_ in found} == {Severity.INFO.value}
