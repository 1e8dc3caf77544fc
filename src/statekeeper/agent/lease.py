"""The replication lease: one object at `<prefix>/lease`, so two pods never replicate one database.

Writes are conditional — `If-None-Match: *` to create, `If-Match: <etag>` to renew or take over —
so two contenders can never both believe they won (S3 since 2024, MinIO, moto). A store that
answers `501 NotImplemented` to conditional headers gets the fallback: plain write, then a read
back to check our token is the one stored (TTL + heartbeat, last writer wins a tie).

Freshness is judged on the *server's* clock only: a lease's age is the response `Date` header minus
its `Last-Modified`, so clock skew between pods cannot make a live lease look expired. Locally the
holder counts its lease as lost once `ttl - heartbeat` seconds pass without a successful renewal
(monotonic clock), and its replicator is killed then by a watchdog process (agent/fence.py) that
does not depend on the agent's main loop; a contender takes the lease over only after `ttl` plus
a margin (`takeover_margin`).

The three requests the lease needs (GET, conditional PUT, conditional DELETE of one object) are
signed with botocore's SigV4 signer and sent with urllib, instead of through a boto3 client: a
boto3 S3 client costs ~40 MB of RSS (its service model), the sidecar's budget is 60 MB.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import ssl
import time
import urllib.error
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import quote

from statekeeper.agent.config import AgentConfig
from statekeeper.agent.log import get_logger
from statekeeper.errors import EXIT_OK, InfraError, RefusedError

log = get_logger("lease")


def takeover_margin(ttl: float) -> float:
    """Seconds a contender waits beyond `ttl` before taking a lease over."""
    return max(1.0, 0.1 * ttl)


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
        """Past its TTL plus a margin: the holder's fence (agent/fence.py) has stopped its
        replicator by then, even if that holder is frozen or cut off from S3."""
        return self.age > self.ttl + takeover_margin(self.ttl)


class S3Error(Exception):
    """An S3 error response: `code` is the XML error code (or the HTTP status as text)."""

    def __init__(self, code: str, status: int) -> None:
        super().__init__(code)
        self.code = code
        self.status = status


@dataclass(frozen=True)
class StoredObject:
    body: bytes
    etag: str
    age: float  # Date − Last-Modified of the response, seconds (server clock)


class LeaseStore:
    """GET / PUT / DELETE of one bucket's objects, SigV4-signed, with conditional headers."""

    def __init__(self, config: AgentConfig) -> None:
        from botocore.credentials import Credentials

        self.config = config
        key_id = (
            config.access_key_id.get_secret_value()
            if config.access_key_id
            else os.environ.get("AWS_ACCESS_KEY_ID")
        )
        secret = (
            config.secret_access_key.get_secret_value()
            if config.secret_access_key
            else os.environ.get("AWS_SECRET_ACCESS_KEY")
        )
        if not key_id or not secret:
            raise InfraError(
                f"no S3 credentials for bucket {config.bucket!r}; set AWS_ACCESS_KEY_ID/"
                "AWS_SECRET_ACCESS_KEY (or their _FILE variants)"
            )
        self._credentials = Credentials(key_id, secret, os.environ.get("AWS_SESSION_TOKEN"))
        self._context: ssl.SSLContext | None = None
        endpoint = config.endpoint_url
        if endpoint.startswith("https://"):
            self._context = ssl.create_default_context(cafile=os.environ.get("AWS_CA_BUNDLE"))
        self._base = f"{endpoint}/{quote(config.bucket, safe='')}"
        self._where = f"bucket {config.bucket!r} at {config.endpoint or 'AWS S3'}"

    def _request(
        self, method: str, key: str, *, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest

        url = f"{self._base}/{quote(key, safe='/')}"
        request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
        S3SigV4Auth(self._credentials, "s3", self.config.region).add_auth(request)
        prepared = request.prepare()
        raw = urllib.request.Request(
            prepared.url,
            data=body if method == "PUT" else None,
            headers=dict(prepared.headers.items()),
            method=method,
        )
        try:
            with urllib.request.urlopen(
                raw, timeout=self.config.s3_timeout, context=self._context
            ) as response:
                return response.status, dict(response.headers.items()), response.read()
        except urllib.error.HTTPError as err:
            payload = err.read()
            raise S3Error(_xml_code(payload) or str(err.code), err.code) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
            # HTTPException: something that is not S3 answered (a wrong port, a proxy page)
            raise InfraError(
                f"S3 unreachable: {self._where} did not answer within "
                f"{self.config.s3_timeout:g}s ({type(err).__name__})"
            ) from None

    def describe(self, err: S3Error) -> str:
        """One line for an S3 error response, without secrets."""
        if err.status == 403 or err.code in ("AccessDenied", "InvalidAccessKeyId"):
            return (
                f"S3 credentials refused by {self._where} ({err.code}); check "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
            )
        if err.code == "NoSuchBucket":
            return f"{self._where} does not exist; create it or fix STATEKEEPER_BUCKET"
        if err.code == str(err.status):  # no S3 error document: not an S3 server
            from statekeeper.agent.s3 import not_s3

            return not_s3(self.config).replace("HTTP 404", f"HTTP {err.status}")
        return f"S3 error from {self._where}: {err.code}"

    def get(self, key: str) -> StoredObject | None:
        try:
            _, headers, body = self._request("GET", key)
        except S3Error as err:
            if err.code == "NoSuchKey" or (err.status == 404 and err.code == "404"):
                return None
            raise InfraError(self.describe(err)) from None
        lower = {k.lower(): v for k, v in headers.items()}
        return StoredObject(body=body, etag=lower.get("etag", ""), age=_server_age(lower))

    def put(
        self, key: str, body: bytes, *, if_match: str | None = None, if_none_match: bool = False
    ) -> str:
        """Write `key`; returns its new ETag. S3Error on a failed precondition (412/409)."""
        headers = {"Content-Type": "application/json"}
        if if_match is not None:
            headers["If-Match"] = if_match
        if if_none_match:
            headers["If-None-Match"] = "*"
        _, response_headers, _ = self._request("PUT", key, body=body, headers=headers)
        lower = {k.lower(): v for k, v in response_headers.items()}
        return lower.get("etag", "")

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        headers = {"If-Match": if_match} if if_match is not None else {}
        self._request("DELETE", key, headers=headers)


def _xml_code(payload: bytes) -> str:
    try:
        code = ET.fromstring(payload).findtext("Code")
    except ET.ParseError:
        return ""
    return code or ""


class Lease:
    """Acquire, renew and release the lease for `config.holder`. Not thread-safe: one owner."""

    def __init__(self, config: AgentConfig, store: LeaseStore | None = None) -> None:
        self.config = config
        self.key = config.lease_key
        self._store = store
        self.token = uuid.uuid4().hex
        self.etag: str | None = None
        self._renewed_mono = 0.0
        self._seq = 0
        self.conditional = True  # cleared when the store rejects conditional headers
        self.last_seen: LeaseRecord | None = None  # the lease as last read
        # Called with `valid_until` after every successful write (the sidecar's fence).
        self.on_renewed: Callable[[float], None] | None = None

    @property
    def store(self) -> LeaseStore:
        if self._store is None:
            self._store = LeaseStore(self.config)
        return self._store

    # --- reading --------------------------------------------------------------------------

    def read(self) -> LeaseRecord | None:
        """The stored lease, or None when there is none. InfraError when S3 cannot answer."""
        stored = self.store.get(self.key)
        if stored is None:
            self.last_seen = None
            return None
        body = stored.body
        try:
            data = json.loads(body)
            holder, token, ttl = str(data["holder"]), str(data["token"]), float(data["ttl"])
        except (ValueError, KeyError, TypeError):
            # Not our format: treat as a foreign, fresh lease (never silently overwrite it).
            holder, token, ttl = "<unreadable lease object>", "", float("inf")
        self.last_seen = LeaseRecord(
            holder=holder, token=token, ttl=ttl, etag=stored.etag, age=stored.age
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
    def valid_until(self) -> float:
        """Monotonic time until which the lease counts as ours (0 when it is not)."""
        if self.etag is None:
            return 0.0
        return self._renewed_mono + self._local_validity

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
        if not self.conditional:
            # A plain write cannot fail when someone else took the lease meanwhile: it would
            # overwrite theirs and both would replicate. Check it is still ours first.
            current = self.read()
            still_ours = current is not None and current.token == self.token
        else:
            still_ours = True
        if still_ours and self._write(if_match=self.etag, create=False):
            return True
        self.etag = None
        with contextlib.suppress(InfraError):
            self.read()  # learn who holds it now (for /ready and the logs)
        holder = self.last_seen.holder if self.last_seen else "nobody (released)"
        log.warning("lease lost", extra={"key": self.key, "holder": holder})
        return False

    def release(self) -> bool:
        """Delete the lease if it is still ours. Returns whether it was deleted."""
        if self.etag is None:
            return False
        etag, self.etag = self.etag, None
        return delete_lease(self.config, self.store, etag)

    def _write(self, *, if_match: str | None, create: bool) -> bool:
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
        started = time.monotonic()
        try:
            etag = self.store.put(
                self.key,
                body,
                if_match=if_match if self.conditional else None,
                if_none_match=create and self.conditional,
            )
        except S3Error as err:
            if err.code in _CONFLICT_CODES or err.status in (409, 412):
                return False
            if err.code == "NoSuchKey" and if_match is not None:
                return False  # the lease we renew was deleted (released by force)
            if (err.code in _UNSUPPORTED_CODES or err.status == 501) and self.conditional:
                log.warning("the store rejects conditional writes: lease falls back to TTL")
                self.conditional = False
                return self._write(if_match=if_match, create=create)
            raise InfraError(self.store.describe(err)) from None
        if not self.conditional:
            stored = self.read()
            if stored is None or stored.token != self.token:
                self.etag = None
                return False
            etag = stored.etag
        self.etag = etag
        self._renewed_mono = started  # validity counts from before the request was sent
        if self.on_renewed is not None:
            self.on_renewed(self.valid_until)
        return True


def _server_age(headers: dict[str, str]) -> float:
    """Seconds between the object's Last-Modified and the response's Date, both server clock."""
    try:
        modified = parsedate_to_datetime(headers["last-modified"])
    except (KeyError, TypeError, ValueError):
        return 0.0
    try:
        now = parsedate_to_datetime(headers["date"])
    except (KeyError, TypeError, ValueError):
        now = datetime.now(UTC)
    return max(0.0, (now - modified).total_seconds())


def delete_lease(config: AgentConfig, store: LeaseStore, etag: str | None) -> bool:
    """Delete the lease object, only if it still has `etag` (when given); whether deleted."""
    try:
        store.delete(config.lease_key, if_match=etag)
    except S3Error as err:
        if err.code in _CONFLICT_CODES or err.status in (409, 412) or err.code == "NoSuchKey":
            return False
        if (err.code in _UNSUPPORTED_CODES or err.status == 501) and etag is not None:
            return delete_lease(config, store, None)
        raise InfraError(store.describe(err)) from None
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
    if not delete_lease(config, lease.store, current.etag):
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
