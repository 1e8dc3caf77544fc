"""Reporters: pure functions from a `Report` to the text of one output format.

    render(report, "text" | "json" | "sarif", color=..., width=..., rules=...) -> str

No reporter reads files, the environment or the clock: the same report gives the same text.
Formats are imported lazily so that picking one never imports the others (rich is not needed for
JSON).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal, get_args

from statekeeper.findings import Report

if TYPE_CHECKING:
    from statekeeper.report.sarif import RuleInfo

Format = Literal["text", "json", "sarif"]
FORMATS: tuple[str, ...] = get_args(Format)


def render(
    report: Report,
    fmt: str,
    *,
    color: bool = False,
    width: int = 100,
    rules: Sequence[RuleInfo] = (),
) -> str:
    """Render `report` in format `fmt`.

    `color` and `width` apply to the terminal text only; `rules` (rule metadata: id, slug,
    severity, title, rationale, remediation) feeds SARIF's `tool.driver.rules`.
    Raises ValueError for an unknown format.
    """
    if fmt == "text":
        from statekeeper.report.text import render_text

        return render_text(report, color=color, width=width)
    if fmt == "json":
        from statekeeper.report.json import render_json

        return render_json(report)
    if fmt == "sarif":
        from statekeeper.report.sarif import render_sarif

        return render_sarif(report, rules)
    raise ValueError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")


__all__ = ["FORMATS", "Format", "render"]
