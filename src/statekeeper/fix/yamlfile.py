"""Round-trip editing of YAML files where only the changed lines change.

ruamel.yaml keeps comments, key order and quoting, but re-emitting a whole file can still move
things (indentation it guesses differently, a comment it re-attaches, blank lines). Two measures
make sure an edit shows up as exactly the lines it changes:

* each document of a multi-document file is handled on its own: documents that were not edited
  are written back byte for byte;
* an edited document is dumped twice, before (`N`) and after (`E`) the edit, and only the lines
  that differ between N and E are spliced into the original text `O` (a three-way merge). When a
  changed region of N cannot be located in O, the edit is refused rather than reformatting the
  file.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from statekeeper.errors import InputError
from statekeeper.generate.yamlout import round_trip_yaml

_SEPARATOR = re.compile(r"^(---|\.\.\.)(\s.*)?$")
# (mapping, sequence, offset) styles tried when guessing a file's indentation.
_INDENT_STYLES = ((2, 2, 0), (2, 4, 2), (4, 4, 0), (4, 6, 4), (4, 4, 2), (3, 3, 0), (4, 2, 0))


class CannotEdit(InputError):
    """A file statekeeper will not edit (anchors, reformatting it cannot avoid, bad YAML)."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(slots=True)
class Document:
    """One document of a file: its original text and (for a mapping) the editable data."""

    text: str  # the document's lines, without its `---` separator
    separator: str  # the separator line before it ("" for the first document)
    data: Any = None
    baseline: str | None = None  # the no-op dump, computed on first edit
    anchored: bool = False


@dataclass(slots=True)
class YamlFile:
    """A YAML file loaded for editing. Change `documents[i].data`; `render()` gives the new text."""

    path: Path
    original: bytes
    digest: str
    documents: list[Document]
    style: tuple[int, int, int]
    new_documents: list[Any] = field(default_factory=list)
    newline: str = "\n"

    @classmethod
    def load(cls, path: Path) -> YamlFile:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}: not UTF-8 text") from exc
        # Windows line endings: edit with "\n" (what ruamel emits), write back with "\r\n".
        newline = "\r\n" if "\r\n" in text else "\n"
        text = text.replace("\r\n", "\n")
        documents = _split_documents(text)
        style = _guess_style(text)
        yaml = round_trip_yaml(style)
        for index, doc in enumerate(documents):
            try:
                doc.anchored = _has_anchors(yaml, doc.text)
                doc.data = yaml.load(doc.text) if doc.text.strip() else None
            except YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                where = f" line {mark.line + 1}" if mark is not None else ""
                raise InputError(f"{path}: document {index + 1}{where}: invalid YAML") from exc
        return cls(
            path=path,
            original=raw,
            digest=sha256(raw),
            documents=documents,
            style=style,
            newline=newline,
        )

    def editable(self, index: int) -> Any:
        """The data of document `index`, ready to change. Refuses documents with anchors or
        aliases: changing an anchored node would silently change every place that refers to it."""
        doc = self.documents[index]
        if doc.anchored:
            raise CannotEdit(
                f"{self.path}: document {index + 1} uses YAML anchors/aliases; "
                "statekeeper does not edit them (expand them by hand, then run fix again)"
            )
        if doc.baseline is None:
            doc.baseline = self._dump(doc.data)
        return doc.data

    def append_document(self, data: Any) -> None:
        """Add a new document at the end of the file."""
        self.new_documents.append(data)

    def _dump(self, data: Any) -> str:
        buf = io.StringIO()
        round_trip_yaml(self.style).dump(data, buf)
        return buf.getvalue()

    def render(self) -> str:
        """The file's new text: untouched documents verbatim, edited ones spliced."""
        parts: list[str] = []
        for index, doc in enumerate(self.documents):
            text = doc.text
            if doc.baseline is not None:
                edited = self._dump(doc.data)
                if edited != doc.baseline:
                    text = splice(
                        doc.text, doc.baseline, edited, f"{self.path}: document {index + 1}"
                    )
            parts.append(doc.separator + text)
        result = "".join(parts)
        for data in self.new_documents:
            if result and not result.endswith("\n"):
                result += "\n"
            result += ("---\n" if result.strip() else "") + self._dump(data)
        if self.newline != "\n":
            result = result.replace("\n", self.newline)
        return result

    @property
    def original_text(self) -> str:
        return self.original.decode("utf-8")

    @property
    def changed(self) -> bool:
        return self.render() != self.original_text


