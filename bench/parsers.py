"""Alternative YAML parsers against libyaml: speed on a corpus, and conformance with kubectl.

Runs in its own venv (bench/.venv-parsers, made by bench/run.py) holding PyYAML, yaml-rs,
ryaml and rapidyaml, never in the project's venv:

    bench/.venv-parsers/bin/python bench/parsers.py DIR --kubectl .venv/bin/kubectl [--json OUT]

Conformance: each case is wrapped in a ConfigMap-shaped object and decoded by the real kubectl
(`kubectl annotate --local -o json` runs kubectl's own YAML→JSON path, no cluster needed); a
parser conforms on a case when its result, written as JSON, equals kubectl's (or when both
refuse the input). A parser that is faster but reads manifests differently from kubectl would
make the audit judge objects that do not exist, so it is adopted only if it passes every case.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

SRC = Path(__file__).resolve().parent.parent / "src"

Parser = Callable[[bytes], list[Any]]


# --------------------------------------------------------------------------- parsers


def _pyyaml(data: bytes) -> list[Any]:
    return list(yaml.load_all(data, Loader=yaml.CSafeLoader))


def _statekeeper(data: bytes) -> list[Any]:
    """statekeeper's own loader: CSafeLoader, kubectl's scalar typing, alias/size checks."""
    from statekeeper.manifests.load import parse_documents

    return [doc.data for doc in parse_documents(data, "<bench>")]


def _yaml_rs(data: bytes) -> list[Any]:
    import yaml_rs

    text = data.decode("utf-8")
    result = yaml_rs.loads(
        text, parse_datetime=False, duplicate_key_policy=yaml_rs.DuplicateKeyPolicy.LastWins
    )
    # yaml-rs returns a list for a multi-document stream and the document itself otherwise:
    # a single document that is a list cannot be told from several documents.
    multi = text.count("\n---") + text.startswith("---") > 0
    return result if multi and isinstance(result, list) else [result]


def _ryaml(data: bytes) -> list[Any]:
    import ryaml

    return list(ryaml.loads_all(data.decode("utf-8")))


def _ryml_tree(data: bytes) -> list[Any]:
    """rapidyaml's parse alone: a C++ tree, no Python objects (the speed ceiling)."""
    import ryml

    tree = ryml.parse_in_arena(data)
    return [tree.size()]


_INT = re.compile(r"^[-+]?(?:0[bB][01_]+|0[oO]?[0-7_]+|0[xX][0-9a-fA-F_]+|[0-9][0-9_]*)$")
_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?$")
_BOOL = {"true": True, "false": False, "yes": True, "no": False, "on": True, "off": False}


def _ryml_scalar(text: str, quoted: bool) -> Any:
    """A plain scalar typed with a YAML 1.2 core-ish resolver written in Python."""
    if quoted:
        return text
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    lowered = text.lower()
    if lowered in _BOOL:
        return _BOOL[lowered]
    if _INT.match(text):
        try:
            return int(text.replace("_", ""), 0)
        except ValueError:
            return text
    if _FLOAT.match(text):
        return float(text.replace("_", ""))
    return text


def _ryml_python(data: bytes) -> list[Any]:
    """rapidyaml's tree converted to Python objects by walking it in Python."""
    import ryml

    tree = ryml.parse_in_arena(data)
    tree.resolve()  # expand aliases and merge keys

    def convert(node: int) -> Any:
        if tree.is_map(node):
            out: dict[Any, Any] = {}
            child = tree.first_child(node)
            while child != ryml.NONE:
                key = _ryml_scalar(bytes(tree.key(child)).decode(), tree.is_key_quoted(child))
                out[key] = convert(child)
                child = tree.next_sibling(child)
            return out
        if tree.is_seq(node):
            items = []
            child = tree.first_child(node)
            while child != ryml.NONE:
                items.append(convert(child))
                child = tree.next_sibling(child)
            return items
        if tree.val_is_null(node):
            return None
        return _ryml_scalar(bytes(tree.val(node)).decode(), tree.is_val_quoted(node))

    root = tree.root_id()
    if tree.is_stream(root):
        docs = []
        child = tree.first_child(root)
        while child != ryml.NONE:
            docs.append(convert(child))
            child = tree.next_sibling(child)
        return docs
    return [convert(root)]


PARSERS: dict[str, Parser] = {
    "pyyaml-CSafeLoader": _pyyaml,
    "statekeeper (CSafeLoader, kubectl typing)": _statekeeper,
    "yaml-rs": _yaml_rs,
    "ryaml": _ryaml,
    "rapidyaml (tree only)": _ryml_tree,
    "rapidyaml (to Python)": _ryml_python,
}


# --------------------------------------------------------------------------- speed


def yaml_files(root: Path) -> list[Path]:
    found: list[Path] = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(directory) / f for f in sorted(files) if f.endswith((".yaml", ".yml")))
    return found


def time_parsers(root: Path, repeat: int) -> dict[str, dict[str, Any]]:
    blobs = [path.read_bytes() for path in yaml_files(root)]
    results: dict[str, dict[str, Any]] = {}
    for name, parse in PARSERS.items():
        best = float("inf")
        docs = 0
        error = None
        for _ in range(repeat):
            start = time.perf_counter()
            try:
                docs = sum(len(parse(blob)) for blob in blobs)
            except Exception as err:  # any parser failure is a result to report
                error = f"{type(err).__name__}: {str(err).splitlines()[0][:120]}"
                break
            best = min(best, time.perf_counter() - start)
        results[name] = {"seconds": None if error else round(best, 3), "docs": docs, "error": error}
    return results


