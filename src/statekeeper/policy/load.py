"""Load the effective policy: the built-in `elite`, deep-merged with an optional user file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from statekeeper.errors import PolicyError
from statekeeper.policy.model import Policy

BUILTIN_DIR = Path(__file__).parent / "builtin"
DEFAULT_POLICY = "elite"
_MAX_POLICY_BYTES = 1_000_000


def builtin_policy_data(name: str = DEFAULT_POLICY) -> dict[str, Any]:
    """The raw mapping of a built-in policy (a fresh copy each call)."""
    data = yaml.load(_builtin_text(name), Loader=yaml.CSafeLoader)
    assert isinstance(data, dict)
    return data


@lru_cache(maxsize=4)
def _builtin_text(name: str) -> str:
    return (BUILTIN_DIR / f"{name}.yaml").read_text(encoding="utf-8")


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key (recursively); lists, scalars and null replace."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_policy(path: str | Path | None = None) -> Policy:
    """The effective policy. None = the built-in `elite`; a file overrides or extends it.

    A file may say `extends: none` to start from nothing instead of `elite`. Raises PolicyError
    with one line naming the file, the field and the problem.
    """
    if path is None:
        return _builtin_policy()
    return policy_from_override(_read_policy_file(Path(path)), str(path))


def policy_from_override(
    override: dict[str, Any],
    source: str,
    extra: dict[str, Any] | None = None,
    aliases: dict[str, list[str]] | None = None,
) -> Policy:
    """The built-in policy named by `override["extends"]` (default elite) deep-merged with
    `override`, then with `extra` (a config file's settings); `aliases` (environment -> overlay
    directory names) are added to the environments' aliases. PolicyError names `source`."""
    override = dict(override)
    base_name = override.pop("extends", DEFAULT_POLICY)
    if base_name in (None, "none"):
        base: dict[str, Any] = {}
    elif isinstance(base_name, str) and (BUILTIN_DIR / f"{base_name}.yaml").is_file():
        base = builtin_policy_data(base_name)
    else:
        raise PolicyError(f"{source}: field extends: unknown built-in policy {base_name!r}")
    merged = deep_merge(base, override)
    if extra:
        merged = deep_merge(merged, extra)
    for env, names in (aliases or {}).items():
        spec = (merged.get("environments") or {}).get(env)
        if not isinstance(spec, dict):
            raise PolicyError(f"{source}: field environments.{env}: unknown environment")
        known = list(spec.get("aliases") or [])
        spec = {**spec, "aliases": known + [n for n in names if n not in known]}
        merged["environments"] = {**merged["environments"], env: spec}
    merged["extends"] = base_name if isinstance(base_name, str) else "none"
    return validate_policy(merged, source)


@lru_cache(maxsize=1)
def _builtin_policy() -> Policy:
    """The built-in policy: from the generated cache when it matches elite.yaml (no
    validation, see `statekeeper.policy.cache`), else validated from the YAML."""
    try:
        from statekeeper.policy.builtin import elite_cache
    except ImportError:  # pragma: no cover - the cache ships with the package
        return _validated_builtin()
    from statekeeper.policy.cache import yaml_digest

    if yaml_digest(_builtin_text(DEFAULT_POLICY)) != elite_cache.YAML_SHA256:
        return _validated_builtin()
    return elite_cache.build()


def _validated_builtin() -> Policy:
    return validate_policy(builtin_policy_data(), f"built-in policy {DEFAULT_POLICY}")


def validate_policy(data: dict[str, Any], source: str) -> Policy:
    """Validate a policy mapping; the first error becomes a one-line PolicyError."""
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = str(error["msg"]).replace("\n", " ")
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise PolicyError(f"{source}: field {field}: {message}{more}") from None


def read_policy_file(path: Path) -> dict[str, Any]:
    """The mapping in a policy file; PolicyError (one line) when it cannot be read."""
    return _read_policy_file(path)


def _read_policy_file(path: Path) -> dict[str, Any]:
    try:
        if path.stat().st_size > _MAX_POLICY_BYTES:
            raise PolicyError(f"{path}: policy file larger than {_MAX_POLICY_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(f"{path}: policy file not found") from None
    except IsADirectoryError:
        raise PolicyError(f"{path}: is a directory, not a policy file") from None
    except UnicodeDecodeError:
        raise PolicyError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read policy file: {exc.strerror}") from None
    try:
        data = yaml.load(text, Loader=yaml.CSafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        # Same shape as the other policy errors: "<file>: [line N: ]<what>".
        where = f" line {mark.line + 1}:" if mark is not None else ""
        problem = getattr(exc, "problem", None)
        detail = f": {problem}" if problem else ""
        raise PolicyError(f"{path}:{where} invalid YAML{detail}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PolicyError(f"{path}: a policy file must be a mapping, not {type(data).__name__}")
    return data
