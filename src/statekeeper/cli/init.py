"""CLI: `statekeeper init` — write a `.statekeeper.yaml` for the repository."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from statekeeper.cli.options import ForceOption

HELP = (
    "Write a .statekeeper.yaml for this repository: the StorageClasses, namespaces and overlay "
    "layout found in it, a baseline path and output defaults. The built-in `elite` policy stays "
    "the base. DIRECTORY defaults to the git root of the working directory. An existing file is "
    "kept unless --force.\n"
)


def init_command(
    directory: Annotated[
        Path | None,
        typer.Argument(
            help="Repository to scan and write the file into (default: the git root).",
            show_default=False,
            file_okay=False,
        ),
    ] = None,
    force: ForceOption = False,
    stdout: Annotated[
        bool, typer.Option("--stdout", help="Print the file instead of writing it.")
    ] = False,
) -> None:
    from statekeeper.errors import InputError
    from statekeeper.init import CONFIG_FILE, detect, render_config
    from statekeeper.policy.load import load_policy
    from statekeeper.repo import git_root

    root = directory or git_root(Path.cwd()) or Path.cwd()
    if not root.is_dir():
        raise InputError(f"{root}: no such directory")
    target = root / CONFIG_FILE
    if target.exists() and not force and not stdout:
        raise InputError(f"{target}: already exists (use --force to replace it)")
    policy = load_policy(None)
    text = render_config(detect(root, policy), policy)
    if stdout:
        typer.echo(text, nl=False)
        return
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{target}: cannot write: {exc.strerror}") from None
    typer.echo(f"wrote {target}")


def register(app: typer.Typer) -> None:
    app.command("init", help=HELP, short_help="Write a .statekeeper.yaml for this repository.")(
        init_command
    )
