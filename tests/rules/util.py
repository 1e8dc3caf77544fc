"""Helpers for rule and inventory tests: YAML text -> Resources -> Inventory -> Report."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import yaml

from statekeeper.engine import evaluate
from statekeeper.findings import Report
from statekeeper.inventory.build import build_inventory
from statekeeper.inventory.model import Inventory
from statekeeper.manifests.resource import Origin, Resource
from statekeeper.policy.load import load_policy
from statekeeper.policy.model import Policy

FIXTURES = Path(__file__).parent / "fixtures"


def parse(
    text: str,
    *,
    file: str = "test.yaml",
    overlay: str | None = None,
    environment: str | None = None,
    source_dir: str | None = None,
) -> tuple[list[Resource], list[Resource]]:
    """(Kubernetes objects, other mappings) of a multi-document YAML text."""
    resources: list[Resource] = []
    other: list[Resource] = []
    for index, body in enumerate(yaml.load_all(text, Loader=yaml.CSafeLoader)):
        if not isinstance(body, dict):
            continue
        origin = Origin(
            file=file,
            document=index,
            line=1,
            overlay=overlay,
            environment=environment,
            source_dir=source_dir or None,
        )
        target = resources if body.get("apiVersion") and body.get("kind") else other
        target.append(Resource(body=body, origin=origin))
    return resources, other


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def inventory_of(
    text: str, *, env: str | None = None, policy: Policy | None = None, **origin: str | None
) -> Inventory:
    resources, other = parse(text, **origin)  # type: ignore[arg-type]
    return build_inventory(resources, other, policy or load_policy(), env=env)


def audit(
    text: str,
    *,
    env: str | None = None,
    only: Collection[str] | None = None,
    policy: Policy | None = None,
    **origin: str | None,
) -> Report:
    effective = policy or load_policy()
    inventory = inventory_of(text, env=env, policy=effective, **origin)
    return evaluate(inventory, effective, only=only)


def found(report: Report) -> list[tuple[str, str, str]]:
    """(rule, kind, name) of every finding, sorted."""
    return sorted((f.rule, f.kind, f.name) for f in report.findings)