# --------------------------------------------------------------------------- conformance

CASES: dict[str, str] = {
    "booleans on/yes/y/Off": "a: on\nb: yes\nc: y\nd: Off\ne: 'yes'\n",
    "boolean-looking keys": "on: 1\nno: 2\n",
    "octal-looking 0755 / 0o755 / 08": "mode: 0755\nmode_o: 0o755\nnot_octal: 08\n",
    "numbers 1e3 / 0x1F / 1_000 / +12": "e: 1e3\nx: 0x1F\nu: 1_000\np: +12\n",
    "timestamps stay strings": "date: 2024-01-01\nstamp: 2024-01-01T10:00:00Z\n",
    "sexagesimal 1:30": "t: 1:30\n",
    "null forms": "a: ~\nb: null\nc:\n",
    "duplicate keys (last wins)": "a: 1\na: 2\n",
    "anchors and aliases": "base: &b {x: 1, l: [1, 2]}\ncopy: *b\n",
    "merge keys <<": "base: &b {p: 1, q: 2}\nm:\n  <<: *b\n  q: 3\n",
    "alias limit (billion laughs)": "",  # filled below
}


def _billion_laughs() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in "bcdefghi":
        previous = chr(ord(level) - 1)
        lines.append(f"{level}: &{level} [{','.join(['*' + previous] * 9)}]")
    return "\n".join(lines) + "\n"


CASES["alias limit (billion laughs)"] = _billion_laughs()


def _wrap(case: str) -> str:
    """The case as the `spec` of a ConfigMap-shaped object (kubectl needs kind and name)."""
    body = "".join(f"  {line}\n" for line in case.splitlines())
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: probe\nspec:\n{body}"


def _kubectl_expected(kubectl: str, text: str) -> tuple[bool, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        handle.write(text)
    try:
        done = subprocess.run(
            [kubectl, "annotate", "--local", "-f", handle.name, "p=1", "-o", "json"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        Path(handle.name).unlink()
    if done.returncode != 0:
        return False, done.stderr.strip().splitlines()[-1]
    return True, json.loads(done.stdout).get("spec")


def _as_json(value: Any) -> Any:
    """The value as kubectl's JSON would hold it; non-JSON types (dates) stay visible."""
    return json.loads(json.dumps(value, default=lambda o: f"<{type(o).__name__} {o}>"))


# A parser run in a child with bounded memory and time, so an alias bomb cannot take the machine.
_CHILD = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
sys.path.insert(0, sys.argv[2])
import parsers
text = sys.stdin.read()
try:
    docs = parsers.PARSERS[sys.argv[1]](text.encode())
except MemoryError:
    print(json.dumps({"ok": False, "value": "parser ran out of memory (1 GiB)"}))
    sys.exit()
except Exception as err:
    print(json.dumps({"ok": False, "value": type(err).__name__ + ": " + str(err)[:100]}))
    sys.exit()
spec = docs[0].get("spec") if docs and isinstance(docs[0], dict) else None
try:
    print(json.dumps({"ok": True, "value": parsers._as_json(spec)}))
except MemoryError:  # parsed without complaint; using the result is what explodes
    print(json.dumps({"ok": True, "value": "accepted; expanding it exhausted 1 GiB"}))
"""


def _run_parser_safely(name: str, text: str) -> tuple[bool, Any]:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, name, str(Path(__file__).parent)],
            input=text,
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False, "no answer within 60 s"
    if done.returncode != 0 or not done.stdout.strip():
        return False, f"crashed (exit {done.returncode}): {done.stderr.strip()[-120:]}"
    result = json.loads(done.stdout)
    return bool(result["ok"]), result["value"]


def conformance(kubectl: str) -> dict[str, dict[str, str]]:
    """{case: {parser: "ok" | "DIFFERS: ..." }} with kubectl's answer under "kubectl"."""
    table: dict[str, dict[str, str]] = {}
    for case, snippet in CASES.items():
        text = _wrap(snippet)
        ok, expected = _kubectl_expected(kubectl, text)
        row = {"kubectl": json.dumps(expected) if ok else f"refused: {expected}"}
        for name in PARSERS:
            if name == "rapidyaml (tree only)":
                continue
            got_ok, got = _run_parser_safely(name, text)
            if ok and got_ok and got == expected:
                row[name] = "ok"
            elif not ok and not got_ok:
                row[name] = f"ok (refused: {str(got)[:60]})"
            else:
                row[name] = f"DIFFERS: {json.dumps(got)[:80] if got_ok else got}"
        table[case] = row
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--kubectl", required=True)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sys.path.insert(0, str(SRC))
    speed = time_parsers(args.dir, args.repeat)
    table = conformance(args.kubectl)
    results = {
        "speed": speed,
        "conformance": table,
        "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    base = speed["pyyaml-CSafeLoader"]["seconds"]
    print(f"{'parser':45} {'seconds':>8} {'vs libyaml':>10} {'docs':>7}")
    for name, row in speed.items():
        secs = row["seconds"]
        ratio = f"{base / secs:.2f}x" if secs and base else "-"
        print(
            f"{name:45} {secs if secs is not None else 'error':>8} {ratio:>10} {row['docs']:>7}"
            + (f"  {row['error']}" if row["error"] else "")
        )
    print()
    for case, row in table.items():
        print(f"{case}: kubectl={row['kubectl'][:70]}")
        for name, verdict in row.items():
            if name != "kubectl":
                print(f"    {name:45} {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
