"""The CLI's front door: version, help, and one-line errors."""

from __future__ import annotations

import subprocess
import sys

from statekeeper import __version__


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "statekeeper", *args], capture_output=True, text=True, timeout=60
    )


def test_version_fast_path() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"statekeeper {__version__}"


def test_help_lists_commands() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    assert "agent" in result.stdout


def test_agent_config_error_is_one_line() -> None:
    result = run_cli("agent", "restore", "--bucket", "b")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("statekeeper: error: invalid agent setting prefix")
    assert len(result.stderr.strip().splitlines()) == 1