def _split_documents(text: str) -> list[Document]:
    docs: list[Document] = []
    separator = ""
    current: list[str] = []
    for line in text.splitlines(keepends=True):
        if _SEPARATOR.match(line.rstrip("\r\n")):
            if current or separator or docs:
                docs.append(Document(text="".join(current), separator=separator))
            separator, current = line, []
            if line.startswith("..."):
                # A document end marker: keep it with the preceding text, start fresh.
                docs[-1].text += line
                separator = ""
        else:
            current.append(line)
    docs.append(Document(text="".join(current), separator=separator))
    return docs


def _has_anchors(yaml: YAML, text: str) -> bool:
    return any(getattr(event, "anchor", None) is not None for event in yaml.parse(text))


def _guess_style(text: str) -> tuple[int, int, int]:
    """The indentation style that re-emits the file with the fewest changed lines."""
    yaml_probe = round_trip_yaml((2, 2, 0))
    sample, data = "", None
    try:
        # The first document with content (a file may open with a comment-only document).
        for doc in _split_documents(text):
            if doc.text.strip():
                sample, data = doc.text, yaml_probe.load(doc.text)
                if data is not None:
                    break
    except YAMLError:
        return (2, 2, 0)
    if data is None:
        return (2, 2, 0)
    best, best_score = (2, 2, 0), -1
    original = sample.splitlines()
    for style in _INDENT_STYLES:
        buf = io.StringIO()
        round_trip_yaml(style).dump(data, buf)
        dumped = buf.getvalue().splitlines()
        score = sum(
            size for *_, size in SequenceMatcher(None, original, dumped).get_matching_blocks()
        )
        if score > best_score:
            best, best_score = style, score
        if dumped == original:
            break
    return best


def splice(original: str, baseline: str, edited: str, where: str) -> str:
    """Apply the line changes baseline→edited to `original` (see the module docstring)."""
    o_lines = original.splitlines(keepends=True)
    n_lines = baseline.splitlines(keepends=True)
    e_lines = edited.splitlines(keepends=True)
    if o_lines and not o_lines[-1].endswith("\n"):
        o_lines[-1] += "\n"
    # Where each baseline line sits in the original, for lines ruamel reproduced exactly.
    position: dict[int, int] = {}
    for tag, i1, i2, j1, _j2 in SequenceMatcher(
        None, n_lines, o_lines, autojunk=False
    ).get_opcodes():
        if tag == "equal":
            for k in range(i2 - i1):
                position[i1 + k] = j1 + k
    edits: list[tuple[int, int, list[str]]] = []  # (start, end) in original, replacement
    for tag, i1, i2, j1, j2 in SequenceMatcher(
        None, n_lines, e_lines, autojunk=False
    ).get_opcodes():
        if tag == "equal":
            continue
        if i1 < i2:
            if any(k not in position for k in range(i1, i2)):
                raise CannotEdit(f"{where}: cannot edit without reformatting other lines")
            start, end = position[i1], position[i2 - 1] + 1
            if end - start != i2 - i1:
                raise CannotEdit(f"{where}: cannot edit without reformatting other lines")
        else:
            start = _insertion_point(position, i1, len(n_lines), len(o_lines), where)
            end = start
        edits.append((start, end, e_lines[j1:j2]))
    for start, end, replacement in sorted(edits, reverse=True):
        o_lines[start:end] = replacement
    return "".join(o_lines)


def _insertion_point(position: dict[int, int], i: int, n_len: int, o_len: int, where: str) -> int:
    """Where to insert before baseline line `i`: after the previous line's original position."""
    if i > 0 and (i - 1) in position:
        after_previous = position[i - 1] + 1
        if i < n_len and i in position and position[i] != after_previous:
            # Lines ruamel dropped sit between the neighbours (e.g. a comment): insert before
            # the next line, which keeps them with the line they belong to.
            return position[i]
        return after_previous
    if i < n_len and i in position:
        return position[i]
    if i == 0:
        return 0
    if i == n_len:
        return o_len
    raise CannotEdit(f"{where}: cannot edit without reformatting other lines")
