"""SK103 pvc-name: PVC names follow <app>-<purpose>-pvc.

The rule's docs page is docs/rules/SK103-pvc-name.md, its test cases
tests/rules/cases/SK103.yaml.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from statekeeper.domain import claim_purpose
from statekeeper.findings import Severity
from statekeeper.inventory.model import Claim, Inventory
from statekeeper.manifests.flux import is_unresolved
from statekeeper.policy.model import Policy
from statekeeper.rules.base import FixedBy, Rule, Violation, register
from statekeeper.rules.storage import claim_violation


@register
class PvcName(Rule):
    id = "SK103"
    slug = "pvc-name"
    severity = Severity.WARNING
    title = "PVC names follow <app>-<purpose>-pvc"
    rationale = (
        '"To ensure clarity and maintainability, PVCs must follow this naming pattern: '
        '`<app-name>-<purpose>-pvc`" (Strategy §2), e.g. `homeassistant-config-pvc`, '
        "`postgresql-data-pvc`, `frigate-clips-pvc`."
    )
    remediation = (
        "Rename the claim to `<app>-<purpose>-pvc` (the app as in its "
        "`app.kubernetes.io/name` label, with or without dashes). Renaming a bound claim means "
        "a new claim and a data copy; for a StatefulSet, name the volumeClaimTemplate after the "
        "purpose only (`data`) and the StatefulSet after the app."
    )
    bad_example = """\
kind: PersistentVolumeClaim
metadata:
  name: mealie-data        # no -pvc suffix
"""
    good_example = """\
kind: PersistentVolumeClaim
metadata:
  name: mealie-data-pvc
"""
    details = (
        "The app of a claim is its `app.kubernetes.io/name` (or `app`) label, else the label "
        "of the workload mounting it, else the name of a mounting workload when the claim is "
        "named `<workload>-...`, else its kustomize app directory (a plain file's directory "
        "counts only when a kustomization lives there). Without an app, any "
        "`<name>-<purpose>-pvc` passes: the rule never judges against a guessed app.\n\n"
        "**StatefulSet volumeClaimTemplates.** Kubernetes names those claims "
        "`<template>-<statefulset>-<ordinal>`, so `<app>-<purpose>-pvc` cannot hold literally. "
        "statekeeper judges the template instead: it complies when the template name is a bare "
        "`<purpose>` (e.g. `data`) and the StatefulSet's name is the app or starts with "
        "`<app>-` (claims then read `data-postgresql-0`: purpose and app, in Kubernetes' "
        "order). A template literally named `<app>-<purpose>-pvc` is accepted too."
    )
    # Renames run first, so that the StorageClass patches (SK101, SK106) target the new names.
    fix = FixedBy("statekeeper.fix.pvc_name:fix", step=1)

    def check(self, inventory: Inventory, policy: Policy) -> Iterable[Violation]:
        naming = policy.pvc_naming
        template_re = re.compile(naming.template_regex)
        for claim in inventory.claims:
            if not claim.name:
                continue
            if claim.template_of:
                ok_literal = naming.name_regex(claim.app).match(claim.name) is not None
                sts = claim.template_of
                app = claim.app
                sts_ok = (
                    app is None
                    or sts in (app, app.replace("-", ""))
                    or sts.startswith((app + "-", app.replace("-", "") + "-"))
                )
                purpose_ok = template_re.match(claim.name) is not None and not (
                    claim.name.endswith("-pvc")
                )
                if ok_literal or (sts_ok and purpose_ok):
                    continue
                problem = (
                    f"StatefulSet {sts!r} is not named after app {app!r}"
                    if not sts_ok
                    else f"template name {claim.name!r} is not a bare <purpose>"
                )
                yield claim_violation(
                    claim,
                    f"claims will be named {claim.name}-{sts}-<n>: {problem} "
                    f"(see the rule page for how templates are judged)",
                )
                continue
            if naming.name_regex(claim.app).match(claim.name):
                continue
            yield Violation(claim.resource, _pvc_name_message(claim, policy), ("metadata", "name"))


def _pvc_name_message(claim: Claim, policy: Policy) -> str:
    """Why a PVC name fails the pattern, with an example name built from the policy's pattern.

    Without an app the example keeps the `<app>` placeholder: a name made up from the claim's
    own name (`<app>-mealie-data-pvc`) would invent an app that may not exist."""
    naming = policy.pvc_naming
    if is_unresolved(claim.name) or (claim.app and is_unresolved(claim.app)):
        # `${APP}` left by Flux postBuild: a name built from it would be wrong either way.
        return (
            f"PVC name {claim.name!r} does not match {naming.pattern} (it holds a Flux "
            "variable that is not resolved in this repo; no name suggested)"
        )
    if claim.app:
        purpose = claim_purpose(claim, policy) or "data"
        example = naming.pattern.replace("<app>", claim.app).replace("<purpose>", purpose)
        return (
            f"PVC name {claim.name!r} does not match {naming.pattern} "
            f"(app {claim.app!r}, e.g. {example})"
        )
    # The last word of the name is the likeliest purpose (`mealie-data` -> `data`).
    purpose = claim.name.removesuffix("-pvc").rsplit("-", 1)[-1] or "data"
    example = naming.pattern.replace("<purpose>", purpose)
    where = " where <app> is the app's name" if "<app>" in example else ""
    return f"PVC name {claim.name!r} does not match {naming.pattern}; e.g. {example}{where}"
