"""`python -m statekeeper.manifests [--no-render] [--strict-inputs] [--env E] PATH...`: what the
loader reads, as a JSON summary (debugging; the memory tests run it as a process)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from statekeeper.errors import InputError
from statekeeper.manifests.load import load_sources


def main(argv: Sequence[str]) -> int:
    args = list(argv)
    render = "--no-render" not in args
    strict = "--strict-inputs" in args
    args = [a for a in args if a not in ("--no-render", "--strict-inputs")]
    env = None
    if "--env" in args:
        at = args.index("--env")
        env = args[at + 1]
        del args[at : at + 2]
    try:
        result = load_sources(args or ["."], render=render, env=env, strict=strict, quiet=True)
    except InputError as err:
        sys.stderr.write(f"statekeeper: error: {err}\n")
        return err.exit_code
    summary = {
        "resources": len(result.resources),
        "other": len(result.other),
        "notes": [n.message for n in result.notes],
        "problems": [[p.kind, p.file, p.line, p.column, p.reason] for p in result.problems],
        "sources": result.sources,
        "origins": [
            [r.kind, r.name, r.origin.file, r.origin.line, r.origin.overlay, r.origin.environment]
            for r in result.resources[:50]
        ],
    }
    sys.stdout.write(json.dumps(summary, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
