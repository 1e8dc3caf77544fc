"""Writing manifests: one YAML style for every new file, no overwrite without consent, and
all-or-nothing writes (shared by `generate` and `fix`)."""

from __future__ import annotations

import io
import os
import stat
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, LiteralScalarString, ScalarString

from statekeeper.errors import InputError

# kubectl's own style: 2-space maps, list dashes indented under their key.
KUBECTL_STYLE = (2, 4, 2)


def round_trip_yaml(style: tuple[int, int, int] = KUBECTL_STYLE) -> YAML:
    """ruamel.yaml in round-trip mode with an indentation `style` (mapping, sequence, offset):
    what every file statekeeper writes or edits goes through."""
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True  # an edited file keeps its quoting
    yaml.indent(mapping=style[0], sequence=style[1], offset=style[2])
    yaml.width = 4096  # never fold long strings
    return yaml


def literal(text: str) -> LiteralScalarString:
    """A block scalar (`|-`) for embedded documents such as inline kustomize patches."""
    scalar: LiteralScalarString = LiteralScalarString(text)
    return scalar


def _needs_quotes(text: str) -> bool:
    """True when a plain scalar would not read back as this string (`true`, `9090`, `~`)."""
    import yaml as pyyaml

    if text == "" or text != text.strip():
        return True
    try:
        return not isinstance(pyyaml.safe_load(text), str)
    except pyyaml.YAMLError:
        return True


def to_block(value: Any) -> Any:
    """Plain data → ruamel containers, strings that need quotes double-quoted (kubectl's and most
    repositories' habit) instead of ruamel's single quotes."""
    if isinstance(value, Mapping) and not isinstance(value, CommentedMap):
        cmap = CommentedMap()
        for key, item in value.items():
            cmap[key] = to_block(item)
        return cmap
    if isinstance(value, list) and not isinstance(value, CommentedSeq):
        items = CommentedSeq()
        items.extend(to_block(v) for v in value)
        return items
    if isinstance(value, str) and not isinstance(value, ScalarString) and _needs_quotes(value):
        return DoubleQuotedScalarString(value)
    return value


def dump_documents(documents: Sequence[Mapping[str, Any]], header: str | None = None) -> str:
    """Dump documents as one multi-document YAML text, `---` between them."""
    yaml = round_trip_yaml()
    parts: list[str] = []
    for doc in documents:
        buf = io.StringIO()
        yaml.dump(to_block(doc), buf)
        parts.append(buf.getvalue())
    text = "---\n".join(parts)
    if header:
        text = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines()) + text
    return text


def write_new_files(files: Mapping[Path, str], *, force: bool = False) -> list[Path]:
    """Write every file, or none: existing files are refused unless `force`."""
    existing = sorted(str(p) for p in files if p.exists())
    if existing and not force:
        raise InputError(
            f"refusing to overwrite existing file(s): {', '.join(existing)} (use --force)"
        )
    for path in files:
        if path.exists() and path.is_dir():
            raise InputError(f"{path} is a directory, expected a file")
    return replace_all(files)


def replace_all(files: Mapping[Path, str], display: Callable[[Path], str] = str) -> list[Path]:
    """Write every file, or none: each text goes to a temporary file in its target's directory
    first, and only when all are staged are they renamed over their targets, so a reader never
    sees half a file. `display` names a path in the error."""
    staged: list[tuple[Path, Path]] = []
    for path, text in files.items():
        try:
            staged.append((_stage(path, text), path))
        except OSError as exc:
            for tmp, _path in staged:
                tmp.unlink(missing_ok=True)
            raise InputError(f"cannot write {display(path)}: {exc.strerror or exc}") from exc
    for tmp, path in staged:
        tmp.replace(path)
    return [path for _tmp, path in staged]


def _stage(path: Path, text: str) -> Path:
    """Write `text` to a temporary file next to `path`, with `path`'s permissions (0644 for a
    new file: mkstemp's 0600 would hide manifests from the other users of a checkout)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".statekeeper-tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o644
        tmp.chmod(mode)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    return tmp
