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
    """Validate the mapping of config file `path`; ConfigFileError names the field."""
    from statekeeper.report import FORMATS

    unknown = sorted(str(k) for k in data if k not in _KEYS)
    if unknown:
        raise ConfigFileError(f"{path}: unknown field {unknown[0]!r} (known: {', '.join(_KEYS)})")
    base = path.parent
    policy = data.get("policy")
    policy_file: Path | None = None
    inline: dict[str, Any] = {}
    if isinstance(policy, str):
        policy_file = base / policy
    elif isinstance(policy, dict):
        inline = policy
    elif policy is not None:
        raise ConfigFileError(f"{path}: field policy: expected a mapping or a policy file path")

    environments: dict[str, list[str]] = {}
    raw_envs = data.get("environments") or {}
    if not isinstance(raw_envs, dict):
        raise ConfigFileError(f"{path}: field environments: expected environment: [directories]")
    for env, dirs in raw_envs.items():
        environments[str(env)] = _strings(dirs, path, f"environments.{env}")

    output = data.get("output") or {}
    if not isinstance(output, dict):
        raise ConfigFileError(f"{path}: field output: expected a mapping")
    for key in output:
        if key not in _OUTPUT_KEYS:
            raise ConfigFileError(
                f"{path}: unknown field output.{key} (known: {', '.join(_OUTPUT_KEYS)})"
            )
    formats = _strings(output.get("format", []), path, "output.format")
    for fmt in formats:
        if fmt not in FORMATS:
            raise ConfigFileError(
                f"{path}: field output.format: unknown format {fmt!r} (known: {', '.join(FORMATS)})"
            )
    raw_outputs = output.get("output") or {}
    if not isinstance(raw_outputs, dict):
        raise ConfigFileError(f"{path}: field output.output: expected format: file")
    outputs = {}
    for fmt, file in raw_outputs.items():
        if fmt not in FORMATS or not isinstance(file, str):
            raise ConfigFileError(f"{path}: field output.output.{fmt}: expected format: file")
        outputs[str(fmt)] = base / file

    severity: dict[str, str] = {}
    raw_severity = data.get("severity") or {}
    if not isinstance(raw_severity, dict):
        raise ConfigFileError(f"{path}: field severity: expected rule: severity")
    for rule, value in raw_severity.items():
        severity[str(rule)] = _choice(value, SEVERITIES, path, f"severity.{rule}")

    doc_url = data.get("doc-url")
    if doc_url is not None and not isinstance(doc_url, str):
        raise ConfigFileError(f"{path}: field doc-url: expected a URL template")
    baseline = data.get("baseline")
    if baseline is not None and not isinstance(baseline, str):
        raise ConfigFileError(f"{path}: field baseline: expected a file path")
    paths = _strings(data.get("paths", []), path, "paths")
    return Config(
        path=path,
        policy_file=policy_file,
        policy=inline,
        environments=environments,
        exclude=_strings(data.get("exclude", []), path, "exclude"),
        baseline=base / baseline if baseline else None,
        paths=[str(base / p) if p != "-" else p for p in paths],
        formats=formats,
        outputs=outputs,
        fail_on=_choice(output["fail-on"], FAIL_ON, path, "output.fail-on")
        if "fail-on" in output
        else None,
        color=_choice(output["color"], COLORS, path, "output.color") if "color" in output else None,
        severity=severity,
        doc_url=doc_url,
    )
