"""`statekeeper generate`: manifests that start compliant with the strategy.

Public API: `AppSpec`, `render_app`, `velero_schedule_yaml`, `storage_classes_yaml`,
`write_new_files`, `load_strategy`.
"""

from __future__ import annotations

from statekeeper.generate.app import AppSpec, render_app
from statekeeper.generate.cluster import storage_classes_yaml, velero_schedule_yaml
from statekeeper.generate.strategy import Strategy, load_strategy
from statekeeper.generate.yamlout import write_new_files

__all__ = [
    "AppSpec",
    "Strategy",
    "load_strategy",
    "render_app",
    "storage_classes_yaml",
    "velero_schedule_yaml",
    "write_new_files",
]
