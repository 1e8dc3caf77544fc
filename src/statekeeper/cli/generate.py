"""CLI: `statekeeper generate app|velero-schedule|storage-classes`.

Heavy modules (ruamel.yaml, the policy) are imported inside the commands so `--help` stays fast.
Existing files are never overwritten without `--force`; exit 2 on bad input, nothing written.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from statekeeper import defaults
from statekeeper.cli.options import ForceOption, OutputDirOption, PolicyOption
from statekeeper.errors import InputError

generate_app = typer.Typer(
    name="generate",
    help="Write manifests that start compliant: a new app, the Velero schedule, StorageClasses.",
    no_args_is_help=True,
)

CURRENT_DIR = Path()


def _split(values: list[str] | None) -> tuple[str, ...]:
    """`--env dev,prod --env test` → ("dev", "prod", "test")."""
    return tuple(part.strip() for v in values or [] for part in v.split(",") if part.strip())


def _write(files: dict[Path, str], output: Path, force: bool) -> None:
    from statekeeper.generate import write_new_files

    written = write_new_files({output / rel: text for rel, text in files.items()}, force=force)
    for path in written:
        typer.echo(f"wrote {path}")


@generate_app.command("app")
def app_command(
    name: Annotated[str, typer.Argument(help="App name (a Kubernetes name, e.g. 'mealie').")],
    env: Annotated[
        list[str],
        typer.Option("--env", "-e", help="Environments (overlay names), e.g. dev,prod."),
    ],
    sqlite: Annotated[
        list[str] | None, typer.Option("--sqlite", help="SQLite database path (repeatable).")
    ] = None,
    config: Annotated[
        list[str] | None, typer.Option("--config", help="Config directory (repeatable).")
    ] = None,
    size: Annotated[
        str | None,
        typer.Option("--size", help="PVC size; default: the low end of the policy's range."),
    ] = None,
    purpose: Annotated[
        str, typer.Option("--purpose", help="PVC purpose: <app>-<purpose>-pvc.")
    ] = "config",
    namespace: Annotated[
        str | None, typer.Option("--namespace", "-n", help="Namespace; default: the app name.")
    ] = None,
    image: Annotated[str | None, typer.Option("--image", help="The app's image.")] = None,
    bucket: Annotated[
        str, typer.Option("--bucket", help="S3 bucket for replicas.")
    ] = defaults.S3_BUCKET,
    s3_endpoint: Annotated[
        str,
        typer.Option(
            "--s3-endpoint",
            # rich cuts a word wider than the help column (the URL) with an ellipsis.
            help="S3 endpoint URL (default: the in-cluster MinIO, http on port 9000 of "
            "minio.minio.svc.cluster.local).",
            show_default=False,
        ),
    ] = defaults.S3_ENDPOINT,
    s3_secret: Annotated[
        str,
        typer.Option("--s3-secret", help="Secret with AWS_ACCESS_KEY_ID/_SECRET_ACCESS_KEY."),
    ] = defaults.S3_SECRET,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Directory to write <app>/ into.")
    ] = CURRENT_DIR,
    policy: PolicyOption = None,
    force: ForceOption = False,
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
    # What the generated files cannot do for the user: the pods need these to start and be
    # covered, and the secret must never be written to git.
    typer.echo(
        f"next: create Secret {s3_secret} (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) in "
        f"namespace {namespace or name} outside git (SOPS, External Secrets)"
    )
    if image is None:
        typer.echo(f"next: set the app's image in base/deployment.yaml (written: {name}:latest)")
    typer.echo(
        "next: back the namespace up daily with Velero (`statekeeper generate velero-schedule`)"
    )


def _emit(text: str, output: Path, filename: str, force: bool) -> None:
    if str(output) == "-":
        sys.stdout.write(text)
        return
    _write({Path(filename): text}, output, force)


@generate_app.command("velero-schedule")
def velero_schedule_command(
    schedule: Annotated[
        str | None, typer.Option("--schedule", help="A daily cron; default 0 3 * * *.")
    ] = None,
    namespace: Annotated[
        str, typer.Option("--namespace", "-n", help="Velero's namespace.")
    ] = "velero",
    output: OutputDirOption = CURRENT_DIR,
    policy: PolicyOption = None,
    force: ForceOption = False,
) -> None:
    """Write a daily Velero Schedule of all namespaces, volumes included."""
    from statekeeper.generate import load_strategy, velero_schedule_yaml

    text = velero_schedule_yaml(load_strategy(policy), schedule=schedule, namespace=namespace)
    _emit(text, output, "velero-schedule.yaml", force)


@generate_app.command("storage-classes")
def storage_classes_command(
    provisioner: Annotated[
        list[str] | None,
        typer.Option("--provisioner", help="CLASS=DRIVER, e.g. nfs-storage=nfs.csi.k8s.io."),
    ] = None,
    output: OutputDirOption = CURRENT_DIR,
    policy: PolicyOption = None,
    force: ForceOption = False,
) -> None:
    """Write the policy's StorageClasses with their reclaim policies."""
    from statekeeper.generate import load_strategy, storage_classes_yaml

    drivers: dict[str, str] = {}
    for item in provisioner or []:
        cls, sep, driver = item.partition("=")
        if not sep or not cls or not driver:
            raise InputError(f"--provisioner {item!r}: expected CLASS=DRIVER")
        drivers[cls] = driver
    text = storage_classes_yaml(load_strategy(policy), drivers)
    _emit(text, output, "storage-classes.yaml", force)


def register(app: typer.Typer) -> None:
    """Add `generate` and its commands to the root app."""
    app.add_typer(generate_app, name="generate")
