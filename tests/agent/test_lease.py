"""The replication lease (agent/lease.py) against a real moto S3 server: conditional create and
take-over, contention, expiry on the server's clock, release, and the `lease release` CLI."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import pytest

from statekeeper.agent.config import AgentConfig
from statekeeper.agent.lease import Lease, release_main
from statekeeper.errors import RefusedError
from tests.agent.helpers import agent_config, agent_env, run_agent, unique_name, wait_for
from tests.conftest import TEST_SECRET, S3Server

pytestmark = pytest.mark.timeout(120)


def lease_config(s3: S3Server, bucket: str, holder: str, **extra: object) -> AgentConfig:
    settings: dict[str, object] = {"lease_ttl": 30.0, "lease_heartbeat": 1.0}
    settings.update(extra)
    return agent_config(s3.endpoint, bucket, "app", holder=holder, **settings)


def stored(s3: S3Server, config: AgentConfig) -> dict[str, object]:
    body = s3.client().get_object(Bucket=config.bucket, Key=config.lease_key)["Body"].read()
    data: dict[str, object] = json.loads(body)
    return data


def test_acquire_free_lease_and_renew(s3: S3Server) -> None:
    bucket = s3.make_bucket(unique_name())
    lease = Lease(lease_config(s3, bucket, "pod-a"))
    assert lease.read() is None
    assert lease.try_acquire() is True
    assert lease.held
    first = stored(s3, lease.config)
    assert first["holder"] == "pod-a" and first["token"] == lease.token
    etag = lease.etag
    assert lease.renew() is True
    assert lease.etag != etag  # every heartbeat writes a new version
    assert stored(s3, lease.config)["seq"] == 2


def test_contention_only_one_holder(s3: S3Server) -> None:
    bucket = s3.make_bucket(unique_name())
    a = Lease(lease_config(s3, bucket, "pod-a"))
    b = Lease(lease_config(s3, bucket, "pod-b"))
    assert a.try_acquire() is True
    assert b.try_acquire() is False
    assert not b.held
    assert b.last_seen is not None and b.last_seen.holder == "pod-a"
    assert stored(s3, a.config)["holder"] == "pod-a"
    assert a.renew() is True


def test_stale_etag_cannot_overwrite(s3: S3Server) -> None:
    """The conditional write is what protects: a renewal with an outdated ETag is rejected."""
    bucket = s3.make_bucket(unique_name())
    a = Lease(lease_config(s3, bucket, "pod-a"))
    assert a.try_acquire()
    stale = a.etag
    assert a.renew()
    a.etag = stale
    assert a.renew() is False  # precondition failed → counted as lost
    assert not a.held


def test_expired_lease_is_taken_over_and_old_holder_learns_it(s3: S3Server) -> None:
    bucket = s3.make_bucket(unique_name())
    a = Lease(lease_config(s3, bucket, "pod-a", lease_ttl=1.0, lease_heartbeat=0.5))
    b = Lease(lease_config(s3, bucket, "pod-b", lease_ttl=1.0, lease_heartbeat=0.5))
    assert a.try_acquire()
    assert b.try_acquire() is False
    # a stops renewing (its node died); the server-side age passes the ttl
    wait_for(lambda: (rec := b.read()) is not None and rec.expired, timeout=10, interval=0.3)
    assert b.try_acquire() is True
    assert stored(s3, b.config)["holder"] == "pod-b"
    a._renewed_mono = time.monotonic()  # even if a still believed it held the lease...
    assert a.renew() is False  # ...its conditional renewal fails: it learns it lost
    assert not a.held


def test_without_conditional_writes_a_renewal_never_overwrites_a_new_holder(
    s3: S3Server,
) -> None:
    """The TTL fallback (a store answering 501 to If-Match/If-None-Match) writes plainly: a
    holder that lost the lease must not overwrite the new holder's lease when it renews."""
    bucket = s3.make_bucket(unique_name())
    a = Lease(lease_config(s3, bucket, "pod-a", lease_ttl=1.0, lease_heartbeat=0.5))
    b = Lease(lease_config(s3, bucket, "pod-b", lease_ttl=1.0, lease_heartbeat=0.5))
    a.conditional = b.conditional = False  # as after the store rejected conditional headers
    assert a.try_acquire()
    assert b.try_acquire() is False
    wait_for(lambda: (rec := b.read()) is not None and rec.expired, timeout=10, interval=0.3)
    assert b.try_acquire() is True
    a._renewed_mono = time.monotonic()  # a still believes it holds the lease
    assert a.renew() is False
    assert not a.held
    assert stored(s3, b.config)["holder"] == "pod-b"
    assert b.renew() is True


def test_same_holder_takes_its_lease_back_after_restart(s3: S3Server) -> None:
    bucket = s3.make_bucket(unique_name())
    before = Lease(lease_config(s3, bucket, "pod-a"))
    assert before.try_acquire()
    after_restart = Lease(lease_config(s3, bucket, "pod-a"))  # new process, same pod name
    assert after_restart.try_acquire() is True
    assert stored(s3, after_restart.config)["token"] == after_restart.token
    assert before.renew() is False


def test_lease_counts_as_lost_locally_when_renewals_stop(s3: S3Server) -> None:
    bucket = s3.make_bucket(unique_name())
    lease = Lease(lease_config(s3, bucket, "pod-a", lease_ttl=2.0, lease_heartbeat=1.0))
    assert lease.try_acquire()
    lease._renewed_mono -= 1.5  # last successful renewal 1.5 s ago > ttl - heartbeat
    assert lease.held is False


