"""The replication lease: one object at `<prefix>/lease`, so two pods never replicate one database.

Writes are conditional — `If-None-Match: *` to create, `If-Match: <etag>` to renew or take over —
so two contenders can never both believe they won (S3 since 2024, MinIO, moto). A store that
answers `501 NotImplemented` to conditional headers gets the fallback: plain write, then a read
back to check our token is the one stored (TTL + heartbeat, last writer wins a tie).

Freshness is judged on the *server's* clock only: a lease's age is the response `Date` header minus
its `Last-Modified`, so clock skew between pods cannot make a live lease look expired. Locally the
holder counts its lease as lost once `ttl - heartbeat` seconds pass without a successful renewal
(monotonic clock), i.e. before any contender can see it expire.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from statekeeper.agent.config import AgentConfig
from statekeeper.agent.log import get_logger
from statekeeper.agent.s3 import describe_error, s3_client
from statekeeper.errors import EXIT_OK, InfraError, RefusedError

log = get_logger("lease")

_CONFLICT_CODES = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}
_UNSUPPORTED_CODES = {"NotImplemented", "501"}


@dataclass(frozen=True)
class LeaseRecord:
    """The lease object as stored: who holds it, since when (server clock) and its version."""

    holder: str
    token: str
    ttl: float
    etag: str
    age: float  # seconds since the last write, on the server's clock

    @property
    def expired(self) -> bool:
        return self.age > self.ttl


def _error_code(exc: Any) -> str:
    response = getattr(exc, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = str(response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    return code or status


class Lease:
    """Acquire, renew and release the lease for `config.holder`. Not thread-safe: one owner."""

    def __init__(self, config: AgentConfig, client: Any = None) -> None:
        self.config = config
        self.key = config.lease_key
        self._client = client
        self.token = uuid.uuid4().hex
        self.etag: str | None = None
        self._renewed_mono = 0.0
        self._seq = 0
        self.conditional = True  # cleared when the store rejects conditional headers
        self.last_seen: LeaseRecord | None = None  # the lease as last read

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = s3_client(self.config)
        return self._client

    # --- reading --------------------------------------------------------------------------

    def read(self) -> LeaseRecord | None:
        """The stored lease, or None when there is none. InfraError when S3 cannot answer."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.client.get_object(Bucket=self.config.bucket, Key=self.key)
            body = response["Body"].read()
        except ClientError as exc:
            if _error_code(exc) in ("NoSuchKey", "404"):
                self.last_seen = None
                return None
            raise InfraError(describe_error(self.config, exc)) from None
        except BotoCoreError as exc:
            raise InfraError(describe_error(self.config, exc)) from None
        try:
            data = json.loads(body)
            holder, token, ttl = str(data["holder"]), str(data["token"]), float(data["ttl"])
        except (ValueError, KeyError, TypeError):
            # Not our format: treat as a foreign, fresh lease (never silently overwrite it).
            holder, token, ttl = "<unreadable lease object>", "", float("inf")
        self.last_seen = LeaseRecord(
            holder=holder, token=token, ttl=ttl, etag=response["ETag"], age=_server_age(response)
        )
        return self.last_seen

    # --- holding --------------------------------------------------------------------------

    @property
    def held(self) -> bool:
        """True while the lease is ours and was renewed within `ttl - heartbeat` seconds."""
        if self.etag is None:
            return False
        if time.monotonic() - self._renewed_mono > self._local_validity:
            log.warning("lease not renewed in time, counting it as lost", extra={"key": self.key})
            self.etag = None
            return False
        return True

    @property
    def _local_validity(self) -> float:
        return max(self.config.lease_ttl - self.config.lease_heartbeat, self.config.lease_ttl / 2)

    def try_acquire(self) -> bool:
        """Take the lease if it is free, expired or already ours. Returns whether we hold it.

        InfraError when S3 cannot answer (the caller retries later).
        """
        if self.held:
            return self.renew()
        current = self.read()
        if current is not None and not (
            current.expired or current.holder == self.config.holder or current.token == self.token
        ):
            log.debug(
                "lease held by another replica, waiting",
                extra={"holder": current.holder, "age_s": round(current.age, 1)},
            )
            return False
        won = self._write(if_match=current.etag if current else None, create=current is None)
        if won:
            taken_from = current.holder if current else None
            log.info(
                "lease acquired",
                extra={"holder": self.config.holder, "previous": taken_from or "-"},
            )
        return won

    def renew(self) -> bool:
        """Heartbeat. False when the lease was lost (someone else wrote it); InfraError when S3
        cannot answer (the lease stays ours until its local validity runs out)."""
        if self.etag is None:
            return False
        if self._write(if_match=self.etag, create=False):
            return True
        log.warning("lease lost: another replica took it over", extra={"key": self.key})
        self.etag = None
        return False

    def release(self) -> bool:
        """Delete the lease if it is still ours. Returns whether it was deleted."""
        if self.etag is None:
            return False
        etag, self.etag = self.etag, None
        return delete_lease(self.config, self.client, etag)

    def _write(self, *, if_match: str | None, create: bool) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        self._seq += 1
        body = json.dumps(
            {
                "holder": self.config.holder,
                "token": self.token,
                "ttl": self.config.lease_ttl,
                "seq": self._seq,
                "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
        ).encode()
        kwargs: dict[str, Any] = {
            "Bucket": self.config.bucket,
            "Key": self.key,
            "Body": body,
            "ContentType": "application/json",
        }
        if self.conditional:
            if create:
                kwargs["IfNoneMatch"] = "*"
            elif if_match is not None:
                kwargs["IfMatch"] = if_match
        started = time.monotonic()
        try:
            response = self.client.put_object(**kwargs)
        except ClientError as exc:
            code = _error_code(exc)
            if code in _CONFLICT_CODES:
                return False
            if code in ("NoSuchKey", "404") and "IfMatch" in kwargs:
                return False  # the lease we renew was deleted (released by force)
            if code in _UNSUPPORTED_CODES and self.conditional:
                log.warning("the store rejects conditional writes: lease falls back to TTL")
                self.conditional = False
                return self._write(if_match=if_match, create=create)
            raise InfraError(describe_error(self.config, exc)) from None
        except BotoCoreError as exc:
            raise InfraError(describe_error(self.config, exc)) from None
        if not self.conditional:
            stored = self.read()
            if stored is None or stored.token != self.token:
                self.etag = None
                return False
        self.etag = str(response["ETag"])
        self._renewed_mono = started  # validity counts from before the request was sent
        return True


def _server_age(response: dict[str, Any]) -> float:
    """Seconds between the object's Last-Modified and the response's Date, both server clock."""
    modified = response.get("LastModified")
    date_header = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    if not isinstance(modified, datetime):
        return 0.0
    try:
        now = parsedate_to_datetime(date_header) if date_header else datetime.now(UTC)
    except (TypeError, ValueError):
        now = datetime.now(UTC)
    return max(0.0, (now - modified).total_seconds())


def delete_lease(config: AgentConfig, client: Any, etag: str | None) -> bool:
    """Delete the lease object, only if it still has `etag` (when given); whether deleted."""
    from botocore.exceptions import BotoCoreError, ClientError

    kwargs: dict[str, Any] = {"Bucket": config.bucket, "Key": config.lease_key}
    if etag is not None:
        kwargs["IfMatch"] = etag
    try:
        client.delete_object(**kwargs)
    except ClientError as exc:
        code = _error_code(exc)
        if code in _CONFLICT_CODES or code in ("NoSuchKey", "404"):
            return False
        if code in _UNSUPPORTED_CODES and etag is not None:
            return delete_lease(config, client, None)
        raise InfraError(describe_error(config, exc)) from None
    except BotoCoreError as exc:
        raise InfraError(describe_error(config, exc)) from None
    return True


def release_main(config: AgentConfig, force: bool) -> int:
    """`statekeeper agent lease release [--force]`: free a stuck lease.

    Frees a lease that is ours, expired, or (with `force`) anyone's. Refuses (RefusedError, exit 3)
    to free another holder's fresh lease without `--force`: that replica may still be replicating.
    """
    lease = Lease(config)
    current = lease.read()
    if current is None:
        log.info("no lease to release", extra={"key": config.lease_key})
        return EXIT_OK
    ours = current.holder == config.holder
    if not (ours or current.expired or force):
        raise RefusedError(
            f"lease {config.bucket}/{config.lease_key} is held by {current.holder!r}, renewed "
            f"{current.age:.0f}s ago (ttl {current.ttl:g}s): that replica may still be "
            "replicating; stop it first or pass --force"
        )
    if not delete_lease(config, lease.client, current.etag):
        raise RefusedError(
            f"lease {config.bucket}/{config.lease_key} changed while releasing it "
            "(its holder renewed it); run the command again to re-check"
        )
    log.info(
        "lease released",
        extra={
            "holder": current.holder,
            "age_s": round(current.age, 1),
            "forced": force and not (ours or current.expired),
        },
    )
    return EXIT_OK
