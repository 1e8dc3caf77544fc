"""Units shared by the policy, the rules and the agent: Kubernetes quantities and durations.

One parser each, so that what the audit accepts (e.g. `STATEKEEPER_RCLONE_INTERVAL=10m30s` in a
manifest) is exactly what the agent accepts at run time. A leaf module: imports nothing from
statekeeper.
"""

from __future__ import annotations

import re

_QUANTITY = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$")
_QUANTITY_FACTORS: dict[str, float] = {
    "": 1,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_quantity(value: object) -> float | None:
    """A Kubernetes quantity (`"10Gi"`, `"500M"`, `1024`) in bytes, or None if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        return None
    match = _QUANTITY.match(value)
    if not match or match.group(2) not in _QUANTITY_FACTORS:
        return None
    return float(match.group(1)) * _QUANTITY_FACTORS[match.group(2)]


def parse_duration(value: object) -> float | None:
    """`"10m"`, `"1h30m"`, `"600"` (seconds) or `600` in seconds; None if it is not a duration."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    match = _DURATION.match(text)
    if match:
        return float(match.group(1)) * _DURATION_SECONDS.get(match.group(2) or "s", 1.0)
    parts = _DURATION_PART.findall(text)
    if parts and "".join(n + u for n, u in parts) == text:
        return sum(float(n) * _DURATION_SECONDS[u] for n, u in parts)
    return None
