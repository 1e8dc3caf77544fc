"""The rendered-mode benchmark: kustomization roots, cold and warm, against bare kustomize.

    bench/render.py [--apps 80] [--repeat 3] [--no-checkov]   (or: make bench-render)

Generates (once) a repo of --apps apps laid out as `apps/<app>/{base,dev,prod}` (two roots per
app: ≥ 150 roots with the default), each base with a namespace, a Deployment with a litestream
sidecar, a PVC and a Service, each overlay patching the claim's StorageClass and size from its
own `pvc-patch.yaml`. Then, on the same tree, in fresh processes:

  kustomize   the bare `kubectl kustomize ROOT` of every root, 2 in parallel (the peer: what any
              tool that renders the roots must at least spend)
  cold        `statekeeper audit --format json DIR` with an empty render cache
  warm        the same again, the render cache filled by the cold run
  checkov     `checkov -d DIR --framework kustomize` from bench/.venv-checkov (one run)

Targets: cold ≤ 1.2× kustomize, ≥ 2× faster than Checkov, warm ≤ 10 % of cold, < 300 MB.
Times are the best of --repeat runs (Checkov: one), as noise on a shared machine only adds time.
Results go to bench/out/render.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from run import (
    BENCH,
    CHECKOV_SPEC,
    CHECKOV_VENV,
    best_of,
    ensure_venv,
    log,
    ratio,
    statekeeper,
    timed,
)

BARE_KUSTOMIZE = """
import subprocess, sys
from concurrent.futures import ThreadPoolExecutor
kubectl, roots = sys.argv[1], sys.argv[2:]
def build(root):
    return subprocess.run([kubectl, "kustomize", root], capture_output=True, check=True).stdout
with ThreadPoolExecutor(2) as pool:
    print(sum(len(out) for out in pool.map(build, roots)))
"""

KUSTOMIZATION = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"


def app_files(app: str) -> dict[str, str]:
    base = f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {app}
  labels: {{app.kubernetes.io/name: {app}}}
spec:
  selector: {{matchLabels: {{app: {app}}}}}
  template:
    metadata: {{labels: {{app: {app}}}}}
    spec:
      containers:
        - name: {app}
          image: vaultwarden/server:1.32.0
          volumeMounts: [{{name: data, mountPath: /data}}]
        - name: litestream
          image: litestream/litestream:0.3.13
          args: [replicate, /data/db.sqlite3, s3://backups/{app}/db]
          volumeMounts: [{{name: data, mountPath: /data}}]
      volumes:
        - name: data
          persistentVolumeClaim: {{claimName: {app}-data-pvc}}
---
apiVersion: v1
kind: Service
metadata: {{name: {app}}}
spec:
  selector: {{app: {app}}}
  ports: [{{port: 80}}]
"""
    pvc = f"""\
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {app}-data-pvc
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: synelia-iscsi-delete
  resources: {{requests: {{storage: 1Gi}}}}
"""
    files = {
        "base/kustomization.yaml": KUSTOMIZATION
        + f"namespace: {app}\nresources: [namespace.yaml, deployment.yaml, pvc.yaml]\n",
        "base/namespace.yaml": f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {app}}}\n",
        "base/deployment.yaml": base,
        "base/pvc.yaml": pvc,
    }
    overlays = (("dev", "synelia-iscsi-delete", "2Gi"), ("prod", "synelia-iscsi-retain", "10Gi"))
    for env, cls, size in overlays:
        files[f"{env}/kustomization.yaml"] = (
            KUSTOMIZATION + "resources: [../base]\npatches:\n  - path: pvc-patch.yaml\n"
        )
        files[f"{env}/pvc-patch.yaml"] = (
            f"apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: {app}-data-pvc}}\n"
            f"spec:\n  storageClassName: {cls}\n  resources: {{requests: {{storage: {size}}}}}\n"
        )
    return files


def generate(apps: int) -> tuple[Path, list[Path]]:
    out = BENCH / "corpus" / f"roots-{apps}"
    stamp = out / ".generated"
    if not stamp.exists():
        log(f"generating {apps} apps ({2 * apps} kustomization roots) into {out}")
        shutil.rmtree(out, ignore_errors=True)
        for index in range(apps):
            app = f"app{index:03d}"
            for name, text in app_files(app).items():
                path = out / "apps" / app / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
        stamp.write_text(str(apps))
    roots = sorted(out.glob("apps/*/dev")) + sorted(out.glob("apps/*/prod"))
    return out, roots


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apps", type=int, default=80)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-checkov", action="store_true")
    args = parser.parse_args()
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        log("kubectl is not on PATH: run `make bench-render` (it puts .venv/bin first)")
        return 2
    target, roots = generate(args.apps)
    results: dict[str, Any] = {"roots": len(roots), "dir": str(target)}
    log(f"bare kubectl kustomize of {len(roots)} roots, 2 in parallel")
    bare = [sys.executable, "-c", BARE_KUSTOMIZE, kubectl, *map(str, roots)]
    results["kustomize"] = best_of(bare, args.repeat)
    audit = [*statekeeper(), "audit", str(target), "--format", "json", "--fail-on", "never"]
    colds: list[dict[str, Any]] = []
    warms: list[dict[str, Any]] = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="statekeeper-bench-cache-") as cache:
            os.environ["STATEKEEPER_CACHE_DIR"] = cache
            log("statekeeper audit, cold cache, then warm")
            colds.append(timed(audit))
            warms.append(timed(audit))
    for name, runs in (("cold", colds), ("warm", warms)):
        good = [r for r in runs if r.get("wall") is not None]
        results[name] = (
            {**min(good, key=lambda r: r["wall"]), "runs": [r["wall"] for r in good]}
            if good
            else runs[0]
        )
    if not args.no_checkov:
        checkov_bin = ensure_venv(CHECKOV_VENV, [CHECKOV_SPEC])
        log("checkov --framework kustomize (one run)")
        results["checkov"] = timed(
            [
                str(checkov_bin / "checkov"),
                "-d",
                str(target),
                "--framework",
                "kustomize",
                "--skip-download",
                "--quiet",
                "-o",
                "json",
            ],
            ok=(0, 1),
            timeout=1800,
        )
    for key in ("wall", "cpu"):
        results[f"ratios_{key}"] = {
            "cold / kustomize (target <= 1.2)": ratio(results["cold"], results["kustomize"], key),
            "checkov / cold (target >= 2)": ratio(results.get("checkov", {}), results["cold"], key),
            "warm / cold (target <= 0.10)": ratio(results["warm"], results["cold"], key),
        }
    out = BENCH / "out"
    out.mkdir(exist_ok=True)
    (out / "render.json").write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
