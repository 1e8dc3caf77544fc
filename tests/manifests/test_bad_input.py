"""The bad-input list. Below a directory, each is a finding (SK003 unreadable-manifest, SK002
overlay-does-not-build) or, for what is not a Kubernetes manifest, a note, and the audit goes on
with the other files; with `--strict-inputs`, or named on the command line, each is an InputError
with a one-line message naming the file (and document/line when known). Run as a process, each
exits 2 (strict) or 1 (walk) without a traceback and stays under 300 MB RSS."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from statekeeper.errors import EXIT_USAGE, InputError
from statekeeper.manifests.load import load_sources

MAX_RSS_KB = 300 * 1024
BIG = 100 * 1024 * 1024


@dataclass
class Case:
    """A bad input: `make(tmp)` writes it and returns the CLI arguments (and stdin file)."""

    make: Callable[[Path], tuple[list[str], Path | None]]
    expect: list[str]  # substrings of the message, besides the file name
    names: str  # the file named in the message
    walk: str = "SK003"  # below a directory: the finding's rule, "note", or "" (not a walk)


def _write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    return path


def _file(name: str, data: bytes | str) -> Callable[[Path], tuple[list[str], Path | None]]:
    def make(tmp: Path) -> tuple[list[str], Path | None]:
        return [str(_write(tmp / name, data).relative_to(tmp))], None

    return make


def _billion_laughs() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in "bcdefghi":
        prev = chr(ord(level) - 1)
        lines.append(f"{level}: &{level} [{','.join(['*' + prev] * 9)}]")
    return "\n".join(lines) + "\n"


def _big_scalar_file(tmp: Path) -> tuple[list[str], Path | None]:
    path = tmp / "huge.yaml"
    chunk = b"x" * (1024 * 1024)
    with path.open("wb") as handle:
        handle.write(b"apiVersion: v1\nkind: ConfigMap\ndata:\n  blob: ")
        for _ in range(BIG // len(chunk)):
            handle.write(chunk)
    return ["huge.yaml"], None


def _big_scalar_stdin(tmp: Path) -> tuple[list[str], Path | None]:
    _big_scalar_file(tmp)
    return ["-"], tmp / "huge.yaml"


def _fifo(tmp: Path) -> tuple[list[str], Path | None]:
    (tmp / "dir").mkdir()
    _write(tmp / "dir" / "ok.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n")
    os.mkfifo(tmp / "dir" / "pipe.yaml")  # opening it would block: must be refused unread
    return ["dir"], None


def _fifo_in_root(tmp: Path) -> tuple[list[str], Path | None]:
    """A pipe beside a kustomization root: the side reads (Flux/Argo deployers, the render
    cache's digests, kustomization files) must refuse it unread too, or the audit hangs."""
    _write(tmp / "app" / "kustomization.yaml", "resources: [ok.yaml]\n")
    _write(tmp / "app" / "ok.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n")
    os.mkfifo(tmp / "app" / "pipe.yaml")
    return ["app"], None


def _dir_loop(tmp: Path) -> tuple[list[str], Path | None]:
    _write(tmp / "repo" / "apps" / "a.yaml", "a: 1\n")
    (tmp / "repo" / "apps" / "back").symlink_to("..")
    return ["repo"], None


def _file_loop(tmp: Path) -> tuple[list[str], Path | None]:
    (tmp / "repo").mkdir()
    (tmp / "repo" / "a.yaml").symlink_to("b.yaml")
    (tmp / "repo" / "b.yaml").symlink_to("a.yaml")
    return ["repo"], None


def _broken_link(tmp: Path) -> tuple[list[str], Path | None]:
    (tmp / "repo").mkdir()
    (tmp / "repo" / "gone.yaml").symlink_to("nowhere.yaml")
    return ["repo"], None


def _kustomize_tree(tmp: Path, resource: str) -> None:
    _write(tmp / "repo" / "base" / "kustomization.yaml", f"resources: [{resource}]\n")
    _write(
        tmp / "repo" / "base" / "ns.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n",
    )
    _write(tmp / "repo" / "overlays" / "prod" / "kustomization.yaml", "resources: [../../base]\n")


def _kustomize_error(tmp: Path) -> tuple[list[str], Path | None]:
    _kustomize_tree(tmp, "missing.yaml")
    return ["repo"], None


CM = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"
HELM = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "app.fullname" . }}
data:
  a: "1"
