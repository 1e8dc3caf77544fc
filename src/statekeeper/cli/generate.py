"""CLI: `statekeeper generate app|velero-schedule|storage-classes`.

Heavy modules (ruamel.yaml, the policy) are imported inside the commands so `--help` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from statekeeper.errors import InputError

generate_app = typer.Typer(
    name="generate",
    help="Write manifests that start compliant: a new app, the Velero schedule, StorageClasses.",
    no_args_is_help=True,
)

_POLICY = typer.Option(None, "--policy", help="Policy file overriding the built-in 'elite'.")
_FORCE = typer.Option(False, "--force", help="Overwrite files that already exist.")


def _split(values: list[str]) -> tuple[str, ...]:
    """`--env dev,prod --env test` → ("dev", "prod", "test")."""
    return tuple(part.strip() for v in values for part in v.split(",") if part.strip())


def _write(files: dict[Path, str], output: Path, force: bool) -> None:
    from statekeeper.generate import write_new_files

    written = write_new_files({output / rel: text for rel, text in files.items()}, force=force)
    for path in written:
        typer.echo(f"wrote {path}")


@generate_app.command("app")
def app_command(
    name: str = typer.Argument(..., help="App name (a Kubernetes name, e.g. 'mealie')."),
    env: list[str] = typer.Option(
        ..., "--env", "-e", help="Environments, comma-separated (overlay names, e.g. dev,prod)."
    ),
    sqlite: list[str] = typer.Option([], "--sqlite", help="SQLite database path (repeatable)."),
    config: list[str] = typer.Option([], "--config", help="Config directory (repeatable)."),
    size: str | None = typer.Option(
        None, "--size", help="PVC size; default: the low end of the policy's range."
    ),
    purpose: str = typer.Option("config", "--purpose", help="PVC purpose: <app>-<purpose>-pvc."),
    namespace: str | None = typer.Option(None, "--namespace", "-n", help="Default: the app name."),
    image: str | None = typer.Option(None, "--image", help="The app's container image."),
    bucket: str = typer.Option("statekeeper", "--bucket", help="S3 bucket for the replicas."),
    s3_endpoint: str = typer.Option(
        "http://minio.minio.svc.cluster.local:9000", "--s3-endpoint", help="S3 endpoint URL."
    ),
    s3_secret: str = typer.Option(
        "statekeeper-s3", "--s3-secret", help="Secret holding AWS_ACCESS_KEY_ID/SECRET (by ref)."
    ),
    output: Path = typer.Option(Path(), "--output", "-o", help="Directory to write into."),
    policy: Path | None = _POLICY,
    force: bool = _FORCE,
) -> None:
    """Write base + overlays for a new app that audits with zero findings."""
    from statekeeper.generate import AppSpec, load_strategy, render_app

    spec = AppSpec(
        name=name,
        environments=_split(env),
        sqlite_paths=_split(sqlite),
        config_paths=_split(config),
        size=size,
        purpose=purpose,
        namespace=namespace,
        image=image,
        bucket=bucket,
        s3_endpoint=s3_endpoint,
        s3_secret=s3_secret,
    )
    _write(render_app(spec, load_strategy(policy)), output, force)


def _emit(text: str, output: Path, filename: str, force: bool) -> None:
    if str(output) == "-":
        sys.stdout.write(text)
        return
    _write({Path(filename): text}, output, force)


@generate_app.command("velero-schedule")
def velero_schedule_command(
    schedule: str | None = typer.Option(None, "--schedule", help="Daily cron; default 0 3 * * *."),
    namespace: str = typer.Option("velero", "--namespace", "-n", help="Velero's namespace."),
    output: Path = typer.Option(Path(), "--output", "-o", help="Directory, or - for stdout."),
    policy: Path | None = _POLICY,
    force: bool = _FORCE,
) -> None:
    """Write a daily Velero Schedule of all namespaces, volumes included."""
    from statekeeper.generate import load_strategy, velero_schedule_yaml

    text = velero_schedule_yaml(load_strategy(policy), schedule=schedule, namespace=namespace)
    _emit(text, output, "velero-schedule.yaml", force)


@generate_app.command("storage-classes")
def storage_classes_command(
    provisioner: list[str] = typer.Option(
        [], "--provisioner", help="CLASS=DRIVER, e.g. nfs-storage=nfs.csi.k8s.io (repeatable)."
    ),
    output: Path = typer.Option(Path(), "--output", "-o", help="Directory, or - for stdout."),
    policy: Path | None = _POLICY,
    force: bool = _FORCE,
) -> None:
    """Write the policy's StorageClasses with their reclaim policies."""
    from statekeeper.generate import load_strategy, storage_classes_yaml

    drivers: dict[str, str] = {}
    for item in provisioner:
        cls, sep, driver = item.partition("=")
        if not sep or not cls or not driver:
            raise InputError(f"--provisioner {item!r}: expected CLASS=DRIVER")
        drivers[cls] = driver
    _emit(
        storage_classes_yaml(load_strategy(policy), drivers), output, "storage-classes.yaml", force
    )


def register(app: typer.Typer) -> None:
    """Add `generate` and its commands to the root app."""
    app.add_typer(generate_app, name="generate")
