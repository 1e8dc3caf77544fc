"""What SK401 and SK402 share: strategy §3, Tier 3, a daily Velero schedule covers every
namespace, volumes included."""

from __future__ import annotations


def hours_text(seconds: float) -> str:
    """`86400.0` -> `"24h"`, as messages show intervals."""
    return f"{seconds / 3600:g}h"
