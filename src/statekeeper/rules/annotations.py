"""The `statekeeper.io/ignore` annotation's grammar, read by the engine (suppressions) and by
SK001 (every exemption needs a reason; sk001_ignore_needs_reason.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import pairwise

from statekeeper.inventory.annotations import subject_annotations as subject_annotations

# An entry starts with a rule id or slug; entries are separated by commas or newlines that are
# followed by the next id/slug and a colon (so reasons may contain commas).
_ENTRY_START = re.compile(
    r"(?:^|[,\n])\s*(?=SK\d{3}\s*(?::|,|$|\n)|[a-z0-9]+(?:-[a-z0-9]+)+\s*:)", re.IGNORECASE
)


_ENTRY = re.compile(
    r"^\s*(?P<rule>SK\d{3}|[a-z0-9]+(?:-[a-z0-9]+)+)\s*(?::\s*(?P<reason>.*))?$",
    re.DOTALL | re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class IgnoreEntry:
    """One `<rule>: <reason>` entry of an ignore annotation (`reason` empty if missing)."""

    rule: str  # id (upper case) or slug, as written
    reason: str


def parse_ignore(value: str) -> tuple[list[IgnoreEntry], list[str]]:
    """Parse an ignore annotation: (entries, unparsable pieces)."""
    entries: list[IgnoreEntry] = []
    bad: list[str] = []
    starts = [m.end() for m in _ENTRY_START.finditer(value)]
    if not starts:
        return [], [value.strip()] if value.strip() else []
    if value[: starts[0]].strip(" ,\n"):
        bad.append(value[: starts[0]].strip(" ,\n"))
    for start, end in pairwise([*starts, len(value)]):
        piece = value[start:end].strip(" ,\n")
        match = _ENTRY.match(piece)
        if match is None:
            bad.append(piece)
            continue
        rule = match.group("rule")
        entries.append(IgnoreEntry(rule.upper() if rule.lower().startswith("sk") else rule,
                                   (match.group("reason") or "").strip()))  # fmt: skip
    return entries, bad