"""

CASES: dict[str, Case] = {
    "unparsable": Case(
        _file("bad.yaml", f"{CM}data: [1, 2\nc: 3\n"),
        ["invalid YAML", "line 5, column"],
        "bad.yaml",
    ),
    "unparsable-2nd-doc": Case(
        _file("two.yaml", f"a: 1\n---\n{CM}b: : :\n"), ["document 2", "line 6"], "two.yaml"
    ),
    "unparsable-not-kubernetes": Case(
        _file("tool.yaml", "a: 1\nb: [1, 2\nc: 3\n"), ["invalid YAML", "line"], "tool.yaml", "note"
    ),
    "billion-laughs": Case(
        _file("lol.yaml", _billion_laughs()), ["excessive aliasing"], "lol.yaml"
    ),
    "recursive-alias": Case(_file("rec.yaml", "a: &a [1, *a]\n"), ["recursive alias"], "rec.yaml"),
    "nested-20000-flow": Case(
        _file("deep.yaml", "a: " + "[" * 20_000 + "]" * 20_000 + "\n"),
        ["nested too deeply"],
        "deep.yaml",
    ),
    "nested-20000-block": Case(
        _file("deep2.yaml", "- " * 20_000 + "x\n"), ["nested too deeply"], "deep2.yaml"
    ),
    "100MB-scalar-file": Case(_big_scalar_file, ["too large"], "huge.yaml"),
    "100MB-scalar-stdin": Case(_big_scalar_stdin, ["too large"], "<stdin>", ""),
    "huge-int": Case(
        _file("int.yaml", "a: " + "9" * 100_000 + "\n"), ["cannot read a value"], "int.yaml"
    ),
    "binary": Case(_file("bin.yaml", b"\x7fELF\x02\x01\x01\x00\x00\x00"), ["binary"], "bin.yaml"),
    "latin-1": Case(
        _file("l1.yaml", "name: caf\xe9\n".encode("latin-1")),
        ["not valid UTF-8", "line 1"],
        "l1.yaml",
    ),
    "utf-8-bad-later": Case(
        _file("l2.yaml", b"a: 1\nb: 2\nc: \xff\xfe\n"), ["not valid UTF-8", "line 3"], "l2.yaml"
    ),
    "helm-template": Case(
        _file("tpl.yaml", HELM), ["invalid YAML", "helm template"], "tpl.yaml", "note"
    ),
    "helm-unparsable": Case(
        _file("tpl2.yaml", "a: {{ $x }}\n"), ["invalid YAML", "helm template"], "tpl2.yaml", "note"
    ),
    "not-a-regular-file": Case(_fifo, ["not a regular file"], "pipe.yaml"),
    "not-a-regular-file-in-root": Case(_fifo_in_root, ["not a regular file"], "pipe.yaml"),
    "missing-path": Case(lambda tmp: (["nope.yaml"], None), ["no such file"], "nope.yaml", ""),
    "broken-symlink": Case(_broken_link, ["broken symlink"], "gone.yaml"),
    "symlink-loop-dir": Case(_dir_loop, ["symlink loop"], "back"),
    "symlink-loop-file": Case(_file_loop, ["symlink loop"], "a.yaml"),
    "kustomize-build-error": Case(
        _kustomize_error,
        ["kustomize build failed: accumulating resources", "missing.yaml"],
        "overlays/prod",
        "SK002",
    ),
}


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    return env


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_line_input_error_when_strict(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = CASES[name]
    args, stdin_file = case.make(tmp_path)
    monkeypatch.chdir(tmp_path)
    stdin = io.BytesIO(stdin_file.read_bytes()) if stdin_file else None
    with pytest.raises(InputError) as caught:
        load_sources(args, stdin=stdin, strict=True)
    message = str(caught.value)
    assert "\n" not in message
    assert case.names in message
    for part in case.expect:
        assert part in message, message


def _run_measured(
    args: list[str],
    cwd: Path,
    stdin_file: Path | None,
    env: dict[str, str],
    prefix: list[str],
    module: str = "statekeeper.manifests",
) -> tuple[int, str, int]:
    """Run the loader's debug entry (or `module`) in a fresh parent; return (exit code,
    stderr, max RSS KiB); stdout goes to `cwd/stdout`.

    The parent is a fresh interpreter, so RUSAGE_CHILDREN covers the loader process only.
    """
    probe = textwrap.dedent(
        """
        import json, resource, subprocess, sys
        spec = json.loads(sys.argv[1])
        stdin = open(spec["stdin"], "rb") if spec["stdin"] else subprocess.DEVNULL
        done = subprocess.run(spec["argv"], stdin=stdin, capture_output=True, text=True)
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        open("stdout", "w").write(done.stdout)
        print(json.dumps({"rc": done.returncode, "err": done.stderr, "rss": rss}))
        """
    )
    import json

    argv = [*prefix, sys.executable, "-m", module, *args]
    spec = json.dumps({"argv": argv, "stdin": str(stdin_file) if stdin_file else None})
    out = subprocess.run(
        [sys.executable, "-c", probe, spec],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result = json.loads(out.stdout)
    return int(result["rc"]), str(result["err"]), int(result["rss"])


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_process_exits_2_small_and_without_traceback(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    args, stdin_file = case.make(tmp_path)
    rc, err, rss_kb = _run_measured(["--strict-inputs", *args], tmp_path, stdin_file, _env(), [])
    assert rc == EXIT_USAGE, err
    assert "Traceback" not in err
    assert err.startswith("statekeeper: error: ") and err.count("\n") == 1, err
    assert case.names in err
    assert rss_kb < MAX_RSS_KB, f"{name}: {rss_kb} KiB"


WALK_CASES = sorted(name for name, case in CASES.items() if case.walk)
NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: still-read\n"


@pytest.mark.parametrize("name", WALK_CASES)
def test_bad_input_below_a_directory_is_reported_and_the_rest_is_read(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = CASES[name]
    case.make(tmp_path)
    _write(tmp_path / "ok.yaml", NAMESPACE)
    monkeypatch.chdir(tmp_path)
    result = load_sources(["."])
    assert "still-read" in [r.name for r in result.resources]
    if case.walk == "note":
        assert result.problems == []
        notes = [n.message for n in result.notes if n.file == case.names]
        assert len(notes) == 1 and "skipped" in notes[0], result.notes
        return
    kind = "build" if case.walk == "SK002" else "read"
    mine = [p for p in result.problems if case.names in p.file]
    assert mine and {p.kind for p in mine} == {kind}, result.problems
    for part in case.expect:
        assert part in mine[0].reason, mine[0].reason


@pytest.mark.parametrize("name", WALK_CASES)
def test_bad_input_audit_walk_exits_1_with_the_finding_small_and_without_traceback(
    name: str, tmp_path: Path
) -> None:
    import json

    case = CASES[name]
    case.make(tmp_path)
    _write(tmp_path / "ok.yaml", NAMESPACE)
    args = ["audit", ".", "--format", "json", "--rule", "SK002,SK003"]
    rc, err, rss_kb = _run_measured(args, tmp_path, None, _env(), [], module="statekeeper")
    assert "Traceback" not in err and err == "", err
    report = json.loads((tmp_path / "stdout").read_text())
    rules = {f["rule"] for f in report["findings"] if case.names in f["file"]}
    if case.walk == "note":
        assert rc == 0 and rules == set()
        assert any(n["file"] == case.names for n in report["notes"])
    else:
        assert rc == 1 and rules == {case.walk}, report["findings"]
    assert rss_kb < MAX_RSS_KB, f"{name}: {rss_kb} KiB"


def test_unreadable_file_permission_denied(tmp_path: Path) -> None:
    """Root reads any file, so the loader runs without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH
    (util-linux `setpriv`): a mode-000 file then really fails with EACCES."""
    setpriv = shutil.which("setpriv")
    assert setpriv is not None, "setpriv (util-linux) is needed for this test"
    secret = _write(tmp_path / "repo" / "locked.yaml", "apiVersion: v1\nkind: Namespace\n")
    secret.chmod(0)
    prefix = (
        [setpriv, "--bounding-set", "-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    )
    rc, err, rss_kb = _run_measured(["--strict-inputs", "repo"], tmp_path, None, _env(), prefix)
    assert rc == EXIT_USAGE
    assert err.strip() == "statekeeper: error: repo/locked.yaml: cannot read: Permission denied"
    assert rss_kb < MAX_RSS_KB
    # Below a directory, without --strict-inputs: an SK003 input problem, and exit 0.
    rc, err, _ = _run_measured(["repo"], tmp_path, None, _env(), prefix)
    import json

    summary = json.loads((tmp_path / "stdout").read_text())
    assert rc == 0 and err == ""
    assert summary["problems"] == [
        ["read", "repo/locked.yaml", None, None, "cannot read: Permission denied"]
    ]


def test_missing_kustomize_binary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _kustomize_tree(tmp_path, "ns.yaml")
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as caught:
        load_sources(["repo"])
    message = str(caught.value)
    assert "install kustomize" in message and "--no-render" in message
    # ... and --no-render needs no binary at all.
    result = load_sources(["repo"], render=False)
    assert [r.kind for r in result.resources] == ["Namespace"]


def test_file_over_max_file_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "a.yaml", "a: " + "x" * 2000 + "\n")
    with pytest.raises(InputError, match=r"^a\.yaml: file too large \(2004 bytes; limit 1000\)$"):
        load_sources(["a.yaml"], max_file_bytes=1000)
    assert load_sources(["a.yaml"], max_file_bytes=3000).other[0].body["a"] == "x" * 2000


def test_non_kubernetes_yaml_is_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "values.yaml", "schedules:\n  daily: {schedule: '0 3 * * *'}\n")
    _write(tmp_path / "list.yaml", "- a\n- b\n---\n---\nplain scalar\n")
    _write(tmp_path / "empty.yaml", "# only a comment\n")
    result = load_sources(["."])
    assert result.resources == []
    assert [r.body for r in result.other] == [{"schedules": {"daily": {"schedule": "0 3 * * *"}}}]
    notes = [(n.file, n.line, n.message) for n in result.notes]
    assert notes == [
        ("empty.yaml", None, "no YAML documents; skipped"),
        ("list.yaml", 1, "document 1 is not a mapping (list); skipped"),
        ("list.yaml", 5, "document 3 is not a mapping (str); skipped"),
    ]
