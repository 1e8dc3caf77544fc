"""statekeeper: make a Kubernetes cluster's storage & backup strategy real.

The public API, for use from Python (see README, "Use it from Python")::

    from statekeeper import load_policy, run_audit

    report = run_audit(["examples/homelab"], policy=load_policy())
    for finding in report.findings:
        print(finding.rule, finding.severity, finding.name, finding.message)

The names are imported on first use (PEP 562 `__getattr__`): `import statekeeper`, which every
`statekeeper.*` import runs first, loads nothing else — no rule, inventory or pydantic module —
so the CLI's `--version`, `--help` and fast paths stay fast.
"""

from __future__ import annotations

from importlib import import_module

# Not `typing.TYPE_CHECKING`: importing typing would cost more than this module (type checkers
# treat any `TYPE_CHECKING` as true).
TYPE_CHECKING = False

__version__ = "0.1.0"

__all__ = [
    "Finding",
    "Policy",
    "Report",
    "Severity",
    "StatekeeperError",
    "evaluate",
    "load_policy",
    "run_audit",
]

if TYPE_CHECKING:
    from typing import Any

    from statekeeper.engine import evaluate, run_audit
    from statekeeper.errors import StatekeeperError
    from statekeeper.findings import Finding, Report, Severity
    from statekeeper.policy.load import load_policy
    from statekeeper.policy.model import Policy

# public name -> the module that defines it
_HOME = {
    "run_audit": "statekeeper.engine",
    "evaluate": "statekeeper.engine",
    "load_policy": "statekeeper.policy.load",
    "Policy": "statekeeper.policy.model",
    "Report": "statekeeper.findings",
    "Finding": "statekeeper.findings",
    "Severity": "statekeeper.findings",
    "StatekeeperError": "statekeeper.errors",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'statekeeper' has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value  # the next access is a plain lookup
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
