"""Our loader types scalars the way kubectl does: compared with the real kubectl's decoding
(`kubectl annotate --local -o json` runs kubectl's own YAML→JSON path, no cluster needed)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from statekeeper.errors import InputError
from statekeeper.manifests.load import K8sLoader, parse_documents

# Scalars where YAML 1.1 (PyYAML), YAML 1.2 and kubectl (go-yaml v2 via sigs.k8s.io/yaml) differ.
CONFORMANCE = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: typing
x-defaults: &defaults
  retain: true
  size: 1Gi
spec:
  yes_word: yes
  on_word: on
  off_word: Off
  y_letter: y
  quoted_yes: "yes"
  octal: 0755
  octal_o: 0o755
  not_octal: 08
  hex: 0x1F
  binary: 0b101
  underscores: 1_000
  plus: +12
  exponent: 1e3
  float: 1.5
  tilde: ~
  date: 2024-01-01
  stamp: 2024-01-01T10:00:00Z
  sexagesimal: 1:30
  custom_tag: !foo bar
  custom_tag_list: !reference [p, q]
  dup: first
  dup: second
  merged:
    <<: *defaults
    size: 2Gi
"""


def _kubectl_json(kubectl: str, path: Path) -> dict[str, Any]:
    done = subprocess.run(
        [kubectl, "annotate", "--local", "-f", str(path), "probe=1", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    body: dict[str, Any] = json.loads(done.stdout)
    del body["metadata"]["annotations"]
    return body


def test_scalars_typed_like_kubectl(kubectl: str, tmp_path: Path) -> None:
    path = tmp_path / "typing.yaml"
    path.write_text(CONFORMANCE)
    ours = parse_documents(CONFORMANCE.encode(), "typing.yaml")[0].data
    # JSON has only string keys (kubectl writes the key `y` as "true"), as kubectl's output.
    assert json.loads(json.dumps(ours)) == _kubectl_json(kubectl, path)
    spec = ours["spec"]
    assert spec["yes_word"] is True and spec["quoted_yes"] == "yes"
    assert spec["octal"] == 0o755 and spec["octal_o"] == 0o755 and spec["not_octal"] == 8
    assert spec["date"] == "2024-01-01" and spec["stamp"] == "2024-01-01T10:00:00Z"
    assert spec["sexagesimal"] == "1:30" and spec["exponent"] == 1000.0
    assert spec["dup"] == "second"  # last wins, as `kubectl apply` (kustomize refuses it)
    assert spec["merged"] == {"retain": True, "size": "2Gi"}
    assert spec["custom_tag"] == "bar" and spec["custom_tag_list"] == ["p", "q"]


def test_alias_bomb_refused_like_kubectl(kubectl: str, tmp_path: Path) -> None:
    levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in "bcdefghi":
        previous = chr(ord(level) - 1)
        levels.append(f"{level}: &{level} [{','.join(['*' + previous] * 9)}]")
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lol}\n" + "\n".join(levels) + "\n"
    path = tmp_path / "lol.yaml"
    path.write_text(text)
    done = subprocess.run(
        [kubectl, "annotate", "--local", "-f", str(path), "p=1", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0 and "excessive aliasing" in done.stderr
    with pytest.raises(InputError, match="excessive aliasing"):
        parse_documents(text.encode(), "lol.yaml")


def test_modest_aliasing_is_fine() -> None:
    text = b"base: &b {a: 1, b: [1, 2, 3]}\np: *b\nq: *b\nr: {<<: *b, c: 2}\n"
    data = parse_documents(text, "ok.yaml")[0].data
    assert data["p"] == data["q"] == {"a": 1, "b": [1, 2, 3]}
    assert data["r"] == {"a": 1, "b": [1, 2, 3], "c": 2}


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=12),
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_values, min_size=1, max_size=3))
def test_lean_builder_matches_pyyaml_constructor(docs: list[Any]) -> None:
    """The fast path (node tree → objects) gives what PyYAML's constructor gives."""
    text = yaml.safe_dump_all(docs).encode()
    ours = [doc.data for doc in parse_documents(text, "h.yaml")]
    reference = list(yaml.load_all(text, Loader=K8sLoader))  # PyYAML's SafeConstructor
    assert ours == reference  # (not always == docs: kubectl reads an unquoted Y as true)
