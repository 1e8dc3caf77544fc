"""boto3 access to the agent's bucket: bounded timeouts, path-style, one-line errors.

boto3 is used for what must be answered exactly and quickly: "does the bucket answer, with these
credentials?" (so "no replica" is never confused with "cannot see it") and listings.
"""

from __future__ import annotations

import os
from typing import Any

from statekeeper.agent.config import AgentConfig
from statekeeper.errors import InfraError

# Error codes S3 (and MinIO, moto) return when credentials are wrong or not allowed.
_AUTH_CODES = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "AuthorizationHeaderMalformed",
    "403",
    "Forbidden",
}
_NO_BUCKET_CODES = {"NoSuchBucket", "404", "NotFound"}


def s3_client(config: AgentConfig) -> Any:
    """A boto3 S3 client for `config`: path-style addressing, connect/read timeouts and a small
    retry budget derived from `config.s3_timeout`, so a dead endpoint fails within ~that time.

    AWS_CA_BUNDLE is honoured only for https:// endpoints (as `child_env` does); for http:// it is
    irrelevant and ignored. Credentials come from the config, else the default chain.
    """
    import boto3
    from botocore.config import Config

    # Two attempts of at most a third of the budget each (plus a short backoff): a dead or
    # silent endpoint fails within about `s3_timeout`.
    per_try = max(1.0, config.s3_timeout / 3)
    botocfg = Config(
        connect_timeout=per_try,
        read_timeout=per_try,
        retries={"max_attempts": 2, "mode": "standard"},
        s3={"addressing_style": "path"},
    )
    kwargs: dict[str, Any] = {"region_name": config.region, "config": botocfg}
    if config.endpoint:
        kwargs["endpoint_url"] = config.endpoint
    if config.endpoint and config.endpoint.startswith("http://"):
        kwargs["verify"] = False  # plain http: no TLS, and a custom CA bundle must not interfere
    elif os.environ.get("AWS_CA_BUNDLE"):
        kwargs["verify"] = os.environ["AWS_CA_BUNDLE"]
    if config.access_key_id is not None and config.secret_access_key is not None:
        kwargs["aws_access_key_id"] = config.access_key_id.get_secret_value()
        kwargs["aws_secret_access_key"] = config.secret_access_key.get_secret_value()
    return boto3.client("s3", **kwargs)


def describe_error(config: AgentConfig, exc: BaseException) -> str:
    """One line saying what went wrong talking to S3, without secrets."""
    from botocore.exceptions import (
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        ReadTimeoutError,
    )

    where = f"bucket {config.bucket!r} at {config.endpoint or 'AWS S3'}"
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        if code in _AUTH_CODES or status == "403":
            return (
                f"S3 credentials refused by {where} ({code or status}); check "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
            )
        if code == "NoSuchBucket":
            return f"{where} does not exist; create it or fix STATEKEEPER_BUCKET"
        if code in _NO_BUCKET_CODES or status == "404":
            # A bare 404 with no S3 error code: whatever answers there does not speak S3.
            return not_s3(config)
        return f"S3 error from {where}: {code or status}"
    if isinstance(exc, NoCredentialsError):
        return f"no S3 credentials for {where}; set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError | ReadTimeoutError):
        return f"S3 unreachable: {where} did not answer within {config.s3_timeout:g}s"
    return f"S3 unreachable: {where}: {type(exc).__name__}"


def not_s3(config: AgentConfig) -> str:
    return (
        f"{config.endpoint or 'AWS S3'} answered without an S3 error code (HTTP 404): it does "
        "not look like an S3 server; check STATEKEEPER_S3_ENDPOINT"
    )


def check_bucket(config: AgentConfig) -> None:
    """Raise InfraError unless the bucket answers a listing with these credentials.

    ListObjectsV2 (not HeadBucket) because a HEAD error carries no error code, and listing is the
    permission restore needs anyway.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        s3_client(config).list_objects_v2(
            Bucket=config.bucket, Prefix=f"{config.prefix}/", MaxKeys=1
        )
    except (BotoCoreError, ClientError) as exc:
        raise InfraError(describe_error(config, exc)) from None


def list_prefix(config: AgentConfig, prefix: str) -> list[dict[str, Any]]:
    """All objects under `prefix` (`Key`, `Size`, `LastModified`); InfraError on S3 failure."""
    from botocore.exceptions import BotoCoreError, ClientError

    client = s3_client(config)
    objects: list[dict[str, Any]] = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=config.bucket, Prefix=prefix
        ):
            objects.extend(page.get("Contents", []))
    except (BotoCoreError, ClientError) as exc:
        raise InfraError(describe_error(config, exc)) from None
    return objects


def probe_endpoint(config: AgentConfig) -> None:
    """Raise InfraError unless the S3 endpoint answers HTTP at all within `config.s3_timeout`.

    A cheap reachability test (no boto3, no credentials sent, any HTTP status counts) used to
    bound waits on litestream; whether the bucket and the credentials are right is proven by a
    listing (litestream's, or `check_bucket`). TLS certificates are not verified here because
    nothing secret is sent; the real clients verify them.
    """
    import http.client
    import ssl
    import time
    from urllib.parse import urlparse

    url = urlparse(config.endpoint_url)
    per_step = max(0.5, config.s3_timeout / 2)  # connect, then the response
    connection: http.client.HTTPConnection
    if url.scheme == "https":
        connection = http.client.HTTPSConnection(
            url.hostname or "", url.port, timeout=per_step, context=ssl._create_unverified_context()
        )
    else:
        connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=per_step)
    started = time.monotonic()
    try:
        connection.request("HEAD", "/")
        connection.getresponse().read()
    except (OSError, http.client.HTTPException):
        waited = time.monotonic() - started
        raise InfraError(
            f"S3 unreachable: bucket {config.bucket!r} at {config.endpoint or 'AWS S3'} did not "
            f"answer (gave up after {waited:.1f}s)"
        ) from None
    finally:
        connection.close()
