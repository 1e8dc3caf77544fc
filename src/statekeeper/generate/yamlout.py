"""Writing generated manifests: one YAML style for every file, and no overwrite without consent."""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import LiteralScalarString

from statekeeper.errors import InputError


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    # kubectl's own style: 2-space maps, list dashes indented under their key.
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096  # never fold long strings
    return yaml


def literal(text: str) -> LiteralScalarString:
    """A block scalar (`|-`) for embedded documents such as inline kustomize patches."""
    return LiteralScalarString(text)


def dump_documents(documents: Sequence[Mapping[str, Any]], header: str | None = None) -> str:
    """Dump documents as one multi-document YAML text, `---` between them."""
    yaml = _yaml()
    parts: list[str] = []
    for doc in documents:
        buf = io.StringIO()
        yaml.dump(doc, buf)
        parts.append(buf.getvalue())
    text = "---\n".join(parts)
    if header:
        text = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines()) + text
    return text


def write_new_files(files: Mapping[Path, str], *, force: bool = False) -> list[Path]:
    """Write every file, or none: existing files are refused unless `force`.

    Each file goes to a temporary file in its own directory first and is then renamed, so a
    reader never sees half a file.
    """
    existing = sorted(str(p) for p in files if p.exists())
    if existing and not force:
        raise InputError(
            f"refusing to overwrite existing file(s): {', '.join(existing)} (use --force)"
        )
    for path in files:
        if path.exists() and path.is_dir():
            raise InputError(f"{path} is a directory, expected a file")
    written: list[Path] = []
    for path, text in files.items():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            Path(tmp).replace(path)
        except OSError as exc:
            raise InputError(f"cannot write {path}: {exc.strerror or exc}") from exc
        written.append(path)
    return written
