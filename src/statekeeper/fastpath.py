"""`statekeeper audit ...` without Typer: the start-up cost pre-commit pays on every commit.

Importing Typer (and Click) costs more than auditing a file. A command line that is plainly
valid (known options, known choices, no --help, no completion request) is parsed here with
argparse and goes straight to `statekeeper.auditcmd.run`; anything else — help, a typo, a bad
choice — returns None and Typer handles it, with its help and usage errors. So this parser
only needs to accept what Typer accepts; `tests/test_startup.py` checks that the two agree on
every option.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from statekeeper.report import FORMATS

# option strings -> (destination, kind, choices). kind: "flag", "value", "list", "path".
SPEC: dict[tuple[str, ...], tuple[str, str, tuple[str, ...] | None]] = {
    ("--config", "-c"): ("config", "path", None),
    ("--policy",): ("policy", "path", None),
    ("--env",): ("env", "value", None),
    ("--no-render",): ("no_render", "flag", None),
    ("--format", "-f"): ("formats", "list", FORMATS),
    ("--output", "-o"): ("outputs", "list", None),
    ("--fail-on",): ("fail_on", "value", ("error", "warning", "info", "never")),
    ("--rule", "-r"): ("rules", "list", None),
    ("--baseline",): ("baseline", "path", None),
    ("--write-baseline",): ("write_baseline", "path", None),
    ("--srcroot",): ("srcroot", "path", None),
    ("--fail-if-no-objects",): ("fail_if_no_objects", "flag", None),
    ("--color",): ("color", "value", ("auto", "always", "never")),
    ("--quiet", "-q"): ("quiet", "flag", None),
    ("--verbose", "-v"): ("verbose", "flag", None),
}


class _NotPlain(Exception):
    """The command line needs Typer (help, an error message)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _NotPlain(message)


def _parser() -> _Parser:
    parser = _Parser(prog="statekeeper audit", add_help=False, allow_abbrev=False)
    for opts, (dest, kind, choices) in SPEC.items():
        if kind == "flag":
            parser.add_argument(*opts, dest=dest, action="store_true")
        elif kind == "list":
            parser.add_argument(*opts, dest=dest, action="append", choices=choices, default=[])
        else:
            parser.add_argument(*opts, dest=dest, choices=choices)
    parser.add_argument("paths", nargs="*")
    return parser


def parse(argv: Sequence[str]) -> dict[str, object] | None:
    """The audit options of `argv` (after `audit`), or None when Typer should handle it."""
    if any(arg in ("-h", "--help") for arg in argv):
        return None
    try:
        values = vars(_parser().parse_intermixed_args(list(argv)))
    except _NotPlain:
        return None
    if any(str(p).startswith("-") and p != "-" for p in values["paths"]):
        return None
    for key in ("config", "policy", "baseline", "write_baseline", "srcroot"):
        if values[key] is not None:
            values[key] = Path(str(values[key]))
    return values


def main(argv: Sequence[str]) -> int | None:
    """Run `statekeeper audit` when `argv` (the whole command line after the program name) is
    a plain audit; None to let Typer run it."""
    if not argv or argv[0] != "audit" or "_STATEKEEPER_COMPLETE" in os.environ:
        return None
    values = parse(argv[1:])
    if values is None:
        return None
    from statekeeper.auditcmd import AuditOptions, run
    from statekeeper.errors import StatekeeperError

    try:
        return run(AuditOptions(**values))  # type: ignore[arg-type]
    except StatekeeperError as exc:
        sys.stderr.write(f"statekeeper: error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("statekeeper: interrupted\n")
        return 130
