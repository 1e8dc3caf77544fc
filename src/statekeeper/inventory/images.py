"""Container images: the repository of a reference, and the policy's image patterns."""

from __future__ import annotations

from functools import lru_cache


def image_repository(image: str) -> str:
    """`lscr.io/linuxserver/sonarr:4.0@sha256:…` -> `linuxserver/sonarr` (no registry, tag)."""
    ref = image.split("@", 1)[0]
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        ref = ref[:colon]
    parts = ref.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    if len(parts) > 1 and parts[0] == "library":
        parts = parts[1:]
    return "/".join(parts).lower()


def image_matches(image: str, patterns: list[str]) -> bool:
    """`owner/repo` patterns match the end of the repository, bare words its last segment.

    A pattern starting with a registry host (containing a dot) matches the full reference.
    """
    return _image_matches(image, tuple(patterns))


@lru_cache(maxsize=16384)
def _image_matches(image: str, patterns: tuple[str, ...]) -> bool:
    repo = image_repository(image)
    last = repo.rsplit("/", 1)[-1]
    full = image.split("@", 1)[0].lower()
    for pattern in patterns:
        pat = pattern.lower()
        if "/" not in pat:
            if last == pat:
                return True
        elif "." in pat.split("/", 1)[0]:
            if full == pat or full.startswith(pat + ":"):
                return True
        elif repo == pat or repo.endswith("/" + pat):
            return True
    return False
