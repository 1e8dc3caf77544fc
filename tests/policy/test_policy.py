"""The built-in policy encodes the strategy; a file overrides it; bad files are one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from statekeeper.errors import PolicyError
from statekeeper.policy.load import deep_merge, load_policy
from statekeeper.policy.model import Policy, parse_duration, parse_quantity


def test_builtin_elite_is_the_strategy() -> None:
    policy = load_policy()
    table = {
        env: (spec.storage_class, spec.reclaim_policy) for env, spec in policy.environments.items()
    }
    assert table == {
        "production": ("synelia-iscsi-retain", "Retain"),
        "development": ("synelia-iscsi-delete", "Delete"),
        "shared": ("nfs-storage", "Retain"),
    }
    assert policy.pvc_naming.pattern == "<app>-<purpose>-pvc"
    sizes = {c.name: (c.min, c.max) for c in policy.sizing}
    assert sizes == {
        "shared-database": ("50Gi", "50Gi"),
        "database": ("10Gi", "20Gi"),
        "media-cache": ("50Gi", "100Gi"),
        "config": ("1Gi", "2Gi"),
    }
    assert policy.tiers.config.paths == ["/config"]
    assert (policy.tiers.config.min_seconds, policy.tiers.config.max_seconds) == (300, 900)
    assert policy.tiers.velero.max_seconds == 86400
    assert policy.namespace_environments == {}
    known = {k.name for k in policy.tiers.sqlite.known_images}
    assert {"vaultwarden", "home-assistant", "sonarr", "radarr", "mealie", "jellyfin"} <= known
    assert policy.agent.run_marker == "agent run"


def test_overlay_environments() -> None:
    aliases = load_policy().overlay_environments()
    assert aliases["prod"] == aliases["production"] == "production"
    assert aliases["dev"] == aliases["development"] == aliases["staging"] == "development"
    assert aliases["shared"] == "shared"
    assert load_policy().canonical_environment("PROD") == "production"
    assert load_policy().canonical_environment("nowhere") is None


def test_derived_views_on_the_cached_builtin_and_a_validated_policy() -> None:
    cached = load_policy()  # built by model_construct from the generated cache: no validators
    validated = Policy.model_validate(cached.model_dump())
    for policy in (cached, validated):
        prod = policy.environment("PRD")
        assert prod is not None
        assert (prod.name, prod.storage_class, prod.reclaim_policy) == (
            "production",
            "synelia-iscsi-retain",
            "Retain",
        )
        assert "live" in prod.aliases
        assert policy.environment("nowhere") is None and policy.environment(None) is None
        assert list(policy.environment_table()) == ["production", "development", "shared"]
        database = policy.sizing_named("database")
        assert database is not None
        assert (database.min_bytes, database.max_bytes) == (10 * 2**30, 20 * 2**30)
        assert database.contains("15Gi") and database.contains("20Gi")
        assert not database.contains("21Gi") and not database.contains("lots")
        assert policy.sizing_named("no-such-category") is None
        assert policy.storage_class_environment("nfs-storage") == "shared"


def test_a_copy_with_new_values_derives_its_views_again() -> None:
    policy = load_policy()
    assert policy.environment("prod") is not None and policy.sizing_named("config") is not None
    copied = policy.model_copy(
        update={"environments": {"live": policy.environments["production"]}, "sizing": []}
    )
    assert copied.environment("development") is None
    live = copied.environment("prod")  # an alias of the row, now named live
    assert live is not None and live.name == "live"
    assert copied.sizing_named("config") is None
    assert policy.environment("prod") is not None  # the original keeps its own


def test_environment_name_wins_over_another_environments_alias(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "environments:\n  staging: {storage_class: ceph-staging, reclaim_policy: Delete}\n"
    )
    policy = load_policy(path)
    staging = policy.environment("staging")  # also an alias of development in elite
    assert staging is not None and staging.storage_class == "ceph-staging"
    dev = policy.environment("stage")
    assert dev is not None and dev.name == "development"


@pytest.mark.parametrize(
    ("name", "app", "ok"),
    [
        ("homeassistant-config-pvc", "home-assistant", True),
        ("home-assistant-config-pvc", "home-assistant", True),
        ("postgresql-data-pvc", "postgresql", True),
        ("frigate-clips-pvc", "frigate", True),
        ("frigate-media-cache-pvc", "frigate", True),
        ("mealie-data", "mealie", False),
        ("data-pvc", "mealie", False),
        ("sonarr-config-pvc", "radarr", False),
        ("anything-data-pvc", None, True),
        ("data", None, False),
    ],
)
def test_pvc_name_regex(name: str, app: str | None, ok: bool) -> None:
    assert bool(load_policy().pvc_naming.name_regex(app).match(name)) is ok


def test_file_extends_builtin_mappings_merge_lists_replace(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "environments:\n"
        "  production: {storage_class: ceph-retain}\n"
        "  staging: {storage_class: ceph-staging, reclaim_policy: Delete, aliases: [stg]}\n"
        "namespace_environments: {media: shared}\n"
        "tiers:\n  config: {paths: [/config, /settings]}\n"
    )
    policy = load_policy(path)
    assert policy.environments["production"].storage_class == "ceph-retain"
    assert policy.environments["production"].reclaim_policy == "Retain"  # kept from elite
    assert policy.canonical_environment("stg") == "staging"
    assert policy.canonical_environment("staging") == "staging"  # the env's own name wins
    assert policy.tiers.config.paths == ["/config", "/settings"]
    assert policy.tiers.config.min_interval == "5m"
    assert policy.namespace_environments == {"media": "shared"}


def test_deep_merge() -> None:
    merged = deep_merge({"a": {"b": 1, "c": [1, 2]}, "d": 1}, {"a": {"c": [3]}, "e": 2})
    assert merged == {"a": {"b": 1, "c": [3]}, "d": 1, "e": 2}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("environments:\n  production: {reclaim_policy: Keep}\n",
         "field environments.production.reclaim_policy: Input should be"),
        ("sizing: [{name: x, min: 3Gi, max: 1Gi}]\n", "field sizing.0: Value error, min 3Gi"),
        ("sizing: [{name: x, min: lots, max: 1Gi}]\n", "field sizing.0.min: Value error, not a"),
        ("tiers: {config: {min_interval: soon}}\n", "field tiers.config.min_interval"),
        ("pvc_naming: {regex: '(['}\n", "field pvc_naming.regex: Value error, not a valid"),
        ("namespace_environments: {media: moon}\n", "unknown environment 'moon'"),
        ("colour: blue\n", "field colour: Extra inputs are not permitted"),
        ("extends: platinum\n", "field extends: unknown built-in policy 'platinum'"),
        ("extends: none\n", "field environments: Field required"),
        ("- a list\n", "a policy file must be a mapping, not list"),
        ("a: [unclosed\n", "invalid YAML"),
    ],
)  # fmt: skip
def test_bad_policy_is_one_line_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    text = str(err.value)
    assert text.startswith(f"{path}:")
    assert message in text
    assert "\n" not in text


def test_invalid_yaml_error_has_the_same_shape_as_the_others(tmp_path: Path) -> None:
    path = tmp_path / "p2.yaml"
    path.write_text("a: [unclosed\n")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    # "<file>: line N: invalid YAML: <problem>", colons between the parts.
    assert str(err.value) == f"{path}: line 2: invalid YAML: did not find expected ',' or ']'"


def test_missing_and_unreadable_policy(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="policy file not found"):
        load_policy(tmp_path / "nope.yaml")
    with pytest.raises(PolicyError, match="is a directory"):
        load_policy(tmp_path)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(PolicyError, match="not UTF-8"):
        load_policy(binary)


def test_quantities_and_durations() -> None:
    assert parse_quantity("10Gi") == 10 * 2**30
    assert parse_quantity("500M") == 500e6
    assert parse_quantity(1024) == 1024
    assert parse_quantity("ten") is None
    assert parse_duration("10m") == 600
    assert parse_duration("1h30m") == 5400
    assert parse_duration("600") == 600
    assert parse_duration("soon") is None


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "statekeeper", "policy", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_show_prints_effective_policy_that_loads_back(tmp_path: Path) -> None:
    override = tmp_path / "p.yaml"
    override.write_text("environments: {production: {storage_class: ceph-retain}}\n")
    result = _cli("show", "--policy", str(override))
    assert result.returncode == 0, result.stderr
    shown = yaml.safe_load(result.stdout)
    assert shown["environments"]["production"]["storage_class"] == "ceph-retain"
    assert Policy.model_validate(shown) == load_policy(override)


def test_cli_schema_is_json_schema_of_the_model() -> None:
    result = _cli("schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert schema == Policy.model_json_schema()
    assert "environments" in schema["required"]
    import jsonschema

    jsonschema.validate(load_policy().model_dump(mode="json"), schema)


def test_cli_rules_lists_every_rule() -> None:
    result = _cli("rules")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == [
        "SK001", "SK002", "SK003", "SK101", "SK102", "SK103", "SK104", "SK105", "SK106",
        "SK107", "SK201", "SK202", "SK203", "SK204", "SK301", "SK302", "SK401", "SK402",
        "SK501",
    ]  # fmt: skip
    assert "pvc-name" in lines[5] and "warning" in lines[5]


def test_cli_bad_policy_exit_2() -> None:
    result = _cli("show", "--policy", "/nonexistent/policy.yaml")
    assert result.returncode == 2
    assert result.stderr.startswith("statekeeper: error: /nonexistent/policy.yaml")
    assert "Traceback" not in result.stderr
