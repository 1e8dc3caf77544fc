"""What SK002 and SK003 share: what could not be judged is a finding, so an audit never passes
by not looking.

The loader keeps going past a kustomization root that does not build or a file that cannot be
read (`Inventory.input_problems`); these rules report them, in every format, suppressible by the
policy's `rules:` settings like any rule."""

from __future__ import annotations

from statekeeper.manifests.resource import InputProblem, Origin
from statekeeper.rules.base import Subject


def input_subject(problem: InputProblem, kind: str, name: str) -> Subject:
    """What a finding about an input is about: the kustomization or the file itself, of no
    app, in the environment the input was read for (if known)."""
    origin = Origin(problem.file, 0, problem.line or 1)
    return Subject(kind, name, origin, environment=problem.environment or None)
