"""The thin Typer app: arguments → library calls → a reporter.

Every command module registers itself on the root app. Errors derived from
`statekeeper.errors.StatekeeperError` end the process with one line on stderr and their exit code;
no traceback reaches the user.
"""

from __future__ import annotations

import sys
from typing import Any

import typer

from statekeeper import __version__
from statekeeper.errors import EXIT_USAGE, StatekeeperError


def _no_flag_metavars() -> None:
    """Typer's rich help shows a type for every option, `<bool>` for on/off flags too: a flag
    takes no value, so show none (and no `<bool>` for --help)."""
    from typer.core import TyperOption

    shown = getattr(TyperOption, "display_type_rich", None)
    if shown is None:  # an older Typer that shows no types
        return

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        if self.is_flag or self.count:
            return None
        result: str | None = shown(self, ctx)
        return result

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_no_flag_metavars()

app = typer.Typer(
    name="statekeeper",
    help=(
        "Make a cluster's storage & backup strategy real: audit manifests against it, fix and "
        "generate compliant ones, and run the backup agent that restores, replicates and proves "
        "restores."
    ),
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"statekeeper {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        "-V",
        help="Print the version and exit.",
        callback=_version,
        is_eager=True,
    ),
) -> None:
    """statekeeper: storage & backup strategy as code."""


def _register() -> None:
    from statekeeper.cli import agent, audit, fix, generate, init, policy

    for module in (audit, init, policy, fix, generate, agent):
        module.register(app)


_register()


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print `statekeeper: error: <message>` on stderr and return the Exit to raise."""
    sys.stderr.write(f"statekeeper: error: {message}\n")
    return typer.Exit(code)


def run() -> None:
    """Console-script entry: run the app, turning StatekeeperError into a one-line message."""
    try:
        app(standalone_mode=True)
    except StatekeeperError as exc:
        sys.stderr.write(f"statekeeper: error: {exc}\n")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("statekeeper: interrupted\n")
        sys.exit(130)
