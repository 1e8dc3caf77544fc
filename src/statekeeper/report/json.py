"""`--format json`: the report as versioned, documented JSON (see docs/audit.md).

Shape (keys always present, always in this order):

    {"version": 1,
     "tool": {"name", "version"},
     "findings": [Finding.to_dict() ...],           # sorted like the terminal report
     "suppressed": [{...Finding.to_dict(), "reason"} ...],
     "notes": [{"message", "file", "line"} ...],
     "summary": {"findings", "by_severity", "by_rule", "suppressed", "notes", "resources",
                 "sources", "apps", "environments", "scores": {"apps": [...], "environments"}}}

Additive changes keep `version` 1; renaming or removing a key bumps it.
"""

from __future__ import annotations

import json
from typing import Any

from statekeeper import __version__
from statekeeper.findings import Note, Report, Suppressed
from statekeeper.report.summary import (
    finding_sort_key,
    note_sort_key,
    sorted_findings,
    summarize,
)

SCHEMA_VERSION = 1


def _suppressed(item: Suppressed) -> dict[str, Any]:
    return {**item.finding.to_dict(), "reason": item.reason}


def _note(note: Note) -> dict[str, Any]:
    return {"message": note.message, "file": note.file, "line": note.line}


def to_data(report: Report) -> dict[str, Any]:
    """The JSON document as Python data (what `render_json` serialises)."""
    summary = summarize(report)
    suppressed = sorted(report.suppressed, key=lambda s: finding_sort_key(s.finding))
    return {
        "version": SCHEMA_VERSION,
        "tool": {"name": "statekeeper", "version": __version__},
        "findings": [f.to_dict() for f in sorted_findings(report.findings)],
        "suppressed": [_suppressed(s) for s in suppressed],
        "notes": [_note(n) for n in sorted(report.notes, key=note_sort_key)],
        "summary": {
            "findings": summary.total,
            "by_severity": {sev.value: n for sev, n in summary.by_severity.items()},
            "by_rule": summary.by_rule,
            "suppressed": summary.suppressed,
            "notes": summary.notes,
            "resources": summary.resources,
            "sources": list(report.sources),
            "apps": summary.apps,
            "environments": summary.environments,
            "scores": {
                "apps": [
                    {
                        "app": s.app,
                        "environment": s.environment,
                        "score": s.score,
                        "errors": s.errors,
                        "warnings": s.warnings,
                        "infos": s.infos,
                    }
                    for s in summary.app_scores
                ],
                "environments": summary.environment_scores,
            },
        },
    }


def render_json(report: Report, *, indent: int | None = 2) -> str:
    """The report as a JSON document ending in a newline."""
    return json.dumps(to_data(report), indent=indent, ensure_ascii=False) + "\n"
