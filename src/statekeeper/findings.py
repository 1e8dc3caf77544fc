"""What the engine produces and every reporter consumes: findings and the report around them.

A leaf module: it imports nothing from statekeeper, so any layer may use it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    """Ordered from least to most severe."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def at_least(self, other: Severity) -> bool:
        return self.rank >= other.rank


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}


@dataclass(frozen=True, slots=True)
class Finding:
    """One violation of the strategy, about one object.

    `name` is the object the finding is about: the PVC/StorageClass/PV for SK1xx, the
    workload for SK2xx/SK3xx, the namespace or Schedule for SK401.
    """

    rule: str
    slug: str
    severity: Severity
    message: str
    remediation: str
    kind: str
    name: str
    namespace: str | None = None
    app: str | None = None
    environment: str | None = None
    file: str | None = None
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["severity"] = self.severity.value
        return data


@dataclass(frozen=True, slots=True)
class Suppressed:
    """A finding silenced by a `statekeeper.io/ignore` annotation, with its reason."""

    finding: Finding
    reason: str


@dataclass(frozen=True, slots=True)
class Note:
    """Something the user should know that is not a violation (a skipped file, an unknown
    environment). Shown by the terminal reporter, kept in JSON, never affects the exit code."""

    message: str
    file: str | None = None
    line: int | None = None


@dataclass(slots=True)
class Report:
    """The outcome of one audit."""

    findings: list[Finding] = field(default_factory=list)
    suppressed: list[Suppressed] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    # Names of the apps and environments seen, so scores exist for clean ones too.
    apps: dict[str, set[str]] = field(default_factory=dict)  # app -> environments
    resources: int = 0
    sources: list[str] = field(default_factory=list)
