"""`statekeeper agent verify` (the restore drill), fault-matrix case 17, against the real
litestream binary, a real moto S3 server and real SQLite files."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.agent.helpers import (
    add_rows,
    agent_config,
    agent_env,
    make_db,
    replica_objects,
    row_values,
    run_agent,
    seed_replica,
    unique_name,
)
from tests.conftest import TEST_SECRET, S3Server, free_port

pytestmark = pytest.mark.timeout(120)


def verify(
    env: dict[str, str], *args: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    result = run_agent(["verify", *args], env)
    report: dict[str, Any] = json.loads(result.stdout) if result.stdout.strip() else {}
    return result, report


@pytest.fixture
def seeded(
    s3: S3Server, tmp_path: Path, child_env: dict[str, str], litestream_bin: str
) -> tuple[str, Path, Path, dict[str, str]]:
    """A bucket with a replica of `app.db` (40 rows, then 2 more) and two config files."""
    bucket = s3.make_bucket(unique_name())
    db = make_db(tmp_path / "data" / "app.db", rows=40)
    config = agent_config(s3.endpoint, bucket, sqlite_paths=[db])
    work = tmp_path / "work"
    work.mkdir()
    seed_replica(
        config,
        work,
        child_env,
        litestream_bin=litestream_bin,
        after_start=lambda _p: add_rows(db, 2),
    )
    client = s3.client()
    client.put_object(Bucket=bucket, Key="app/files/config/a.yaml", Body=b"x" * 10)
    client.put_object(Bucket=bucket, Key="app/files/config/b/c.txt", Body=b"y" * 5)
    # A stray SQLite file under the config prefix: a config restore never brings it.
    client.put_object(Bucket=bucket, Key="app/files/config/stray.db", Body=b"z" * 100)
    config_dir = tmp_path / "config"
    env = agent_env(child_env, s3.endpoint, bucket, sqlite_paths=[db], config_paths=[config_dir])
    return bucket, db, config_dir, env


def test_case_17_verify_good_replica(
    seeded: tuple[str, Path, Path, dict[str, str]], tmp_path: Path
) -> None:
    _bucket, db, config_dir, env = seeded
    live_before = db.read_bytes()
    out = tmp_path / "report.json"
    result, report = verify(env, "--max-age", "1h", "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text()) == report
    assert report["ok"] is True
    (entry,) = report["databases"]
    assert entry["ok"] is True and entry["problems"] == []
    assert entry["tables"] == {"items": len(row_values(db))} == {"items": 42}
    assert entry["integrity"] == "ok"
    assert entry["size_bytes"] > 0
    point = datetime.fromisoformat(entry["recovery_point"])
    assert 0 <= (datetime.now(UTC) - point).total_seconds() < 600
    assert int(entry["txid"], 16) >= 2  # snapshot + the later transaction
    (files,) = report["config_paths"]
    assert files["path"] == str(config_dir)
    assert (files["files"], files["bytes"]) == (2, 15)
    assert db.read_bytes() == live_before  # the drill never touches the live DB
    assert TEST_SECRET not in result.stdout + result.stderr


def test_case_17_verify_recovery_point_older_than_max_age_fails(
    seeded: tuple[str, Path, Path, dict[str, str]],
) -> None:
    _bucket, _db, _config_dir, env = seeded
    result, report = verify(env, "--max-age", "1ms")
    assert result.returncode == 5, result.stderr
    assert report["ok"] is False
    assert "older than --max-age" in report["databases"][0]["problems"][0]
    assert "statekeeper: error: restore drill failed" in result.stderr


def test_case_17_verify_damaged_replica_fails(
    seeded: tuple[str, Path, Path, dict[str, str]], s3: S3Server
) -> None:
    bucket, db, _config_dir, env = seeded
    client = s3.client()
    keys = replica_objects(client, bucket, f"app/sqlite/{db.name}")
    assert keys
    for key in keys:  # every LTX file of the replica is overwritten with garbage
        client.put_object(Bucket=bucket, Key=key, Body=b"not an ltx file" * 50)
    result, report = verify(env)
    assert result.returncode == 5, result.stderr
    (entry,) = report["databases"]
    assert entry["ok"] is False and entry["problems"]
    assert "tables" not in entry
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("statekeeper: error:")]
    assert len(lines) == 1 and db.name in lines[0]


def test_verify_without_replica_fails(
    s3: S3Server, tmp_path: Path, child_env: dict[str, str]
) -> None:
    bucket = s3.make_bucket(unique_name())
    env = agent_env(child_env, s3.endpoint, bucket, sqlite_paths=[tmp_path / "app.db"])
    result, report = verify(env)
    assert result.returncode == 5, result.stderr
    assert report["databases"][0]["problems"] == ["no replica in the bucket"]


def test_verify_s3_unreachable_is_infrastructure_error(
    tmp_path: Path, child_env: dict[str, str]
) -> None:
    env = agent_env(
        child_env,
        f"http://127.0.0.1:{free_port()}",
        "nobucket",
        sqlite_paths=[tmp_path / "app.db"],
        s3_timeout="2s",
    )
    result, _ = verify(env)
    assert result.returncode == 4, result.stderr
    assert "S3 unreachable" in result.stderr


def test_verify_bad_max_age_is_usage_error(
    seeded: tuple[str, Path, Path, dict[str, str]],
) -> None:
    *_, env = seeded
    result = run_agent(["verify", "--max-age", "soon"], env)
    assert result.returncode == 2
    assert "--max-age" in result.stderr and "Traceback" not in result.stderr
