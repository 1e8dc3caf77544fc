"""CLI: `statekeeper policy show|schema|rules` — the effective policy, its schema, the rules."""

from __future__ import annotations

import json

import typer

from statekeeper.cli.options import PolicyOption


def register(app: typer.Typer) -> None:
    """Add `statekeeper policy …` to the root app."""
    policy_app = typer.Typer(
        name="policy",
        help="Show the effective policy, its JSON Schema, and the rules that judge it.",
        no_args_is_help=True,
    )

    @policy_app.command("show")
    def show(policy: PolicyOption = None) -> None:
        """Print the effective policy (built-in `elite` merged with --policy) as YAML."""
        import yaml

        from statekeeper.policy.load import load_policy

        data = load_policy(policy).model_dump(mode="json")
        typer.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100), nl=False)

    @policy_app.command("schema")
    def schema() -> None:
        """Print the JSON Schema of a policy file."""
        from statekeeper.policy.model import Policy

        typer.echo(json.dumps(Policy.model_json_schema(), indent=2))

    @policy_app.command("rules")
    def rules(policy: PolicyOption = None) -> None:
        """List the rules: id, slug, severity (after --policy overrides), title."""
        from statekeeper.policy.load import load_policy
        from statekeeper.rules.base import all_rules

        effective = load_policy(policy)
        for rule in all_rules():
            settings = effective.rule_settings(rule.id, rule.slug)
            severity = settings.severity or rule.severity.value
            state = "" if settings.enabled else "  (disabled)"
            typer.echo(f"{rule.id}  {rule.slug:<34} {severity:<8} {rule.title}{state}")

    app.add_typer(policy_app)
