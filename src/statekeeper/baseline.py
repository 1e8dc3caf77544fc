"""Baselines: adopt statekeeper on a repository with legacy findings, then report only new ones.

`audit --write-baseline FILE` records every current finding; `audit --baseline FILE` hides the
findings the file records. A finding is recorded by its fingerprint

    sha256(rule, kind, namespace, name, environment, message key)[:24]

where the message key is the message with numbers blanked and whitespace collapsed: no file,
no line, so a baseline survives line moves, reformatting, reordering and file renames, and a
grown-but-still-wrong size is still the same finding. The file is JSON (sorted, one entry per
finding, a count where one object has the same finding twice) so it diffs well in review.
Writing replaces the file: a finding that disappeared is dropped from it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from statekeeper.errors import InputError
from statekeeper.findings import Finding, Note, Report

BASELINE_VERSION = 1
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_SPACE = re.compile(r"\s+")


def message_key(message: str) -> str:
    """The message without its numbers and layout (sizes, counts and intervals may drift)."""
    return _SPACE.sub(" ", _NUMBER.sub("#", message)).strip().lower()


def fingerprint(finding: Finding) -> str:
    parts = (
        finding.rule,
        finding.kind,
        finding.namespace or "",
        finding.name,
        finding.environment or "",
        message_key(finding.message),
    )
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class Baseline:
    """Fingerprint -> how many findings with it are known."""

    counts: Counter[str]
    source: str

    def filter(self, report: Report) -> Report:
        """The report without the known findings; a note says how many were hidden."""
        left = Counter(self.counts)
        kept: list[Finding] = []
        hidden = 0
        for finding in report.findings:
            key = fingerprint(finding)
            if left[key] > 0:
                left[key] -= 1
                hidden += 1
            else:
                kept.append(finding)
        notes = list(report.notes)
        if hidden:
            word = "finding" if hidden == 1 else "findings"
            notes.append(Note(f"{hidden} known {word} hidden by the baseline", self.source))
        return replace(report, findings=kept, notes=notes)


def baseline_data(report: Report) -> dict[str, Any]:
    """The baseline of a report's findings as JSON data."""
    entries: dict[str, dict[str, Any]] = {}
    for finding in report.findings:
        key = fingerprint(finding)
        if key in entries:
            entries[key]["count"] += 1
            continue
        entries[key] = {
            "fingerprint": key,
            "rule": finding.rule,
            "environment": finding.environment,
            "kind": finding.kind,
            "namespace": finding.namespace,
            "name": finding.name,
            "message": finding.message,
            "count": 1,
        }
    ordered = sorted(
        entries.values(),
        key=lambda e: (
            e["rule"],
            e["kind"],
            e["namespace"] or "",
            e["name"],
            e["environment"] or "",
            e["fingerprint"],
        ),
    )
    return {"version": BASELINE_VERSION, "tool": "statekeeper", "findings": ordered}


def write_baseline(path: Path, report: Report) -> int:
    """Write the baseline of `report` to `path` (replacing it); the number of findings."""
    text = json.dumps(baseline_data(report), indent=2, ensure_ascii=False) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise InputError(f"{path}: cannot write the baseline: {exc.strerror}") from None
    return len(report.findings)


def read_baseline(path: Path, *, missing_ok: bool = False) -> Baseline:
    """Read a baseline file; InputError (one line) when it is missing or malformed."""
    source = str(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if missing_ok:
            return Baseline(Counter(), source)
        raise InputError(
            f"{path}: baseline file not found (write one with --write-baseline)"
        ) from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a baseline file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a statekeeper baseline (invalid JSON: {exc})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read the baseline: {exc.strerror}") from None
    if (
        not isinstance(data, dict)
        or data.get("version") != BASELINE_VERSION
        or not isinstance(data.get("findings"), list)
    ):
        raise InputError(
            f"{path}: not a statekeeper baseline (expected version {BASELINE_VERSION} "
            "and a findings list)"
        )
    counts: Counter[str] = Counter()
    for i, entry in enumerate(data["findings"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("fingerprint"), str):
            raise InputError(f"{path}: findings[{i}]: no fingerprint")
        count = entry.get("count", 1)
        if not isinstance(count, int) or count < 1:
            raise InputError(f"{path}: findings[{i}]: count must be a positive integer")
        counts[entry["fingerprint"]] += count
    return Baseline(counts, source)
