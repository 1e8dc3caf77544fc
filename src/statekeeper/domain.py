"""What the strategy means by a claim's purpose, its sizing category, a media library.

The rules judge claims by these (SK103, SK104, SK105), `fix` grows a claim to its category's
minimum and `generate` sizes a new claim by them: one definition, imported downward by rules,
fix and generate, so the three never disagree on which category a claim belongs to.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from statekeeper.inventory.images import image_matches, image_repository
from statekeeper.inventory.model import Claim, is_under
from statekeeper.policy.model import KnownSqliteImage, Policy, SizingCategory

__all__ = [
    "claim_purpose",
    "is_media_library",
    "known_sqlite_image",
    "name_purpose",
    "purpose_words",
    "sizing_category_for",
    "sizing_evidence",
]


def claim_purpose(claim: Claim, policy: Policy) -> str:
    """The <purpose> part of a claim's name (the template name for a volumeClaimTemplate)."""
    if claim.template_of:
        return claim.name
    return name_purpose(claim.name, claim.app, policy)


def name_purpose(name: str, app: str | None, policy: Policy) -> str:
    """The <purpose> part of PVC name `name` of `app`: the policy's pattern's `purpose` group,
    else the name without `-pvc` and the app's words."""
    match = policy.pvc_naming.name_regex(app).match(name)
    if match and "purpose" in match.groupdict():
        return str(match.group("purpose"))
    tokens = name.removesuffix("-pvc").split("-")
    if app:
        app_tokens = app.split("-")
        for i in range(len(tokens) - len(app_tokens) + 1):
            if tokens[i : i + len(app_tokens)] == app_tokens:
                tokens = tokens[:i] + tokens[i + len(app_tokens) :]
                break
        else:
            tokens = [t for t in tokens if t != app.replace("-", "")]
    return "-".join(t for t in tokens if t)


def purpose_words(purpose: str) -> set[str]:
    """`"metadata-cache"` -> {"metadata-cache", "metadata", "cache"}."""
    return {purpose, *(w for w in re.split(r"[-_.]", purpose) if w)}


def sizing_evidence(claim: Claim, policy: Policy) -> tuple[SizingCategory | None, str]:
    """The sizing category of a claim and the evidence it was chosen by, for messages."""
    images = tuple(container.image for _w, container, _m in claim.mounted_by)
    mount_paths = tuple(mount.path for _w, _c, mount in claim.mounted_by)
    holds_sqlite = any(
        container.mount_for(db.path) is mount
        for workload, container, mount in claim.mounted_by
        for db in workload.sqlite_dbs
    )
    purpose = claim_purpose(claim, policy)
    category = sizing_category_for(policy, claim.app, purpose, images, holds_sqlite, mount_paths)
    if category is None:
        return None, ""
    evidence = [f"purpose {purpose!r}"] if purpose else []
    mounted = sorted(
        {f"{m} by {image_repository(i)}" for i, m in zip(images, mount_paths, strict=True)}
    )
    if mounted:
        evidence.append("mounted at " + ", ".join(mounted[:2]))
    if holds_sqlite and category.sqlite:
        evidence.append("holds a SQLite database")
    return category, "; ".join(evidence)


def sizing_category_for(
    policy: Policy,
    app: str | None,
    purpose: str,
    images: Iterable[str] = (),
    holds_sqlite: bool = False,
    mount_paths: Iterable[str] = (),
) -> SizingCategory | None:
    """The first category of the policy whose purposes name `purpose` (or whose `mount_paths`
    hold a mount of the claim), else the first that matches weakly: by an image mounting the
    claim, a SQLite database on it, or (a category with only `apps`) by the app. A category
    with `needs_image` counts only with one of its images mounting the claim (or, for
    `generate`, when no image is known). Categories limited to other apps are skipped. Also
    what `generate` and `fix` size new claims by."""
    words = purpose_words(purpose)
    images = tuple(images)
    paths = tuple(mount_paths)
    fallback: SizingCategory | None = None
    for category in policy.sizing:
        if category.apps and not _app_in(app, category.apps):
            continue
        if category.needs_image and images and not _image_of(category, images):
            continue
        by_path = any(is_under(p, m) for p in paths for m in category.mount_paths)
        if words & set(category.purposes) or by_path:
            return category
        if fallback is None and _matches_weakly(category, images, holds_sqlite):
            fallback = category
    return fallback


def _app_in(app: str | None, apps: list[str]) -> bool:
    return app is not None and (app in apps or app.replace("-", "") in apps)


def _image_of(category: SizingCategory, images: tuple[str, ...]) -> bool:
    return any(image_matches(image, category.images) for image in images)


def _matches_weakly(category: SizingCategory, images: tuple[str, ...], holds_sqlite: bool) -> bool:
    if category.needs_image:
        return False  # its images are a condition, not evidence on their own
    if not category.purposes and not category.images and not category.sqlite:
        return bool(category.apps)
    if category.images and any(image_matches(image, category.images) for image in images):
        return True
    return category.sqlite and holds_sqlite


def is_media_library(claim: Claim, policy: Policy) -> bool:
    """A claim whose purpose names a media library (`media_library.purposes`), unless a sizing
    category claims that purpose word too."""
    words = purpose_words(claim_purpose(claim, policy))
    if not words & set(policy.media_library.purposes):
        return False
    return not any(words & set(c.purposes) for c in policy.sizing)


def known_sqlite_image(policy: Policy, image: str) -> KnownSqliteImage | None:
    """The first of the policy's known SQLite apps (`tiers.sqlite.known_images`) `image` runs."""
    for known in policy.tiers.sqlite.known_images:
        if image_matches(image, known.images):
            return known
    return None