def test_release_own_lease(s3: S3Server) -> None:
    bucket = s3.make_bucket(unique_name())
    a = Lease(lease_config(s3, bucket, "pod-a"))
    assert a.try_acquire()
    assert a.release() is True
    assert a.read() is None
    b = Lease(lease_config(s3, bucket, "pod-b"))
    assert b.try_acquire() is True


def test_release_does_not_delete_a_lease_taken_over_meanwhile(s3: S3Server) -> None:
    bucket = s3.make_bucket(unique_name())
    a = Lease(lease_config(s3, bucket, "pod-a"))
    assert a.try_acquire()
    b = Lease(lease_config(s3, bucket, "pod-a"))  # same holder restarted and took it
    assert b.try_acquire()
    assert a.release() is False  # a's ETag is outdated: b's lease stays
    assert stored(s3, b.config)["token"] == b.token


def test_release_main_refuses_fresh_foreign_lease_without_force(s3: S3Server) -> None:
    bucket = s3.make_bucket(unique_name())
    a = Lease(lease_config(s3, bucket, "pod-a"))
    assert a.try_acquire()
    operator = lease_config(s3, bucket, "ops-laptop")
    with pytest.raises(RefusedError, match="held by 'pod-a'"):
        release_main(operator, force=False)
    assert stored(s3, operator)["holder"] == "pod-a"
    assert release_main(operator, force=True) == 0
    assert Lease(operator).read() is None
    assert release_main(operator, force=False) == 0  # nothing left to release


def test_release_main_frees_an_expired_lease_without_force(s3: S3Server) -> None:
    bucket = s3.make_bucket(unique_name())
    a = Lease(lease_config(s3, bucket, "pod-a", lease_ttl=1.0, lease_heartbeat=0.5))
    assert a.try_acquire()
    operator = lease_config(s3, bucket, "ops-laptop")
    wait_for(lambda: (rec := Lease(operator).read()) is not None and rec.expired, timeout=10)
    assert release_main(operator, force=False) == 0
    assert Lease(operator).read() is None


def test_unreadable_lease_object_is_never_overwritten(s3: S3Server) -> None:
    bucket = s3.make_bucket(unique_name())
    config = lease_config(s3, bucket, "pod-a")
    s3.client().put_object(Bucket=bucket, Key=config.lease_key, Body=b"not json")
    assert Lease(config).try_acquire() is False
    assert s3.client().get_object(Bucket=bucket, Key=config.lease_key)["Body"].read() == (
        b"not json"
    )


def test_cli_lease_release(s3: S3Server, child_env: dict[str, str], tmp_path: Path) -> None:
    bucket = s3.make_bucket(unique_name())
    holder = Lease(lease_config(s3, bucket, "pod-a"))
    assert holder.try_acquire()
    env = agent_env(child_env, s3.endpoint, bucket, "app", holder="ops")

    refused = run_agent(["lease", "release"], env)
    assert refused.returncode == 3
    lines = [line for line in refused.stderr.splitlines() if line.startswith("statekeeper:")]
    assert len(lines) == 1 and "--force" in lines[0] and "pod-a" in lines[0]
    assert TEST_SECRET not in refused.stdout + refused.stderr
    assert holder.renew() is True  # still there, still ours

    forced = run_agent(["lease", "release", "--force"], env)
    assert forced.returncode == 0, forced.stderr
    assert TEST_SECRET not in forced.stdout + forced.stderr
    assert holder.read() is None
    assert holder.renew() is False


def test_cli_lease_release_s3_down_is_infra_error(
    child_env: dict[str, str], tmp_path: Path
) -> None:
    from tests.conftest import free_port

    env = agent_env(child_env, f"http://127.0.0.1:{free_port()}", "bkt", "app", s3_timeout="2s")
    result = run_agent(["lease", "release"], env, timeout=60)
    assert result.returncode == 4
    assert "S3 unreachable" in result.stderr
    assert "Traceback" not in result.stderr


def test_refused_credentials_are_a_clear_infra_error_without_the_secret() -> None:
    from statekeeper.agent.lease import Lease
    from statekeeper.errors import InfraError
    from tests.agent.helpers import strict_s3_server

    with strict_s3_server() as endpoint:
        config = agent_config(endpoint, "any-bucket", "app", holder="pod-a")
        with pytest.raises(InfraError) as err:
            Lease(config).try_acquire()
    message = str(err.value)
    assert "credentials refused" in message and "any-bucket" in message
    assert TEST_SECRET not in message and "\n" not in message


def test_cli_lease_release_against_a_non_s3_server_is_infra_error(
    child_env: dict[str, str],
) -> None:
    """An endpoint that answers something other than HTTP (a wrong port): one line, exit 4."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(30)

    def answer_garbage() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = server.accept()
                with conn:
                    conn.recv(65536)
                    conn.sendall(b"this is not http\r\n\r\n")

    threading.Thread(target=answer_garbage, daemon=True).start()
    try:
        endpoint = f"http://127.0.0.1:{server.getsockname()[1]}"
        env = agent_env(child_env, endpoint, "bkt", "app", s3_timeout="2s")
        result = run_agent(["lease", "release"], env, timeout=60)
    finally:
        server.close()
    assert result.returncode == 4, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("statekeeper:")]
    assert len(lines) == 1 and "S3 unreachable" in lines[0]
    assert TEST_SECRET not in result.stdout + result.stderr
