"""Start-up: the built-in policy comes from a generated cache equal to elite.yaml (and is never
re-validated), and a plain `statekeeper audit` runs without importing Typer through a fast path
that accepts exactly the options the Typer command declares. (Timing is in bench/, never here.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from statekeeper import fastpath
from statekeeper.cli import app
from statekeeper.policy import cache, load
from statekeeper.policy.builtin import elite_cache

ONE = """\
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: web}
spec: {storageClassName: synelia-iscsi-delete, resources: {requests: {storage: 1Gi}}}
"""


def test_cache_matches_the_yaml() -> None:
    validated = load._validated_builtin()
    assert elite_cache.build() == validated
    assert elite_cache.build().model_dump() == validated.model_dump()
    assert cache.yaml_digest(load._builtin_text("elite")) == elite_cache.YAML_SHA256
    assert cache.CACHE_FILE.read_text() == cache.render_cache(), (
        "policy cache out of date: run `python -m statekeeper.policy.cache` (make docs)"
    )


def test_a_stale_cache_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    load._builtin_policy.cache_clear()
    monkeypatch.setattr(elite_cache, "YAML_SHA256", "0" * 64)
    monkeypatch.setattr(elite_cache, "build", lambda: pytest.fail("a stale cache must not be used"))
    try:
        assert load._builtin_policy() == load._validated_builtin()
    finally:
        load._builtin_policy.cache_clear()


def test_default_run_neither_validates_the_policy_nor_imports_typer(tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text(ONE)
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['statekeeper', 'audit', 'one.yaml', '--no-render', '-f', 'json']\n"
        "try:\n"
        "    runpy.run_module('statekeeper', run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    code = exit.code\n"
        "from statekeeper.policy.model import Policy\n"
        "print(code, 'typer' in sys.modules, 'click' in sys.modules,"
        " Policy.__pydantic_complete__, file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert result.stderr.strip().splitlines()[-1] == "1 False False False", result.stderr
    assert '"rule": "SK103"' in result.stdout


# Modules only some inputs need: a cron schedule (croniter), a kustomization (kustomize), a
# Helm release (helm). A one-file --no-render audit of plain objects imports none of them.
_LAZY = ("croniter", "statekeeper.manifests.kustomize", "statekeeper.manifests.helm")

CRON_AND_RELEASE = """\
apiVersion: velero.io/v1
kind: Schedule
metadata: {name: daily, namespace: velero}
spec: {schedule: "0 3 * * *", template: {includedNamespaces: ["*"]}}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: web, namespace: web}
spec: {chart: {spec: {chart: web, sourceRef: {kind: HelmRepository, name: nowhere}}}}
"""


def _imported_after_audit(directory: Path, *args: str) -> tuple[str, dict[str, bool]]:
    """Run a --no-render audit in a fresh interpreter; (stdout, which `_LAZY` modules it loaded)."""
    probe = (
        "import sys, runpy\n"
        "import statekeeper\n"
        f"assert not any(m in sys.modules for m in {_LAZY!r}), 'imported by import statekeeper'\n"
        f"sys.argv = ['statekeeper', 'audit', *{list(args)!r}, '--no-render', '-f', 'json']\n"
        "try:\n"
        "    runpy.run_module('statekeeper', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(*[m in sys.modules for m in {_LAZY!r}], file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=directory, timeout=60
    )
    flags = result.stderr.strip().splitlines()[-1].split()
    assert len(flags) == len(_LAZY), result.stderr
    return result.stdout, dict(zip(_LAZY, (flag == "True" for flag in flags), strict=True))


def test_one_file_audit_imports_no_cron_kustomize_or_helm_code(tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text(ONE)
    stdout, imported = _imported_after_audit(tmp_path, "one.yaml")
    assert imported == dict.fromkeys(_LAZY, False)
    assert '"rule": "SK103"' in stdout


def test_lazy_modules_are_imported_when_the_input_needs_them(tmp_path: Path) -> None:
    # The other side of the test above: a Velero schedule and a HelmRelease load croniter and the
    # Helm code, a kustomization the kustomize code (and the audit still reads them).
    (tmp_path / "apps.yaml").write_text(CRON_AND_RELEASE)
    stdout, imported = _imported_after_audit(tmp_path, "apps.yaml")
    assert imported == {
        "croniter": True,
        "statekeeper.manifests.kustomize": False,
        "statekeeper.manifests.helm": True,
    }
    assert "HelmRelease web" in stdout
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "kustomization.yaml").write_text("resources: [one.yaml]\n")
    (tmp_path / "base" / "one.yaml").write_text(ONE)
    _, imported = _imported_after_audit(tmp_path, "base")
    assert imported["statekeeper.manifests.kustomize"] is True


def _typer_options() -> dict[tuple[str, ...], tuple[str, bool, bool, tuple[str, ...] | None]]:
    command = typer.main.get_command(app).commands["audit"]  # type: ignore[attr-defined]
    found = {}
    for param in command.params:
        if param.param_type_name != "option" or param.name == "help":
            continue
        # Typer's own parameter model (typer >= 0.2x) or Click's
        desc = getattr(param, "type_descriptor", None)
        if desc is not None:
            choices = desc.choices if desc.is_choice else None
        else:
            choices = getattr(getattr(param, "type", None), "choices", None)
        found[tuple(param.opts)] = (
            str(param.name),
            bool(param.is_flag),
            bool(param.multiple),
            tuple(str(getattr(c, "value", c)) for c in choices) if choices else None,
        )
    return found


def test_fast_path_knows_exactly_the_typer_options() -> None:
    expected = {}
    names = {"formats": "fmt", "outputs": "output", "rules": "rule"}  # Typer's parameter names
    for opts, (dest, kind, choices) in fastpath.SPEC.items():
        expected[opts] = (names.get(dest, dest), kind == "flag", kind == "list", choices)
    assert _typer_options() == expected


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["x.yaml", "-h"],
        ["--format", "xml"],
        ["--fail-on", "sometimes"],
        ["--no-such-flag"],
        ["--env"],
        ["--color=rainbow"],
    ],
)
def test_fast_path_leaves_help_and_errors_to_typer(argv: list[str]) -> None:
    assert fastpath.parse(argv) is None
    assert fastpath.main(["audit", *argv]) is None


def test_fast_path_parses_plain_lines() -> None:
    values = fastpath.parse(
        ["a", "-f", "text", "--format=sarif", "-o", "r.sarif", "-q", "--rule", "SK101", "-", "b"]
    )
    assert values is not None
    assert values["paths"] == ["a", "-", "b"]
    assert values["formats"] == ["text", "sarif"] and values["outputs"] == ["r.sarif"]
    assert values["quiet"] is True and values["verbose"] is False
    assert values["rules"] == ["SK101"] and values["config"] is None
    assert fastpath.parse(["--config", "c.yaml"]) == {
        **fastpath.parse([]),  # type: ignore[dict-item]
        "config": Path("c.yaml"),
    }
