"""Errors that end a command with a one-line message and a documented exit code.

Exit codes (also in README.md):

audit / fix / generate / policy
  0  success, no findings at or above --fail-on
  1  findings at or above --fail-on
  2  usage or input error (bad YAML, unreadable file, missing kustomize, bad policy, ...)

agent
  0  success
  2  configuration error (bad flags or environment)
  3  refused to start to protect data (corrupt DB and no replica, missing replica of a
     previously initialised volume, restored copy failing its check, sync that would wipe the
     remote copy)
  4  infrastructure error (S3 unreachable, credentials refused, litestream/rclone missing or
     failing, timeout)
  5  verification failed (agent verify: a check failed or the recovery point is too old)
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_INFRA = 4
EXIT_VERIFY_FAILED = 5


class StatekeeperError(Exception):
    """Base class: `str(err)` is the one-line message shown to the user."""

    exit_code: int = EXIT_USAGE


class InputError(StatekeeperError):
    """A file, directory, stream or rendered overlay could not be read as Kubernetes YAML."""

    exit_code = EXIT_USAGE


class PolicyError(StatekeeperError):
    """A policy file is missing, unreadable or does not validate."""

    exit_code = EXIT_USAGE


class ConfigError(StatekeeperError):
    """The agent's flags or environment are invalid."""

    exit_code = EXIT_USAGE


class RefusedError(StatekeeperError):
    """The agent refuses to go on because going on could lose data."""

    exit_code = EXIT_REFUSED


class InfraError(StatekeeperError):
    """S3, credentials, or an external binary failed."""

    exit_code = EXIT_INFRA


class VerifyFailed(StatekeeperError):
    """A restore drill found a problem."""

    exit_code = EXIT_VERIFY_FAILED
