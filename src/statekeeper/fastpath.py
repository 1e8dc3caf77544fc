"""`statekeeper audit ...` without Typer: the start-up cost pre-commit pays on every commit.

Importing Typer (and Click) costs more than auditing a file. A command line that is plainly
valid (known options, known choices, no --help, no completion request) is parsed here with
argparse and goes straight to `statekeeper.auditcmd.run`; anything else — help, a typo, a bad
choice — returns None and Typer handles it, with its help and usage errors. So this parser
only needs to accept what Typer accepts; `tests/test_startup.py` checks that the two agree on
every option.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from statekeeper.report import FORMATS

# option strings -> (destination, kind, choices). kind: "flag", "value", "list", "path".
SPEC: dict[tuple[str, ...], tuple[str, str, tuple[str, ...] | None]] = {
    ("--config", "-c"): ("config", "path", None),
    ("--policy", "-p"): ("policy", "path", None),
    ("--env",): ("env", "value", None),
    ("--no-render",): ("no_render", "flag", None),
    ("--helm-repo-config",): ("helm_repo_config", "path", None),
    ("--format", "-f"): ("formats", "list", FORMATS),
    ("--output", "-o"): ("outputs", "list", None),
    ("--fail-on",): ("fail_on", "value", ("error", "warning", "info", "never")),
    ("--rule", "-r"): ("rules", "list", None),
    ("--baseline",): ("baseline", "path", None),
    ("--write-baseline",): ("write_baseline", "path", None),
    ("--srcroot",): ("srcroot", "path", None),
    ("--strict-inputs",): ("strict_inputs", "flag", None),
    ("--fail-if-no-objects",): ("fail_if_no_objects", "flag", None),
    ("--color",): ("color", "value", ("auto", "always", "never")),
    ("--quiet", "-q"): ("quiet", "flag", None),
    ("--verbose", "-v"): ("verbose", "flag", None),
}


def parse(argv: Sequence[str]) -> dict[str, object] | None:
    """The audit options of `argv` (after `audit`), or None when Typer should handle it.

    Accepts `--opt value`, `--opt=value`, `-o value`, `-ovalue`, flags, PATHS anywhere and
    `--` before PATHS (no argparse: its import and regexes cost more than this loop)."""
    by_opt = {opt: spec for opts, spec in SPEC.items() for opt in opts}
    values: dict[str, object] = {}
    for dest, kind, _ in SPEC.values():
        values[dest] = False if kind == "flag" else [] if kind == "list" else None
    paths: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            paths.extend(args[i:])
            break
        if not arg.startswith("-") or arg == "-":
            paths.append(arg)
            continue
        if arg.startswith("--"):
            opt, eq, inline = arg.partition("=")
            value: str | None = inline if eq else None
        else:
            opt, value = arg[:2], (arg[2:] or None)
        if opt not in by_opt:
            return None
        dest, kind, choices = by_opt[opt]
        if kind == "flag":
            if value is not None:
                return None
            values[dest] = True
            continue
        if value is None:
            if i >= len(args):
                return None
            value = args[i]
            i += 1
        if choices is not None and value not in choices:
            return None
        if kind == "list":
            cast_list = values[dest]
            assert isinstance(cast_list, list)
            cast_list.append(value)
        else:
            values[dest] = Path(value) if kind == "path" else value
    if any(arg in ("-h", "--help") for arg in argv):
        return None
    values["paths"] = paths
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
