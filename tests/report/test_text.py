"""The terminal report: grouped by app and environment, plain when not coloured, stable."""

from __future__ import annotations

import re

from statekeeper.findings import Report, Severity
from statekeeper.report import render
from statekeeper.report.summary import score, summarize
from statekeeper.report.text import render_text

from .sample import finding, sample_report

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_plain_text_has_no_escape_codes_and_is_stable() -> None:
    first = render(sample_report(), "text")
    assert "\x1b[" not in first
    assert first == render(sample_report(), "text")
    assert all(line == line.rstrip() for line in first.splitlines())


def test_colour_only_adds_styles() -> None:
    coloured = render_text(sample_report(), color=True)
    assert "\x1b[" in coloured
    uncoloured = "\n".join(line.rstrip() for line in ANSI.sub("", coloured).splitlines()) + "\n"
    assert uncoloured == render_text(sample_report(), color=False)


def test_groups_by_app_then_environment_cluster_last() -> None:
    text = render(sample_report(), "text")
    headings = [
        line.split(" ─")[0] for line in text.splitlines() if line[:1].strip() and "──" in line
    ]
    assert headings == [
        "mealie",
        "syncthing",
        "(cluster)",
        "suppressed (1)",
        "notes (2)",
        "summary",
    ]
    mealie = text[text.index("mealie ─") : text.index("syncthing ─")]
    assert mealie.index("development · 1 finding · score 90") < mealie.index(
        "production · 2 findings · score 87"
    )
    # most severe first within an environment
    assert mealie.index("SK201") < mealie.index("SK103", mealie.index("production"))


def test_each_finding_shows_severity_rule_object_location_message_fix() -> None:
    text = render(sample_report(), "text")
    block = text[text.index("warning  SK103") :]
    lines = [line.strip() for line in block.splitlines()[:4]]
    assert lines == [
        "warning  SK103 pvc-name  PersistentVolumeClaim mealie/mealie-data",
        "base/mealie/pvc.yaml:2",
        'PVC name "mealie-data" does not match <app>-<purpose>-pvc.',
        "fix: Rename the claim, e.g. mealie-data-pvc.",
    ]


def test_finding_without_file_has_no_location_line() -> None:
    text = render(sample_report(), "text")
    block = text[text.index("info     SK301") :].splitlines()
    assert block[1].strip() == "config-needs-rclone-sidecar violated"


def test_suppressed_and_notes_sections() -> None:
    text = render(sample_report(), "text")
    assert "SK104  PersistentVolumeClaim home-automation/esphome-config-pvc [production]" in text
    assert "reason: ESPHome build caches need 5Gi" in text
    assert "- README.md: skipped: not Kubernetes YAML" in text
    assert "- extra/ns.yaml:4: environment unknown for namespace scratch" in text


def test_summary_counts_and_score_table() -> None:
    text = render(sample_report(), "text")
    summary = text[text.index("summary ─") :]
    assert "5 findings: 3 errors · 1 warning · 1 info · 1 suppressed · 2 notes" in summary
    rows = {line.split()[0]: line.split()[1:] for line in summary.splitlines()[4:] if line.strip()}
    assert rows["app"] == ["development", "production"]
    assert rows["mealie"] == ["90", "87"]
    assert rows["syncthing"] == ["–", "99"]
    assert rows["vaultwarden"] == ["100", "100"]
    assert rows["(cluster)"] == ["90", "100"]
    assert summary.splitlines()[-1].split() == ["all", "apps", "95", "97"]


def test_empty_report_says_so() -> None:
    report = Report(apps={"vaultwarden": {"production"}}, resources=3)
    text = render(report, "text")
    assert "No findings: every audited object follows the strategy." in text
    assert "0 findings: 0 errors · 0 warnings · 0 info · 0 suppressed · 0 notes" in text
    assert "notes (" not in text and "suppressed (" not in text


def test_nothing_audited_is_not_called_compliant() -> None:
    """An empty directory (or a typo'd path with no YAML) must not read as "all compliant"."""
    text = render(Report(resources=0), "text")
    assert "No findings" not in text
    assert "Nothing audited: no Kubernetes objects found in the given paths." in text
    text = render(Report(resources=0, sources=["empty/x.yaml"]), "text")
    assert "Nothing audited: no Kubernetes objects found in empty/x.yaml." in text
    text = render(Report(resources=0, sources=[f"f{i}.yaml" for i in range(5)]), "text")
    assert "Nothing audited: no Kubernetes objects found in 5 files." in text


def test_long_messages_wrap_under_their_column() -> None:
    long = "word " * 60
    report = Report(findings=[finding("SK201", "s", Severity.ERROR, message=long.strip())])
    text = render_text(report, width=80)
    assert max(len(line) for line in text.splitlines()) <= 80
    wrapped = [line for line in text.splitlines() if line.strip().startswith("word")]
    assert len(wrapped) > 1
    assert all(line.startswith(" " * 13) for line in wrapped)


def test_score_formula() -> None:
    assert score({}) == 100
    assert score({Severity.ERROR: 2, Severity.WARNING: 1, Severity.INFO: 4}) == 100 - 20 - 3 - 4
    assert score({Severity.ERROR: 11}) == 0
    s = summarize(sample_report())
    assert s.environment_scores == {"development": 95, "production": 97}
    assert s.by_severity == {Severity.ERROR: 3, Severity.WARNING: 1, Severity.INFO: 1}


def test_same_fix_is_spelled_out_once_per_app() -> None:
    same = {"remediation": "Add a litestream sidecar."}
    report = Report(
        findings=[
            finding("SK201", "s", Severity.ERROR, environment="development", **same),
            finding("SK201", "s", Severity.ERROR, environment="production", **same),
            finding("SK201", "s", Severity.ERROR, app="other", **same),
        ]
    )
    text = render(report, "text")
    assert text.count("fix: Add a litestream sidecar.") == 2  # once in mealie, once in other
    assert text.count("fix: as above (SK201)") == 1


def test_claim_without_app_is_not_called_cluster_wide() -> None:
    """A stray PVC (piped in without labels) belongs to no app, but it is not a cluster object."""
    stray = finding("SK103", "pvc-name", Severity.WARNING, kind="PersistentVolumeClaim", app=None)
    klass = finding("SK102", "reclaim-policy", Severity.ERROR, kind="StorageClass", app=None)
    text = render(Report(findings=[stray, klass], resources=2), "text")
    headings = [line.split(" ─")[0] for line in text.splitlines() if " ──" in line]
    assert headings[:2] == ["(cluster)", "(no app)"]
    assert summarize(Report(findings=[stray, klass])).apps == ["(cluster)", "(no app)"]
