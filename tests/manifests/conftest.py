"""Loader tests keep their kustomize render cache in their own temporary folder."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def render_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path_factory.mktemp("render-cache")
    monkeypatch.setenv("STATEKEEPER_CACHE_DIR", str(folder))
    return folder
