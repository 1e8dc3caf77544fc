"""Options that several commands take, declared once: one spelling, one help text.

Each is an `Annotated` alias a command uses as its parameter's type, with the default on the
parameter (`policy: PolicyOption = None`). `statekeeper.fastpath.SPEC` mirrors the audit's
options; `tests/test_startup.py` keeps the two in step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

PolicyOption = Annotated[
    Path | None,
    typer.Option(
        "--policy",
        "-p",
        help="Policy file that overrides or extends the built-in `elite` policy.",
        dir_okay=False,
    ),
]

RuleOption = Annotated[
    list[str] | None,
    typer.Option(
        "--rule",
        "-r",
        help="Only these rules: ids or slugs, comma-separated or repeated "
        "(e.g. --rule SK101,SK203).",
    ),
]

StrictInputsOption = Annotated[
    bool,
    typer.Option(
        "--strict-inputs",
        help="Stop (exit 2, nothing written) at the first root that does not build or file "
        "that cannot be read, instead of reporting it as a finding (SK002/SK003) and going on.",
    ),
]

ForceOption = Annotated[bool, typer.Option("--force", help="Overwrite files that already exist.")]

# `generate velero-schedule|storage-classes`: one file, into a directory or to stdout.
OutputDirOption = Annotated[
    Path, typer.Option("--output", "-o", help="Directory, or - for stdout.")
]
