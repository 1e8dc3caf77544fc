"""How Helm releases are rendered (`statekeeper.manifests.helm`).

A module of its own so that the audit can say how it wants releases rendered without importing
the renderer: `load_sources` imports `helm` only when a release may be present (start-up time).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class HelmOptions:
    """How releases are rendered. `render=False` never runs helm (app-template is still
    interpreted); `repository_config`/`repository_cache` are passed to helm as
    `--repository-config`/`--repository-cache` (else helm's own defaults: the user's)."""

    render: bool = True
    repository_config: str | None = None
    repository_cache: str | None = None
    cache_dir: Path | None = None
    max_bytes: int = 16 * 1024 * 1024
