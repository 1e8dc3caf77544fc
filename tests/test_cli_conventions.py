"""CLI conventions: several formats per run, -q/-v, --color and NO_COLOR, "nothing audited",
shell completion, no `<bool>` metavars, env vars in every agent option's help."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from statekeeper.agent.config import ENV_VARS

from .test_audit_cli import BAD_PVC, CLEAN


def sk(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NO_COLOR")}
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "statekeeper", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full,
        timeout=120,
    )


@pytest.fixture
def bad(tmp_path: Path) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(CLEAN + BAD_PVC)
    return path


def test_text_on_stdout_and_sarif_to_a_file(bad: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.sarif"
    result = sk("audit", str(bad), "-f", "text", "-f", "sarif", "-o", str(out))
    assert result.returncode == 1, result.stderr
    assert result.stdout.startswith("statekeeper audit")
    assert json.loads(out.read_text())["version"] == "2.1.0"


def test_each_format_its_own_output(bad: Path, tmp_path: Path) -> None:
    junit, md = tmp_path / "r.xml", tmp_path / "r.md"
    result = sk(
        "audit", str(bad), "-f", "json", "-f", "junit", "-f", "markdown",
        "-o", f"junit={junit}", "-o", str(md), "--fail-on", "never",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["version"] == 1
    assert junit.read_text().startswith('<?xml version="1.0"')
    assert md.read_text().startswith("## statekeeper audit: ")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("-f", "json", "-f", "sarif"), "would all go to stdout"),
        (("-f", "json", "-o", "a", "-o", "b"), "2 --output files for 1 --format"),
        (("-f", "json", "-o", "sarif=x.sarif"), "format sarif is not among --format"),
    ],
)
def test_format_output_mismatch_is_one_line_error(
    bad: Path, args: tuple[str, ...], needle: str
) -> None:
    result = sk("audit", str(bad), *args)
    assert result.returncode == 2
    assert result.stderr.startswith("statekeeper: error: ") and needle in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.stdout == ""


def test_nothing_audited_warns_and_can_fail(tmp_path: Path) -> None:
    (tmp_path / "notes.yaml").write_text("just: data\n")
    result = sk("audit", str(tmp_path), "-f", "json")
    assert result.returncode == 0
    assert result.stderr == (
        f"statekeeper: warning: nothing audited: no Kubernetes objects found in {tmp_path}\n"
    )
    assert sk("audit", str(tmp_path), "-q", "-f", "json").stderr == ""
    failed = sk("audit", str(tmp_path), "--fail-if-no-objects")
    assert failed.returncode == 2 and failed.stdout == ""
    assert failed.stderr == (
        f"statekeeper: error: nothing audited: no Kubernetes objects found in {tmp_path}\n"
    )


def test_verbose_names_config_and_baseline(bad: Path, tmp_path: Path) -> None:
    (tmp_path / ".statekeeper.yaml").write_text("baseline: b.json\n")
    result = sk("audit", bad.name, "-v", "-f", "json", cwd=tmp_path)
    assert f"statekeeper: config: {tmp_path.resolve()}/.statekeeper.yaml\n" in result.stderr
    assert f"statekeeper: baseline: {tmp_path.resolve()}/b.json\n" in result.stderr
    quiet = sk("audit", bad.name, "-q", "-f", "json", "--write-baseline", "c.json", cwd=tmp_path)
    assert quiet.stderr == "" and (tmp_path / "c.json").is_file()


def test_color_flag_and_no_color(bad: Path) -> None:
    assert "\x1b[" in sk("audit", str(bad), "--color", "always").stdout  # piped, still coloured
    assert "\x1b[" not in sk("audit", str(bad), "--color", "never", env={"FORCE_COLOR": "1"}).stdout
    assert "\x1b[" not in sk("audit", str(bad), env={"FORCE_COLOR": "1", "NO_COLOR": "1"}).stdout
    assert "\x1b[" in sk("audit", str(bad), env={"FORCE_COLOR": "1"}).stdout


def test_shell_completion() -> None:
    env = {
        "_STATEKEEPER_COMPLETE": "complete_bash",
        "COMP_WORDS": "statekeeper au",
        "COMP_CWORD": "1",
    }
    result = subprocess.run(
        [str(Path(sys.executable).parent / "statekeeper")],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["audit"]
    # and the root help offers to install it for the user's shell
    assert "--install-completion" in sk("--help", env={"COLUMNS": "120"}).stdout


COMMANDS = [
    ["audit"], ["init"], ["fix"], ["policy", "show"], ["policy", "rules"], ["generate", "app"],
    ["agent", "restore"], ["agent", "run"], ["agent", "verify"], ["agent", "lease", "release"],
]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_no_bool_metavars(command: list[str]) -> None:
    result = sk(*command, "--help", env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert "--help" in result.stdout
    assert "<bool>" not in result.stdout and "BOOLEAN" not in result.stdout


@pytest.mark.parametrize("command", [c for c in COMMANDS if c[0] == "agent"], ids=" ".join)
def test_agent_help_names_each_options_env_var(command: list[str]) -> None:
    result = sk(*command, "--help", env={"COLUMNS": "250"})
    rows = [line for line in result.stdout.splitlines() if re.match(r"^│ --(?!help)", line)]
    assert len(rows) >= 4
    for row in rows:
        named = re.search(r"\[env var: (STATEKEEPER_[A-Z0-9_]+)\]", row)
        assert named or "[flag only]" in row, row
        if named:
            assert named.group(1) in ENV_VARS, row
