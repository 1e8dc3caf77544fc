"""Property: any valid app spec → `generate app` + `generate velero-schedule` → the audit reports
zero findings, and every overlay renders with real kustomize (the audit renders them)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from statekeeper.engine import run_audit
from statekeeper.generate import AppSpec, load_strategy, render_app, write_new_files
from statekeeper.generate.cluster import velero_schedule_yaml
from statekeeper.policy.load import load_policy

STRATEGY = load_strategy()
POLICY = load_policy()

names = st.from_regex(r"[a-z][a-z0-9]{1,8}(-[a-z0-9]{1,5})?", fullmatch=True)
environments = st.sampled_from(
    [("dev",), ("prod",), ("dev", "prod"), ("staging", "production"), ("test", "live")]
)
directories = st.sampled_from(["/data", "/config", "/app/data", "/var/lib/app", "/srv/state/db"])
db_files = st.builds(
    lambda stem, ext: stem + ext,
    st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True),
    st.sampled_from([".db", ".sqlite", ".sqlite3"]),
)
sqlite_paths = st.lists(
    st.builds(lambda d, f: f"{d}/{f}", directories, db_files), max_size=2, unique=True
)
config_paths = st.lists(st.sampled_from(["/config", "/settings"]), max_size=1)
purposes = st.sampled_from(["config", "data", "db", "state"])
images = st.sampled_from(
    [None, "nginx:1.27", "vaultwarden/server:1.32.0", "louislam/uptime-kuma:1.23.13",
     "lscr.io/linuxserver/sonarr:4.0.9"]
)  # fmt: skip


def _size_for(name: str, purpose: str, pick: int, image: str | None, sqlite: bool) -> str | None:
    """None (the default) or a size inside the policy's range for the purpose."""
    images = (image,) if image else ()
    sqlite = sqlite or bool(image and STRATEGY.known_sqlite_paths(image))
    category = STRATEGY.category_for(name, purpose, images, sqlite)
    if pick == 0 or category is None:
        return None
    return category.max if pick == 1 else category.min


@settings(
    max_examples=15,
    deadline=None,
    # No shrinking: each example renders kustomize twice, and the failing spec is printed anyway.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    name=names,
    envs=environments,
    dbs=sqlite_paths,
    configs=config_paths,
    purpose=purposes,
    size_pick=st.integers(0, 2),
    namespace=st.one_of(st.none(), names),
    image=images,
)
def test_generated_app_audits_clean(
    kubectl: str,
    name: str,
    envs: tuple[str, ...],
    dbs: list[str],
    configs: list[str],
    purpose: str,
    size_pick: int,
    namespace: str | None,
    image: str | None,
) -> None:
    spec = AppSpec(
        name=name,
        environments=envs,
        sqlite_paths=tuple(dbs),
        config_paths=tuple(configs),
        size=_size_for(name, purpose, size_pick, image, bool(dbs)),
        purpose=purpose,
        namespace=namespace,
        image=image,
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = render_app(spec, STRATEGY)
        files[Path("velero-schedule.yaml")] = velero_schedule_yaml(STRATEGY)
        write_new_files({root / rel: text for rel, text in files.items()})
        report = run_audit([str(root)], policy=POLICY)
        assert [(f.rule, f.name, f.message) for f in report.findings] == []
        rendered = {Path(s).name for s in report.sources if "overlays" in s}
        assert rendered == set(envs)
