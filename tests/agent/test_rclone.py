"""agent/rclone.py against the real rclone binary and a real moto S3 server: restore with
`copy --update`, and the guarded `sync` (filters, refusals, dated history, pruning)."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from statekeeper.agent.config import AgentConfig, load_config
from statekeeper.agent.rclone import (
    HISTORY_FORMAT,
    copy_from_remote,
    list_files,
    prune_history,
    remote,
    sync_to_remote,
)
from statekeeper.errors import ConfigError, InfraError
from tests.agent.helpers import agent_config, replica_objects, unique_name
from tests.conftest import TEST_SECRET, S3Server, free_port

pytestmark = pytest.mark.timeout(120)


def config_for(s3: S3Server, directory: Path, **extra: object) -> AgentConfig:
    bucket = s3.make_bucket(unique_name())
    return agent_config(s3.endpoint, bucket, unique_name("app"), config_paths=[directory], **extra)


def write_tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def remote_text(s3: S3Server, config: AgentConfig, key: str) -> str:
    body = s3.client().get_object(Bucket=config.bucket, Key=key)["Body"].read()
    return bytes(body).decode()


def remote_files(s3: S3Server, config: AgentConfig, directory: Path) -> list[str]:
    prefix = config.files_key(directory) + "/"
    return sorted(
        key[len(prefix) :]
        for key in replica_objects(s3.client(), config.bucket, config.files_key(directory))
    )


NOW = datetime(2026, 11, 27, 8, 0, 0, tzinfo=UTC)


def test_copy_from_empty_prefix_returns_empty_and_touches_nothing(
    s3: S3Server, tmp_path: Path
) -> None:
    target = tmp_path / "conf"
    config = config_for(s3, target)
    stats = copy_from_remote(config, target)
    assert stats.empty_remote is True
    assert (stats.files, stats.bytes) == (0, 0)
    assert not target.exists()  # nothing created, nothing copied


def test_copy_from_missing_bucket_is_an_infra_error(s3: S3Server, tmp_path: Path) -> None:
    config = agent_config(s3.endpoint, "no-such-bucket-here", config_paths=[tmp_path / "conf"])
    with pytest.raises(InfraError) as err:
        copy_from_remote(config, tmp_path / "conf")
    assert "\n" not in str(err.value)
    assert TEST_SECRET not in str(err.value)


def test_copy_against_dead_endpoint_fails_with_one_line(tmp_path: Path) -> None:
    config = agent_config(
        f"http://127.0.0.1:{free_port()}", "bkt", config_paths=[tmp_path / "conf"]
    )
    with pytest.raises(InfraError) as err:
        copy_from_remote(config, tmp_path / "conf")
    message = str(err.value)
    assert message.startswith("rclone lsjson")
    assert "\n" not in message and TEST_SECRET not in message


def test_copy_update_keeps_newer_local_file_and_restores_the_rest(
    s3: S3Server, tmp_path: Path
) -> None:
    source = tmp_path / "pod1" / "conf"
    write_tree(source, {"app.yaml": "from-backup", "sub/extra.ini": "x=1"})
    config = config_for(s3, source)
    assert sync_to_remote(config, source, now=NOW).uploaded == 2

    target = tmp_path / "pod2" / "conf"  # same directory name → same remote prefix
    write_tree(target, {"app.yaml": "edited-locally-later"})
    future = time.time() + 3600
    os.utime(target / "app.yaml", (future, future))

    stats = copy_from_remote(config, target)
    assert stats.empty_remote is False
    assert stats.files == 1 and stats.bytes == len("x=1")
    assert (target / "app.yaml").read_text() == "edited-locally-later"
    assert (target / "sub" / "extra.ini").read_text() == "x=1"


def test_copy_never_brings_sqlite_files(s3: S3Server, tmp_path: Path) -> None:
    target = tmp_path / "conf"
    config = config_for(s3, target)
    key = config.files_key(target)
    client = s3.client()
    for name in ("app.yaml", "stale.db", "stale.db-wal", ".stale.db-litestream/ltx/0"):
        client.put_object(Bucket=config.bucket, Key=f"{key}/{name}", Body=b"data")
    stats = copy_from_remote(config, target)
    assert stats.files == 1
    assert sorted(p.name for p in target.rglob("*") if p.is_file()) == ["app.yaml"]


def test_sync_excludes_sqlite_files_litestream_state_and_bookkeeping(
    s3: S3Server, tmp_path: Path
) -> None:
    conf = tmp_path / "conf"
    write_tree(
        conf,
        {
            "app.yaml": "a: 1",
            "nested/rules.json": "{}",
            "app.db": "sqlite",
            "app.db-wal": "wal",
            "app.db-shm": "shm",
            "cache.sqlite3": "sqlite",
            "other.sqlite": "sqlite",
            "state.bin": "a database with an unusual name",
            "state.bin-wal": "its wal",
            ".app.db-litestream/ltx/0/0000.ltx": "ltx",
            ".statekeeper-restore.json": "{}",
            ".statekeeper-quarantine/app.db-x/app.db": "old",
        },
    )
    config = config_for(s3, conf, sqlite_paths=[conf / "state.bin"])
    stats = sync_to_remote(config, conf, now=NOW)
    assert stats.refused is None
    assert remote_files(s3, config, conf) == ["app.yaml", "nested/rules.json"]


def test_sync_refuses_when_local_tree_is_empty(s3: S3Server, tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    write_tree(conf, {"a.yaml": "1", "b.yaml": "2"})
    config = config_for(s3, conf)
    sync_to_remote(config, conf, now=NOW)
    for path in conf.iterdir():
        path.unlink()
    (conf / "app.db").write_text("only a database is left: filtered out, so still empty")

    stats = sync_to_remote(config, conf, now=NOW + timedelta(minutes=1))
    assert stats.refused is not None and "empty" in stats.refused
    assert remote_files(s3, config, conf) == ["a.yaml", "b.yaml"]


def test_sync_of_missing_directory_refuses_too(s3: S3Server, tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    write_tree(conf, {"a.yaml": "1"})
    config = config_for(s3, conf)
    sync_to_remote(config, conf, now=NOW)
    (conf / "a.yaml").unlink()
    conf.rmdir()
    stats = sync_to_remote(config, conf, now=NOW)
    assert stats.refused is not None
    assert remote_files(s3, config, conf) == ["a.yaml"]


def test_both_sides_empty_is_a_skip_not_a_refusal(s3: S3Server, tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    config = config_for(s3, conf)
    stats = sync_to_remote(config, conf, now=NOW)
    assert stats.skipped and stats.refused is None


def test_sync_refuses_deleting_more_than_max_delete_share(s3: S3Server, tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    write_tree(conf, {f"f{i}.yaml": str(i) for i in range(4)})
    config = config_for(s3, conf, max_delete=50.0)
    sync_to_remote(config, conf, now=NOW)
    for i in range(1, 4):
        (conf / f"f{i}.yaml").unlink()  # 3 of 4 remote files would go: 75 % > 50 %

    stats = sync_to_remote(config, conf, now=NOW)
    assert stats.refused is not None and "75%" in stats.refused
    assert len(remote_files(s3, config, conf)) == 4

    lenient = config.model_copy(update={"max_delete": 100.0})
    stats = sync_to_remote(lenient, conf, now=NOW + timedelta(seconds=1))
    assert stats.refused is None and stats.deleted == 3
    assert remote_files(s3, config, conf) == ["f0.yaml"]
    # what the sync deleted is kept in the dated history folder
    history = f"{config.history_key(conf)}/{(NOW + timedelta(seconds=1)).strftime(HISTORY_FORMAT)}"
    kept = replica_objects(s3.client(), config.bucket, history)
    assert sorted(k.rsplit("/", 1)[1] for k in kept) == ["f1.yaml", "f2.yaml", "f3.yaml"]


def test_sync_within_max_delete_deletes(s3: S3Server, tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    write_tree(conf, {f"f{i}.yaml": str(i) for i in range(4)})
    config = config_for(s3, conf, max_delete=50.0)
    sync_to_remote(config, conf, now=NOW)
    (conf / "f3.yaml").unlink()  # 25 %
    stats = sync_to_remote(config, conf, now=NOW + timedelta(seconds=1))
    assert stats.refused is None and stats.deleted == 1
    assert remote_files(s3, config, conf) == ["f0.yaml", "f1.yaml", "f2.yaml"]


def test_replaced_file_goes_to_dated_history_and_old_history_is_pruned(
    s3: S3Server, tmp_path: Path
) -> None:
    conf = tmp_path / "conf"
    write_tree(conf, {"app.yaml": "version-1"})
    config = config_for(s3, conf, history_days=7)
    sync_to_remote(config, conf, now=NOW)
    (conf / "app.yaml").write_text("version-2 (longer)")

    later = NOW + timedelta(hours=1)
    stats = sync_to_remote(config, conf, now=later)
    folder = f"{config.history_key(conf)}/{later.strftime(HISTORY_FORMAT)}"
    assert stats.history == folder
    assert remote_text(s3, config, f"{folder}/app.yaml") == "version-1"
    assert remote_text(s3, config, f"{config.files_key(conf)}/app.yaml") == "version-2 (longer)"

    # A foreign folder under files-history is never deleted, however old it looks.
    s3.client().put_object(
        Bucket=config.bucket, Key=f"{config.history_key(conf)}/keep-me/x", Body=b"1"
    )
    assert prune_history(config, conf, now=later + timedelta(days=6)) == []
    assert prune_history(config, conf, now=later + timedelta(days=8)) == [
        later.strftime(HISTORY_FORMAT)
    ]
    left = replica_objects(s3.client(), config.bucket, config.history_key(conf))
    assert left == [f"{config.history_key(conf)}/keep-me/x"]


def test_history_days_zero_keeps_history_forever(s3: S3Server, tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    write_tree(conf, {"app.yaml": "v1"})
    config = config_for(s3, conf, history_days=0)
    sync_to_remote(config, conf, now=NOW)
    (conf / "app.yaml").write_text("v2")
    sync_to_remote(config, conf, now=NOW + timedelta(seconds=1))
    assert prune_history(config, conf, now=NOW + timedelta(days=3650)) == []
    assert replica_objects(s3.client(), config.bucket, config.history_key(conf))


def test_sync_past_its_deadline_is_an_error(s3: S3Server, tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    write_tree(conf, {"app.yaml": "v1"})
    config = config_for(s3, conf)
    with pytest.raises(InfraError, match="deadline"):
        sync_to_remote(config, conf, now=NOW, deadline=time.monotonic() - 1)


def test_remote_listing_uses_env_credentials_only(s3: S3Server, tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    write_tree(conf, {"app.yaml": "v1"})
    config = config_for(s3, conf)
    sync_to_remote(config, conf, now=NOW)
    # the rclone config is in-memory: no rclone.conf appears in HOME or the working directory
    assert list_files(config, remote(config, config.files_key(conf)), []) == {"app.yaml": 2}
    assert not (Path.home() / ".config" / "rclone" / "rclone.conf").exists() or (
        TEST_SECRET not in (Path.home() / ".config" / "rclone" / "rclone.conf").read_text()
    )


def test_two_config_dirs_with_one_name_are_a_config_error(tmp_path: Path) -> None:
    """`/a/conf` and `/b/conf` would share `<prefix>/files/conf/`: each sync would delete the
    other's files from the backup. The config refuses them, naming the setting."""
    env = {
        "STATEKEEPER_BUCKET": "b",
        "STATEKEEPER_PREFIX": "app",
        "STATEKEEPER_CONFIG_PATHS": f"{tmp_path / 'a' / 'conf'},{tmp_path / 'b' / 'conf'}",
    }
    with pytest.raises(ConfigError, match=r"'conf'.*app/files/conf/.*STATEKEEPER_CONFIG_PATHS"):
        load_config(env=env)
    env["STATEKEEPER_CONFIG_PATHS"] = f"{tmp_path / 'a' / 'conf'},{tmp_path / 'b' / 'etc'}"
    assert [p.name for p in load_config(env=env).config_paths] == ["conf", "etc"]


