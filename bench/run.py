"""The audit benchmark: one command, ratios measured in one run.

    bench/run.py [DIR] [--docs 10000] [--checkov-docs 2000] [--repeat 5]   (or: make bench)

Without DIR it generates (once) a corpus of --docs Kubernetes documents shaped like a GitOps
repo (bench/corpus.py) under bench/corpus/. It then times, on the same files:

  bare     the bare parse: every *.yaml/*.yml read and parsed with yaml.CSafeLoader (libyaml),
           documents kept, in a fresh interpreter (the floor statekeeper builds on)
  audit    `statekeeper audit --no-render --format json DIR` (parse + inventory + rules + JSON)
  checkov  `checkov -d DIR --framework kubernetes` from its own venv (bench/.venv-checkov,
           created here on first use: its dependencies clash with ours)
  version  `statekeeper --version`

and, on a smaller corpus of --checkov-docs documents, audit and checkov again (Checkov is slow
and memory-hungry on 10 000 documents). Finally bench/parsers.py runs in bench/.venv-parsers
(PyYAML, yaml-rs, ryaml, rapidyaml; created here) for the alternative parsers' speed and their
conformance with kubectl. Times are the best of --repeat runs (Checkov: one run), wall and CPU
separately, as noise on a shared machine only ever adds time; results
go to bench/out/results.json. Targets: audit ≥ 50× faster than Checkov, within 2× of the bare
parse, `--version` under 150 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BIN = Path(sys.executable).parent
CHECKOV_VENV = BENCH / ".venv-checkov"
PARSERS_VENV = BENCH / ".venv-parsers"
CHECKOV_SPEC = "checkov>=3,<4"
PARSER_PACKAGES = ["PyYAML>=6.0.1,<7", "yaml-rs", "ryaml", "rapidyaml"]

BARE_PARSE = """
import os, sys, yaml
docs = []
for directory, dirs, files in os.walk(sys.argv[1]):
    dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    for name in sorted(files):
        if name.endswith((".yaml", ".yml")):
            with open(os.path.join(directory, name), "rb") as handle:
                docs.extend(yaml.load_all(handle.read(), Loader=yaml.CSafeLoader))
print(len(docs))
"""


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# Runs one command and reports its wall time, CPU time and peak RSS. A fresh parent per
# command, so RUSAGE_CHILDREN holds that command's process tree only.
PROBE = """
import json, resource, subprocess, sys, time
argv, timeout = json.loads(sys.argv[1]), json.loads(sys.argv[2])
start = time.perf_counter()
try:
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout)
except subprocess.TimeoutExpired:
    print(json.dumps({"timeout": True}))
    sys.exit()
wall = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
err = done.stderr.decode(errors="replace")[-2000:]
cpu = usage.ru_utime + usage.ru_stime
print(json.dumps({"rc": done.returncode, "wall": wall, "cpu": cpu, "rss_kib": usage.ru_maxrss,
                  "stderr": err}))
"""


def timed(
    argv: list[str], *, ok: tuple[int, ...] = (0,), timeout: float | None = None
) -> dict[str, Any]:
    """Run once: wall seconds, CPU seconds and peak RSS (MiB) of the command's process tree."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(argv), json.dumps(timeout)],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(done.stdout)
    if result.get("timeout"):
        return {"error": f"timed out after {timeout:.0f} s", "wall": None}
    if result["rc"] not in ok:
        tail = result["stderr"].strip().splitlines()[-3:]
        return {"error": f"exit {result['rc']}: {' | '.join(tail)}", "wall": None}
    return {
        "wall": round(result["wall"], 3),
        "cpu": round(result["cpu"], 3),
        "max_rss_mib": result["rss_kib"] // 1024,
    }


def best_of(argv: list[str], repeat: int, **kwargs: Any) -> dict[str, Any]:
    """The least wall time and the least CPU time of `repeat` runs (noise only adds time)."""
    runs = [timed(argv, **kwargs) for _ in range(repeat)]
    good = [r for r in runs if r.get("wall") is not None]
    if not good:
        return runs[0]
    best = min(good, key=lambda r: r["wall"])
    return {
        **best,
        "cpu": min(r["cpu"] for r in good),
        "runs": [r["wall"] for r in good],
    }


def ensure_venv(path: Path, packages: list[str]) -> Path:
    """A venv at `path` holding `packages` (created once); returns its bin directory."""
    bin_dir = path / "bin"
    stamp = path / ".installed"
    if stamp.exists() and stamp.read_text() == "\n".join(packages):
        return bin_dir
    log(f"creating {path.relative_to(ROOT)} with {', '.join(packages)} (first run only)")
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--clear", str(path)], check=True)
    pip = [str(bin_dir / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, *packages], check=True)
    stamp.write_text("\n".join(packages))
    return bin_dir


