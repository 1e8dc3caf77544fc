"""Options several commands share are declared once (`statekeeper.cli.options`): one spelling
and one help text wherever they appear."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import typer

from statekeeper.cli import app

SHARED = ["--policy", "--rule", "--strict-inputs"]


def _commands(command: Any, path: str = "statekeeper") -> Iterator[tuple[str, Any]]:
    """Every leaf command below `command` (Typer's own command model, or Click's), by path."""
    subcommands = getattr(command, "commands", None)
    if subcommands is None:
        yield path, command
        return
    for name, sub in subcommands.items():
        yield from _commands(sub, f"{path} {name}")


def _declarations(option: str) -> dict[str, tuple[tuple[str, ...], str | None]]:
    """command -> (option strings, help) of every command that takes `option`."""
    found = {}
    for path, command in _commands(typer.main.get_command(app)):
        for param in command.params:
            if param.param_type_name == "option" and option in param.opts:
                found[path] = (tuple(param.opts), param.help)
    return found


@pytest.mark.parametrize("option", SHARED)
def test_a_shared_option_is_spelt_and_explained_once(option: str) -> None:
    declared = _declarations(option)
    assert len(declared) >= 2, declared  # shared by several commands
    assert len(set(declared.values())) == 1, declared


def test_policy_is_taken_by_every_command_that_reads_a_policy() -> None:
    assert sorted(_declarations("--policy")) == [
        "statekeeper audit",
        "statekeeper fix",
        "statekeeper generate app",
        "statekeeper generate storage-classes",
        "statekeeper generate velero-schedule",
        "statekeeper policy rules",
        "statekeeper policy show",
    ]
    assert {opts for opts, _ in _declarations("--policy").values()} == {("--policy", "-p")}


def test_force_means_overwrite_wherever_files_are_written() -> None:
    declared = _declarations("--force")
    writers = {k: v for k, v in declared.items() if not k.startswith("statekeeper agent")}
    assert sorted(writers) == [
        "statekeeper generate app",
        "statekeeper generate storage-classes",
        "statekeeper generate velero-schedule",
        "statekeeper init",
    ]
    assert len(set(writers.values())) == 1, writers
