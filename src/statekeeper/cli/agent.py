"""CLI: `statekeeper agent restore | run | verify | lease release`.

Every setting is a flag or a `STATEKEEPER_*` variable (flags win); each option's help names its
variable (`[env var: ...]`, read by `statekeeper.agent.config`, not by Typer, so one validation
and one error message cover both) or says `[flag only]`. See the README's agent section.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

Bucket = Annotated[str | None, typer.Option(help="S3 bucket \\[env var: STATEKEEPER_BUCKET]")]
Endpoint = Annotated[
    str | None,
    typer.Option(
        help="S3 endpoint URL, e.g. http://minio:9000 \\[env var: STATEKEEPER_S3_ENDPOINT]"
    ),
]
Region = Annotated[str | None, typer.Option(help="S3 region \\[env var: STATEKEEPER_REGION]")]
Prefix = Annotated[
    str | None, typer.Option(help="Key prefix, one per app \\[env var: STATEKEEPER_PREFIX]")
]
SqlitePaths = Annotated[
    str | None,
    typer.Option(
        "--sqlite-paths", help="Comma-separated SQLite files \\[env var: STATEKEEPER_SQLITE_PATHS]"
    ),
]
ConfigPaths = Annotated[
    str | None,
    typer.Option(
        "--config-paths",
        help="Comma-separated config directories \\[env var: STATEKEEPER_CONFIG_PATHS]",
    ),
]
LogFormat = Annotated[
    str | None, typer.Option(help="Log format: text or json \\[env var: STATEKEEPER_LOG_FORMAT]")
]


def _config(**overrides: Any) -> Any:
    from statekeeper.agent.config import load_config
    from statekeeper.agent.log import setup_logging

    config = load_config(overrides)
    secrets = [
        s.get_secret_value()
        for s in (config.access_key_id, config.secret_access_key)
        if s is not None
    ]
    setup_logging(config.log_format, secrets)
    return config


def _exit(command: Callable[[], int]) -> typer.Exit:
    """Run an agent entry point; a file-system error (a read-only volume, a path under a regular
    file, a full disk) becomes one line and exit 4 instead of a traceback."""
    from statekeeper.errors import InfraError

    try:
        return typer.Exit(command())
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise InfraError(
            f"file system error{where}: {exc.strerror or exc}; check the volume and its paths"
        ) from None


agent_app = typer.Typer(
    help=(
        "The backup agent inside the pod: `restore` (init container), `run` (sidecar), "
        "`verify` (restore drill). Exit codes: 0 ok, 2 configuration error, 3 refused to protect "
        "data, 4 infrastructure error (S3, credentials, binaries), 5 verification failed."
    ),
    no_args_is_help=True,
)
lease_app = typer.Typer(help="Inspect or free the replication lease.", no_args_is_help=True)
agent_app.add_typer(lease_app, name="lease")


@agent_app.command()
def restore(
    bucket: Bucket = None,
    endpoint: Endpoint = None,
    region: Region = None,
    prefix: Prefix = None,
    sqlite_paths: SqlitePaths = None,
    config_paths: ConfigPaths = None,
    log_format: LogFormat = None,
    integrity: Annotated[
        str | None,
        typer.Option(
            help="full (PRAGMA integrity_check) or quick \\[env var: STATEKEEPER_INTEGRITY]"
        ),
    ] = None,
    allow_empty: Annotated[
        bool | None,
        typer.Option(
            "--allow-empty/--no-allow-empty",
            help="Start even when a previously initialised DB and its replica are both gone. "
            "\\[env var: STATEKEEPER_ALLOW_EMPTY]",
        ),
    ] = None,
    restore_timeout: Annotated[
        str | None,
        typer.Option(
            help="Deadline of one DB restore, e.g. 1h \\[env var: STATEKEEPER_RESTORE_TIMEOUT]"
        ),
    ] = None,
    on_stale: Annotated[
        str | None,
        typer.Option(
            help="A healthy DB older than its replica: refuse, or restore (quarantine it and "
            "restore the replica) \\[env var: STATEKEEPER_ON_STALE]"
        ),
    ] = None,
) -> None:
    """Init container: check each DB, quarantine a corrupt one, restore from S3, restore config."""
    config = _config(
        bucket=bucket,
        endpoint=endpoint,
        region=region,
        prefix=prefix,
        sqlite_paths=sqlite_paths,
        config_paths=config_paths,
        log_format=log_format,
        integrity=integrity,
        allow_empty=allow_empty,
        restore_timeout=restore_timeout,
        on_stale=on_stale,
    )
    from statekeeper.agent.restore import main

    raise _exit(lambda: main(config))


@agent_app.command()
def run(
    bucket: Bucket = None,
    endpoint: Endpoint = None,
    region: Region = None,
    prefix: Prefix = None,
    sqlite_paths: SqlitePaths = None,
    config_paths: ConfigPaths = None,
    log_format: LogFormat = None,
    rclone_interval: Annotated[
        str | None,
        typer.Option(help="Config sync interval, 5m-15m \\[env var: STATEKEEPER_RCLONE_INTERVAL]"),
    ] = None,
    max_delete: Annotated[
        float | None,
        typer.Option(
            help="Refuse a sync deleting more than this % of remote files "
            "\\[env var: STATEKEEPER_MAX_DELETE]"
        ),
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Metrics/health port \\[env var: STATEKEEPER_PORT]")
    ] = None,
) -> None:
    """Sidecar: supervise `litestream replicate`, sync config with rclone, serve /metrics."""
    config = _config(
        bucket=bucket,
        endpoint=endpoint,
        region=region,
        prefix=prefix,
        sqlite_paths=sqlite_paths,
        config_paths=config_paths,
        log_format=log_format,
        rclone_interval=rclone_interval,
        max_delete=max_delete,
        port=port,
    )
    from statekeeper.agent.run import main

    raise _exit(lambda: main(config))


@agent_app.command()
def verify(
    bucket: Bucket = None,
    endpoint: Endpoint = None,
    region: Region = None,
    prefix: Prefix = None,
    sqlite_paths: SqlitePaths = None,
    config_paths: ConfigPaths = None,
    log_format: LogFormat = None,
    max_age: Annotated[
        str | None,
        typer.Option(help="Fail when the recovery point is older, e.g. 15m, 1h \\[flag only]"),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the JSON report here too. \\[flag only]"),
    ] = None,
) -> None:
    """Restore drill: restore the newest replicas to scratch, check them, report JSON."""
    config = _config(
        bucket=bucket,
        endpoint=endpoint,
        region=region,
        prefix=prefix,
        sqlite_paths=sqlite_paths,
        config_paths=config_paths,
        log_format=log_format,
    )
    from statekeeper.agent.verify import main

    raise _exit(lambda: main(config, max_age=max_age, output=output))


@lease_app.command("release")
def lease_release(
    bucket: Bucket = None,
    endpoint: Endpoint = None,
    region: Region = None,
    prefix: Prefix = None,
    log_format: LogFormat = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Release even when another holder's lease is still fresh. \\[flag only]",
        ),
    ] = False,
) -> None:
    """Free a stuck replication lease (e.g. after a node died)."""
    config = _config(
        bucket=bucket, endpoint=endpoint, region=region, prefix=prefix, log_format=log_format
    )
    from statekeeper.agent.lease import release_main

    raise _exit(lambda: release_main(config, force=force))


def register(app: typer.Typer) -> None:
    app.add_typer(agent_app, name="agent")