def test_a_prefix_of_only_slashes_is_a_config_error() -> None:
    """`STATEKEEPER_PREFIX=/` would strip to "" and put replicas, files and the lease at the
    bucket's root, shared with any other app doing the same."""
    env = {"STATEKEEPER_BUCKET": "b", "STATEKEEPER_PREFIX": "//"}
    with pytest.raises(ConfigError, match=r"prefix \(STATEKEEPER_PREFIX or --prefix\)"):
        load_config(env=env)
    assert load_config(env={**env, "STATEKEEPER_PREFIX": "/app/"}).lease_key == "app/lease"


def test_case_28_symlinks_are_kept_as_symlinks_and_links_outside_are_reported(
    s3: S3Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 13 item 4: a symlinked file and a symlinked directory inside the config path come
    back as the same symlinks (with their targets' content); a link pointing outside is kept
    as a link and named in a warning (its target is not backed up)."""
    import logging

    conf = tmp_path / "config"
    write_tree(conf, {"real.yaml": "homeassistant: {}\n", "pkgs/lights.yaml": "light: []\n"})
    (conf / "configuration.yaml").symlink_to("real.yaml")
    (conf / "packages").symlink_to("pkgs", target_is_directory=True)
    outside = tmp_path / "elsewhere" / "secrets.yaml"
    write_tree(outside.parent, {"secrets.yaml": "token: x\n"})
    (conf / "secrets.yaml").symlink_to(outside)
    config = config_for(s3, conf)

    caplog.set_level(logging.WARNING, logger="statekeeper.agent")
    stats = sync_to_remote(config, conf, now=NOW)
    assert stats.refused is None and stats.uploaded == 5
    warnings = [r for r in caplog.records if "outside the config path" in r.getMessage()]
    assert [r.__dict__["link"] for r in warnings] == [str(conf / "secrets.yaml")]

    lost = tmp_path / "lost"
    conf.rename(lost)  # the volume is lost
    copy_from_remote(config, conf)
    assert (conf / "configuration.yaml").is_symlink()
    assert os.readlink(conf / "configuration.yaml") == "real.yaml"
    assert (conf / "configuration.yaml").read_text() == "homeassistant: {}\n"
    assert (conf / "packages").is_symlink() and os.readlink(conf / "packages") == "pkgs"
    assert (conf / "packages" / "lights.yaml").read_text() == "light: []\n"
    assert os.readlink(conf / "secrets.yaml") == str(outside)
    assert sorted(p.name for p in conf.iterdir()) == sorted(p.name for p in lost.iterdir())


def test_case_33_a_name_rclone_cannot_upload_is_reported_and_the_rest_syncs(
    s3: S3Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 13 item 8: a file name with a newline used to fail every later sync."""
    import logging

    conf = tmp_path / "config"
    write_tree(conf, {"good.yaml": "a: 1\n", "sub/also.yaml": "b: 2\n"})
    (conf / "bad\nname.yaml").write_text("c: 3\n")
    config = config_for(s3, conf)
    caplog.set_level(logging.WARNING, logger="statekeeper.agent")
    for _ in range(2):  # every sync succeeds, not only the first
        stats = sync_to_remote(config, conf, now=NOW)
        assert stats.refused is None and stats.unuploadable == 1
    assert remote_files(s3, config, conf) == ["good.yaml", "sub/also.yaml"]
    warned = [r for r in caplog.records if "control character" in r.getMessage()]
    assert len(warned) == 1 and "bad\\nname.yaml" in warned[0].__dict__["file"]
