"""statekeeper.domain: a claim's purpose and sizing category, the same for rules, fix, generate."""

from __future__ import annotations

import pytest

from statekeeper.domain import known_sqlite_image, name_purpose, sizing_category_for
from statekeeper.generate.strategy import load_strategy
from statekeeper.policy.load import load_policy

POLICY = load_policy()


@pytest.mark.parametrize(
    ("name", "app", "purpose"),
    [
        ("mealie-data-pvc", "mealie", "data"),
        ("home-assistant-config-pvc", "home-assistant", "config"),
        ("homeassistant-config-pvc", "home-assistant", "config"),  # the app without dashes
        ("data-mealie", "mealie", "data"),  # off the pattern: the app's words are dropped
        ("frigate-media-cache-pvc", "frigate", "media-cache"),
    ],
)
def test_name_purpose(name: str, app: str, purpose: str) -> None:
    assert name_purpose(name, app, POLICY) == purpose


@pytest.mark.parametrize(
    ("app", "purpose", "images", "sqlite", "category"),
    [
        ("notes", "config", (), False, "config"),
        ("notes", "db", (), False, "database"),
        ("notes", "state", (), True, "database"),  # a SQLite database on it
        ("postgresql", "data", (), False, "shared-database"),  # the shared PostgreSQL by app
        ("jellyfin", "cache", ("jellyfin/jellyfin:10.9",), False, "media-cache"),
        ("home-assistant", "cache", ("home-assistant/home-assistant",), False, None),
        ("notes", "state", (), False, None),
    ],
)
def test_sizing_category_for(
    app: str, purpose: str, images: tuple[str, ...], sqlite: bool, category: str | None
) -> None:
    found = sizing_category_for(POLICY, app, purpose, images, sqlite)
    assert (found.name if found is not None else None) == category
    # generate and fix size new claims by the same function
    via_strategy = load_strategy().category_for(app, purpose, images, sqlite)
    assert via_strategy is found


def test_known_sqlite_image() -> None:
    known = known_sqlite_image(POLICY, "ghcr.io/linuxserver/sonarr:4.0")
    assert known is not None and known.paths == ["/config/sonarr.db"]
    assert known_sqlite_image(POLICY, "nginx:1.27") is None
