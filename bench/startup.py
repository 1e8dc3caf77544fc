"""Start-up benchmark: `statekeeper audit one-file.yaml --no-render` against a bare parse.

    bench/startup.py [--repeat 30]          (or: make bench-startup)

Both run in fresh interpreters, interleaved, on the same one-document file:

  bare   python -c "import yaml; yaml.load(open(FILE), Loader=yaml.CSafeLoader)"
  audit  statekeeper audit FILE --no-render             (the pre-commit case; text report)
  json   statekeeper audit FILE --no-render -f json
  typer  the same audit through the Typer app (what every run paid before the fast path)
  help   statekeeper audit --help                       (through Typer, for comparison)

Each time is wall-clock around the whole process (interpreter start included). Noise on a
shared machine only ever adds time, so the minimum is the figure of merit; the median is shown
too. Targets: audit ≤ 120 ms and ≤ 3× bare. Results go to bench/out/startup.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent

ONE_FILE = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: web
  labels: {app.kubernetes.io/name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: nginx:1.27
          volumeMounts: [{name: data, mountPath: /data}]
      volumes:
        - name: data
          persistentVolumeClaim: {claimName: web-data-pvc}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: web-data-pvc, namespace: web, labels: {app.kubernetes.io/name: web}}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: synelia-iscsi-delete
  resources: {requests: {storage: 1Gi}}
"""


# The same audit through the Typer app, as every run went before the fast path.
THROUGH_TYPER = (
    "import sys; from statekeeper.cli import run; "
    "sys.argv = ['statekeeper', 'audit', sys.argv[1], '--no-render']; run()"
)


def commands(file: Path) -> dict[str, list[str]]:
    bare = f"import yaml; yaml.load(open({str(file)!r}), Loader=yaml.CSafeLoader)"
    statekeeper = str(BIN / "statekeeper")
    return {
        "bare": [sys.executable, "-c", bare],
        "audit": [statekeeper, "audit", str(file), "--no-render"],
        "json": [statekeeper, "audit", str(file), "--no-render", "-f", "json"],
        "typer": [sys.executable, "-c", THROUGH_TYPER, str(file)],
        "help": [statekeeper, "audit", "--help"],
    }


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one run; CPU (user + system of the child) is the steadier one on
    a busy machine: waiting for a core adds wall time, not CPU time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    # A user's shell: colour variables unset, and bytecode caching on (PYTHONDONTWRITEBYTECODE
    # would recompile every module on every run, which no installed copy does).
    dropped = ("FORCE_COLOR", "NO_COLOR", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "one-file.yaml"
        file.write_text(ONE_FILE)
        runs = commands(file)
        for argv in runs.values():  # warm the page cache and the .pyc files
            timed(argv, env)
        walls: dict[str, list[float]] = {name: [] for name in runs}
        cpus: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.repeat):
            for name, argv in runs.items():
                wall, cpu = timed(argv, env)
                walls[name].append(wall)
                cpus[name].append(cpu)
    best = {name: min(values) for name, values in walls.items()}
    median = {name: statistics.median(values) for name, values in walls.items()}
    cpu_best = {name: min(values) for name, values in cpus.items()}
    load = os.getloadavg()[0]
    print(f"start-up, {args.repeat} interleaved runs each, load average {load:.1f}\n")
    print(
        "| run | wall min ms | wall median ms | CPU min ms | ÷ bare wall (min) | ÷ bare CPU (min) |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for name in runs:
        print(
            f"| {name} | {best[name] * 1000:.0f} | {median[name] * 1000:.0f} | "
            f"{cpu_best[name] * 1000:.0f} | {best[name] / best['bare']:.2f} | "
            f"{cpu_best[name] / cpu_best['bare']:.2f} |"
        )
    out = BENCH / "out"
    out.mkdir(exist_ok=True)
    results = {"repeat": args.repeat, "load": load, "min": best, "median": median}
    (out / "startup.json").write_text(json.dumps({**results, "cpu_min": cpu_best}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
