"""pre-commit hooks: `statekeeper-pre-commit audit|fix [OPTIONS] FILE...` (.pre-commit-hooks.yaml).

pre-commit passes the staged files; auditing them one by one would judge base manifests without
their environment. So each file is mapped to the kustomize roots that include it: every
`overlays/<env>/` directory whose kustomization reaches the file (through `resources`, `bases`,
`components` and patch paths, recursively) is audited — rendered, as `statekeeper audit` does
for a directory — and a YAML file no overlay includes is audited on its own. A changed
kustomization counts as a change of its directory.

Hook `args` must be options (`--fail-on=warning`, `--config=ci.yaml`: one word each); every other
word is a file from pre-commit. `fix` runs `statekeeper fix` on the repository (the working
directory) when a manifest changed; pre-commit then fails the hook because files changed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

_KUSTOMIZATION = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_YAML = (".yaml", ".yml")


def _kustomization(directory: Path) -> Path | None:
    for name in _KUSTOMIZATION:
        if (directory / name).is_file():
            return directory / name
    return None


def _references(kfile: Path) -> list[str]:
    """The paths a kustomization names: resources, bases, components, patch files."""
    import yaml

    try:
        data = yaml.load(kfile.read_bytes(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, yaml.YAMLError):
        return []
    if not isinstance(data, dict):
        return []
    found: list[str] = []
    for key in ("resources", "bases", "components", "patchesStrategicMerge", "crds"):
        value = data.get(key)
        if isinstance(value, list):
            found += [v for v in value if isinstance(v, str)]
    for key in ("patches", "patchesJson6902"):
        value = data.get(key)
        if isinstance(value, list):
            found += [v["path"] for v in value if isinstance(v, dict) and "path" in v]
    return [ref for ref in found if "://" not in ref and "\n" not in ref]


def included(root: Path) -> set[Path]:
    """Every directory and file a kustomize root reaches (absolute, normalised)."""
    seen: set[Path] = set()
    todo = [root.resolve()]
    while todo:
        directory = todo.pop()
        if directory in seen:
            continue
        seen.add(directory)
        kfile = _kustomization(directory)
        if kfile is None:
            continue
        for ref in _references(kfile):
            target = Path(os.path.normpath(directory / ref))
            if target.is_dir():
                todo.append(target)
            else:
                seen.add(target)
    return seen


def overlay_roots(repo: Path) -> list[Path]:
    """The `overlays/<name>/` kustomize roots below `repo` (hidden directories skipped)."""
    roots = []
    for directory, dirs, _files in os.walk(repo):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        here = Path(directory)
        if here.parent.name == "overlays" and _kustomization(here) is not None:
            roots.append(here)
    return sorted(roots)


def audit_targets(files: Iterable[str], repo: Path) -> list[str]:
    """What to audit for these changed files: the overlays including them, then the YAML files
    no overlay includes (paths relative to `repo`, sorted, each once)."""
    roots = {root: included(root) for root in overlay_roots(repo)}
    chosen: set[Path] = set()
    loose: list[str] = []
    for name in files:
        if not name.endswith(_YAML) and Path(name).name not in _KUSTOMIZATION:
            continue
        path = Path(os.path.normpath(repo / name)).resolve()
        hits = [
            root
            for root, reach in roots.items()
            if path in reach or path.parent in reach or path.is_relative_to(root.resolve())
        ]
        if hits:
            chosen.update(hits)
        elif Path(name).name not in _KUSTOMIZATION and name not in loose:
            loose.append(name)
    rels = sorted(os.path.relpath(root, repo) for root in chosen)
    return rels + sorted(loose)


def _split(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    options = [a for a in argv if a.startswith("-") and a != "-"]
    files = [a for a in argv if not (a.startswith("-") and a != "-")]
    return options, files


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in ("audit", "fix"):
        sys.stderr.write("usage: statekeeper-pre-commit audit|fix [--option=value ...] FILE...\n")
        return 2
    mode, (options, files) = args[0], _split(args[1:])
    targets = audit_targets(files, Path.cwd())
    if not targets:
        return 0
    command = [mode, *targets, *options] if mode == "audit" else ["fix", ".", *options]
    if mode == "audit":
        from statekeeper.fastpath import main as fast

        code = fast(command)
        if code is not None:
            return code
    sys.argv = ["statekeeper", *command]
    from statekeeper.cli import run

    try:
        run()
    except SystemExit as exit:
        return exit.code if isinstance(exit.code, int) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