def corpus(docs: int) -> Path:
    out = BENCH / "corpus" / f"docs-{docs}"
    stamp = out / ".generated"
    if not stamp.exists():
        log(f"generating {docs} documents into {out.relative_to(ROOT)}")
        subprocess.run(
            [sys.executable, str(BENCH / "corpus.py"), str(out), "--docs", str(docs)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        stamp.write_text(str(docs))
    return out


def statekeeper() -> list[str]:
    script = BIN / "statekeeper"
    return [str(script)] if script.exists() else [sys.executable, "-m", "statekeeper"]


def checkov_argv(checkov_bin: Path, target: Path) -> list[str]:
    return [
        str(checkov_bin / "checkov"),
        "-d",
        str(target),
        "--framework",
        "kubernetes",
        "--skip-download",
        "--quiet",
        "-o",
        "json",
    ]


def ratio(slow: dict[str, Any], fast: dict[str, Any], key: str = "wall") -> float | None:
    if slow.get(key) and fast.get(key):
        return round(slow[key] / fast[key], 2)
    return None


def count_files(target: Path) -> int:
    return sum(
        1
        for directory, dirs, files in os.walk(target)
        if not any(p.startswith(".") for p in Path(directory).parts[len(target.parts) :])
        for f in files
        if f.endswith((".yaml", ".yml"))
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", nargs="?", type=Path, help="corpus directory (default: generate)")
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument(
        "--checkov-docs",
        type=int,
        default=2_000,
        help="size of the smaller corpus for a second Checkov ratio (0: none)",
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--checkov-timeout", type=float, default=1800.0)
    parser.add_argument("--no-checkov", action="store_true")
    parser.add_argument("--no-parsers", action="store_true")
    parser.add_argument("--out", type=Path, default=BENCH / "out" / "results.json")
    args = parser.parse_args()

    target = (args.dir or corpus(args.docs)).resolve()
    sk = statekeeper()
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_avg": os.getloadavg(),
        },
        "corpus": {"dir": str(target), "yaml_files": count_files(target)},
    }
    log(f"corpus {target} ({results['corpus']['yaml_files']} YAML files)")

    log("version")
    results["version"] = best_of([*sk, "--version"], max(5, args.repeat))
    log("bare CSafeLoader parse")
    results["bare"] = best_of([sys.executable, "-c", BARE_PARSE, str(target)], args.repeat)
    log("statekeeper audit --no-render")
    audit = [*sk, "audit", "--no-render", "--format", "json", str(target)]
    results["audit"] = best_of(audit, args.repeat, ok=(0, 1))

    if not args.no_checkov:
        checkov_bin = ensure_venv(CHECKOV_VENV, [CHECKOV_SPEC])
        log(f"checkov on {target.name} (one run, timeout {args.checkov_timeout:.0f} s)")
        results["checkov"] = timed(
            checkov_argv(checkov_bin, target), ok=(0, 1), timeout=args.checkov_timeout
        )
        if args.checkov_docs:
            small = corpus(args.checkov_docs)
            log(f"smaller corpus: {small.name}: audit, then checkov")
            results["small"] = {
                "dir": str(small),
                "audit": best_of(
                    [*sk, "audit", "--no-render", "--format", "json", str(small)],
                    args.repeat,
                    ok=(0, 1),
                ),
                "checkov": timed(
                    checkov_argv(checkov_bin, small), ok=(0, 1), timeout=args.checkov_timeout
                ),
                # With rendering: both overlays through kustomize (one run; kustomize dominates).
                "audit_render": timed(
                    [*sk, "audit", "--format", "json", str(small)], ok=(0, 1), timeout=1800
                ),
            }

    if not args.no_parsers:
        parsers_bin = ensure_venv(PARSERS_VENV, PARSER_PACKAGES)
        kubectl = shutil.which("kubectl") or shutil.which("kubectl", path=str(BIN))
        parsers_json = args.out.parent / "parsers.json"
        log("alternative parsers (bench/parsers.py)")
        done = subprocess.run(
            [
                str(parsers_bin / "python"),
                str(BENCH / "parsers.py"),
                str(target),
                "--kubectl",
                str(kubectl),
                "--repeat",
                str(args.repeat),
                "--json",
                str(parsers_json),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0:
            results["parsers"] = json.loads(parsers_json.read_text())
            results["parsers_report"] = done.stdout
        else:
            results["parsers"] = {"error": done.stderr.strip()[-500:]}

    small = results.get("small", {})
    results["ratios"] = {}
    for key in ("wall", "cpu"):
        results["ratios"][key] = {
            "audit / bare parse (target <= 2)": ratio(results["audit"], results["bare"], key),
            "checkov / audit (target >= 50)": ratio(
                results.get("checkov", {}), results["audit"], key
            ),
            "checkov / audit, smaller corpus": ratio(
                small.get("checkov", {}), small.get("audit", {}), key
            ),
        }
    version_wall = results["version"].get("wall")
    results["ratios"]["version_ms (target < 150)"] = (
        round(version_wall * 1000) if version_wall else None
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    report(results)
    log(f"results in {args.out}")
    return 0


def report(results: dict[str, Any]) -> None:
    def row(name: str, r: dict[str, Any]) -> str:
        if r.get("wall") is None:
            return f"| {name} | {r.get('error', 'not run')} | | |"
        return f"| {name} | {r['wall']:.3f} | {r.get('cpu', 0):.3f} | {r.get('max_rss_mib', '')} |"

    print(f"\ncorpus: {results['corpus']['dir']} ({results['corpus']['yaml_files']} YAML files)")
    print(f"machine: {results['machine']['cpus']} CPUs, load {results['machine']['load_avg']}\n")
    print("| what | wall s (best) | CPU s | peak RSS MiB |")
    print("| --- | --- | --- | --- |")
    print(row("bare CSafeLoader parse", results["bare"]))
    print(row("statekeeper audit --no-render --format json", results["audit"]))
    print(row("checkov -d DIR --framework kubernetes", results.get("checkov", {})))
    small = results.get("small", {})
    if small:
        print(row(f"statekeeper audit ({Path(small['dir']).name})", small["audit"]))
        print(row(f"checkov ({Path(small['dir']).name})", small["checkov"]))
        print(
            row(f"statekeeper audit, rendered ({Path(small['dir']).name})", small["audit_render"])
        )
    print(row("statekeeper --version", results["version"]))
    print()
    for key in ("wall", "cpu"):
        for name, value in results["ratios"][key].items():
            print(f"{name} [{key}]: {value}")
    print(f"statekeeper --version: {results['ratios']['version_ms (target < 150)']} ms")
    if "parsers_report" in results:
        print("\n" + results["parsers_report"])


if __name__ == "__main__":
    sys.exit(main())
