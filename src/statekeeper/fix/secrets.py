"""Keep S3 keys out of `fix --diff`: context lines can show an inline key next to an edit.

The values are found the way the audit finds them (SK501): env entries whose name matches the
policy's credential variables, and credential keys of litestream/rclone configs. Every occurrence
of such a value in the diff is replaced by `***`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from typing import Any

import yaml

from statekeeper.policy.model import Policy

MASK = "***"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MIN_LENGTH = 4  # shorter values are not worth masking (and would mangle the diff)


def secret_values(texts: Iterable[str], policy: Policy) -> set[str]:
    """Inline credential values in these YAML texts."""
    env_globs = policy.credentials.env
    config_keys = set(policy.credentials.config_keys)
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            name, value = node.get("name"), node.get("value")
            if (
                isinstance(name, str)
                and isinstance(value, str | int)
                and any(fnmatch.fnmatchcase(name, glob) for glob in env_globs)
            ):
                found.add(str(value))
            for key, item in node.items():
                if key in config_keys and isinstance(item, str | int):
                    found.add(str(item))
                elif isinstance(item, str) and any(k in item for k in config_keys):
                    walk(_parse(item))  # an embedded litestream.yml / rclone.conf
                else:
                    walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for text in texts:
        for doc in _parse_all(text):
            walk(doc)
    return {v for v in found if len(v) >= _MIN_LENGTH}


def _parse(text: str) -> Any:
    try:
        return yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError:
        return None


def _parse_all(text: str) -> list[Any]:
    try:
        return list(yaml.load_all(text, Loader=_LOADER))
    except yaml.YAMLError:
        return []


def mask(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret value replaced by `***` (longest first)."""
    for value in sorted(secrets, key=len, reverse=True):
        text = text.replace(value, MASK)
    return text
