"""`.statekeeper.yaml`: a repository's audit settings, so a run needs no flags.

Found from the working directory up to the git root (the first one wins; outside a repository
only the working directory is looked at), or named with `--config FILE`. Flags win over it.

    policy: {...} | path          # policy overrides (as a --policy file), or a policy file
    environments:                 # environment -> overlay directories audited as it
      production: [clusters/live]
    exclude: ["charts/**"]        # globs (relative to this file) whose objects are not judged
    baseline: .statekeeper-baseline.json
    paths: [.]                    # what `statekeeper audit` audits without PATHS
    output:
      format: [text]              # or several: [text, sarif]
      output: {sarif: statekeeper.sarif}   # a file per format (stdout when absent)
      fail-on: error
      color: auto
    severity: {SK104: info}       # severity overrides (the policy's `rules.<id>.severity`)
    doc-url: https://github.com/me/repo/blob/main/docs/rules/{page}

Relative paths are relative to the file's directory. Validation is by hand, not pydantic: the
config is read on every run and must not cost a heavy import (see bench/README.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from statekeeper.errors import StatekeeperError
from statekeeper.repo import git_root

CONFIG_NAMES = (".statekeeper.yaml", ".statekeeper.yml")
SEVERITIES = ("info", "warning", "error")
FAIL_ON = ("error", "warning", "info", "never")
COLORS = ("auto", "always", "never")
_KEYS = (
    "policy",
    "environments",
    "exclude",
    "baseline",
    "paths",
    "output",
    "severity",
    "doc-url",
)
_OUTPUT_KEYS = ("format", "output", "fail-on", "color")


class ConfigFileError(StatekeeperError):
    """The config file is unreadable or invalid (exit 2)."""


@dataclass(frozen=True, slots=True)
class Config:
    """A validated config file (all paths absolute). `path` is None when there is none."""

    path: Path | None = None
    policy_file: Path | None = None
    policy: dict[str, Any] = field(default_factory=dict)
    environments: dict[str, list[str]] = field(default_factory=dict)
    exclude: list[str] = field(default_factory=list)
    baseline: Path | None = None
    paths: list[str] = field(default_factory=list)
    formats: list[str] = field(default_factory=list)
    outputs: dict[str, Path] = field(default_factory=dict)
    fail_on: str | None = None
    color: str | None = None
    severity: dict[str, str] = field(default_factory=dict)
    doc_url: str | None = None

    @property
    def directory(self) -> Path | None:
        return self.path.parent if self.path is not None else None

    def policy_overrides(self) -> dict[str, Any]:
        """Settings to merge over the policy: the severity overrides as `rules.<id>.severity`."""
        rules = {rule: {"severity": severity} for rule, severity in self.severity.items()}
        return {"rules": rules} if rules else {}

    def environment_aliases(self) -> dict[str, list[str]]:
        """Environment -> overlay directory names that stand for it."""
        return {
            env: [Path(d).name.lower() for d in dirs if Path(d).name]
            for env, dirs in self.environments.items()
        }

    @property
    def changes_policy(self) -> bool:
        return bool(self.policy_file or self.policy or self.environments or self.severity)


def find_config(start: Path) -> Path | None:
    """The config file at or above `start`, up to the git root (or only in `start`)."""
    here = start.resolve()
    root = git_root(here)
    directories = [here] if root is None else [here, *here.parents]
    for directory in directories:
        for name in CONFIG_NAMES:
            candidate = directory / name
            if candidate.is_file():
                return candidate
        if directory == root:
            break
    return None


def load_config(explicit: Path | None, start: Path) -> Config:
    """The config named by `--config`, else the one found from `start`, else an empty one."""
    path = explicit if explicit is not None else find_config(start)
    if path is None:
        return Config()
    return parse_config(_read(path), path.resolve() if explicit is None else path.absolute())


def _read(path: Path) -> dict[str, Any]:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigFileError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise ConfigFileError(f"{path}: is a directory, not a config file") from None
    except UnicodeDecodeError:
        raise ConfigFileError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigFileError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}:" if mark is not None else ""
        raise ConfigFileError(f"{path}:{where} invalid YAML") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigFileError(f"{path}: a config file must be a mapping")
    return data


def _strings(value: Any, path: Path, name: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ConfigFileError(f"{path}: field {name}: expected a string or a list of strings")


def _choice(value: Any, choices: tuple[str, ...], path: Path, name: str) -> str:
    text = str(value).lower() if isinstance(value, str | bool) else None
    if isinstance(value, bool):  # YAML reads `never`/`no` fine, but `off` as False
        text = "never" if value is False else None
    if text not in choices:
        raise ConfigFileError(f"{path}: field {name}: must be one of {', '.join(choices)}")
    return text


def parse_config(data: dict[str, Any], path: Path) -> Config:
    """Validate the mapping of config file `path`; ConfigFileError names the field.

    One step a field, always in this order, so a file with several errors always reports the
    same one."""
    unknown = sorted(str(k) for k in data if k not in _KEYS)
    if unknown:
        raise ConfigFileError(f"{path}: unknown field {unknown[0]!r} (known: {', '.join(_KEYS)})")
    base = path.parent
    policy_file, inline = _policy(data.get("policy"), base, path)
    environments = _environments(data.get("environments"), path)
    output = _output(data.get("output"), path)
    formats = _formats(output.get("format", []), path)
    outputs = _output_files(output.get("output"), base, path)
    severity = _severity(data.get("severity"), path)
    doc_url = _optional_string(data.get("doc-url"), path, "doc-url", "a URL template")
    baseline = _optional_string(data.get("baseline"), path, "baseline", "a file path")
    paths = _strings(data.get("paths", []), path, "paths")
    exclude = _strings(data.get("exclude", []), path, "exclude")
    fail_on = _optional_choice(output, "fail-on", FAIL_ON, path)
    color = _optional_choice(output, "color", COLORS, path)
    return Config(
        path=path,
        policy_file=policy_file,
        policy=inline,
        environments=environments,
        exclude=exclude,
        baseline=base / baseline if baseline else None,
        paths=[str(base / p) if p != "-" else p for p in paths],
        formats=formats,
        outputs=outputs,
        fail_on=fail_on,
        color=color,
        severity=severity,
        doc_url=doc_url,
    )


def _policy(value: Any, base: Path, path: Path) -> tuple[Path | None, dict[str, Any]]:
    """(policy file, inline overrides): `policy:` names a file (relative to the config) or
    holds the overrides themselves."""
    if isinstance(value, str):
        return base / value, {}
    if isinstance(value, dict):
        return None, value
    if value is not None:
        raise ConfigFileError(f"{path}: field policy: expected a mapping or a policy file path")
    return None, {}


def _environments(value: Any, path: Path) -> dict[str, list[str]]:
    """Environment -> the overlay directories audited as it."""
    environments = _mapping(value, path, "environments", "environment: [directories]")
    return {
        str(env): _strings(dirs, path, f"environments.{env}") for env, dirs in environments.items()
    }


def _output(value: Any, path: Path) -> dict[Any, Any]:
    """The `output:` mapping, its keys checked (a misspelt key would silently do nothing)."""
    output = _mapping(value, path, "output", "a mapping")
    for key in output:
        if key not in _OUTPUT_KEYS:
            raise ConfigFileError(
                f"{path}: unknown field output.{key} (known: {', '.join(_OUTPUT_KEYS)})"
            )
    return output


def _formats(value: Any, path: Path) -> list[str]:
    """`output.format`: one report format or several, each one statekeeper writes."""
    from statekeeper.report import FORMATS

    formats = _strings(value, path, "output.format")
    for fmt in formats:
        if fmt not in FORMATS:
            raise ConfigFileError(
                f"{path}: field output.format: unknown format {fmt!r} (known: {', '.join(FORMATS)})"
            )
    return formats


def _output_files(value: Any, base: Path, path: Path) -> dict[str, Path]:
    """`output.output`: format -> the file (relative to the config) it is written to."""
    from statekeeper.report import FORMATS

    outputs: dict[str, Path] = {}
    for fmt, file in _mapping(value, path, "output.output", "format: file").items():
        if fmt not in FORMATS or not isinstance(file, str):
            raise ConfigFileError(f"{path}: field output.output.{fmt}: expected format: file")
        outputs[str(fmt)] = base / file
    return outputs


def _severity(value: Any, path: Path) -> dict[str, str]:
    """Rule id -> the severity it is reported at instead of its own."""
    severity = _mapping(value, path, "severity", "rule: severity")
    return {
        str(rule): _choice(v, SEVERITIES, path, f"severity.{rule}") for rule, v in severity.items()
    }


def _mapping(value: Any, path: Path, name: str, expected: str) -> dict[Any, Any]:
    """A mapping field; absent, null or empty is an empty mapping."""
    value = value or {}
    if not isinstance(value, dict):
        raise ConfigFileError(f"{path}: field {name}: expected {expected}")
    return value


def _optional_string(value: Any, path: Path, name: str, expected: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ConfigFileError(f"{path}: field {name}: expected {expected}")
    return value


def _optional_choice(
    output: dict[Any, Any], key: str, choices: tuple[str, ...], path: Path
) -> str | None:
    """`output.<key>`, one of `choices`, or None when it is not set (the flag's default)."""
    return _choice(output[key], choices, path, f"output.{key}") if key in output else None
