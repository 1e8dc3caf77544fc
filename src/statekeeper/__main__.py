"""Console entry point.

`statekeeper --version` is answered before anything heavy is imported, and a plain
`statekeeper audit ...` runs without importing Typer (`statekeeper.fastpath`; see
bench/README.md for the start-up time); everything else goes to the Typer app in
`statekeeper.cli`.
"""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] in (["--version"], ["-V"]):
        from statekeeper import __version__

        sys.stdout.write(f"statekeeper {__version__}\n")
        return
    from statekeeper.fastpath import main as fast

    code = fast(sys.argv[1:])
    if code is not None:
        sys.stdout.flush()
        sys.exit(code)
    from statekeeper.cli import run

    run()


if __name__ == "__main__":
    main()
