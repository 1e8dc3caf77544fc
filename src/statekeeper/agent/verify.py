"""`statekeeper agent verify`: the restore drill.

For each SQLite path: restore the newest replica into a scratch directory (never next to the live
DB), run `PRAGMA integrity_check`, and report the recovery point (timestamp of the newest LTX file
in the replica, from `litestream ltx -json`), its age, the restored size and each table's row
count. For each config path: the files and bytes a restore would bring (a listing of
`<prefix>/files/<dir name>/`). The report is JSON on stdout (and `--output`).

Exit 0 when every check passes; 5 (VerifyFailed) when a replica is missing, has no snapshot or a
gap in its LTX chain, is behind its high-water mark (agent/hwm.py: acknowledged transactions are
missing), fails to restore, fails its check, or its recovery point is older than `--max-age` (or
unknown while `--max-age` is given); 4 when S3 cannot be reached.
"""

from __future__ import annotations

import fnmatch
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from statekeeper.agent.config import AgentConfig, parse_duration
from statekeeper.agent.hwm import behind_message, read_mark, restorable_position
from statekeeper.agent.lease import LeaseStore
from statekeeper.agent.litestream import ltx_json, restore_command, write_config
from statekeeper.agent.log import get_logger
from statekeeper.agent.procs import run_bounded
from statekeeper.agent.s3 import check_bucket, list_prefix
from statekeeper.agent.sqlite import integrity_check, table_row_counts
from statekeeper.errors import EXIT_OK, ConfigError, InfraError, VerifyFailed

log = get_logger("verify")


def _parse_time(value: Any) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def recovery_point(entries: list[dict[str, Any]]) -> tuple[datetime | None, str | None]:
    """(newest LTX timestamp, highest TXID) of a replica's LTX listing."""
    times = [t for t in (_parse_time(e.get("timestamp")) for e in entries) if t is not None]
    txids = [str(e["max_txid"]) for e in entries if e.get("max_txid")]
    return (max(times) if times else None), (
        max(txids, key=lambda t: int(t, 16)) if txids else None
    )


def check_database(
    config: AgentConfig, db: Path, config_file: Path, scratch: Path, max_age: float | None
) -> dict[str, Any]:
    """Drill one database; the dict's `problems` is empty when it passed."""
    report: dict[str, Any] = {
        "db": str(db),
        "replica": f"s3://{config.bucket}/{config.replica_key(db)}",
        "ok": False,
        "problems": [],
    }
    entries = ltx_json(config, db, config_file)
    if not entries:
        report["problems"].append("no replica in the bucket")
        return report
    point, txid = recovery_point(entries)
    position = restorable_position(entries)
    mark = read_mark(config, db, LeaseStore(config))
    report["restorable_txid"] = f"{position.restorable:016x}"
    report["high_water_mark"] = f"{mark.txid:016x}" if mark else None
    if not position.snapshot:
        report["problems"].append("the replica has no snapshot: nothing can be restored")
    elif position.gap:
        report["problems"].append(
            f"LTX files are missing after txid {position.restorable:016x} "
            f"(newest {position.newest:016x}): a restore stops there"
        )
    if mark is not None and position.restorable < mark.txid:
        report["problems"].append(behind_message(config, db, position, mark))
    now = datetime.now(UTC)
    report["recovery_point"] = point.isoformat() if point else None
    report["age_seconds"] = round((now - point).total_seconds(), 1) if point else None
    report["txid"] = txid
    target = scratch / db.name
    started = time.monotonic()
    result = run_bounded(
        restore_command(config_file, db, target),
        env=config.child_env(),
        timeout=config.restore_timeout,
        grace=config.kill_grace,
    )
    report["restore_seconds"] = round(time.monotonic() - started, 3)
    if result.returncode != 0 or not target.exists():
        report["problems"].append(f"litestream restore failed (exit {result.returncode})")
        return report
    report["size_bytes"] = target.stat().st_size
    check = integrity_check(target, "full", read_only=False)
    report["integrity"] = check.detail
    if not check.ok:
        report["problems"].append(f"integrity check failed: {check.detail}")
        return report
    report["tables"] = table_row_counts(target)
    if max_age is not None and report["age_seconds"] is None:
        report["problems"].append(
            f"no recovery point is known (no LTX timestamp), so --max-age ({max_age:g}s) "
            "cannot pass"
        )
    elif (
        max_age is not None
        and report["age_seconds"] is not None
        and report["age_seconds"] > max_age
    ):
        report["problems"].append(
            f"recovery point {report['recovery_point']} is older than --max-age ({max_age:g}s)"
        )
    report["ok"] = not report["problems"]
    return report


def _restorable(key: str) -> bool:
    """False for the SQLite files and journals that the config restore (rclone) excludes."""
    from statekeeper.agent.rclone import SQLITE_EXCLUDES

    name = key.rsplit("/", 1)[-1]
    return not any(fnmatch.fnmatchcase(name, p) for p in SQLITE_EXCLUDES if "/" not in p)


def check_config_dir(config: AgentConfig, directory: Path) -> dict[str, Any]:
    """What a config restore of `directory` would bring: file count and bytes in the bucket."""
    key = config.files_key(directory) + "/"
    objects = [o for o in list_prefix(config, key) if _restorable(str(o.get("Key", "")))]
    return {
        "path": str(directory),
        "remote": f"s3://{config.bucket}/{key}",
        "files": len(objects),
        "bytes": sum(int(o.get("Size", 0)) for o in objects),
        "ok": True,
    }


def run_verify(config: AgentConfig, max_age: float | None) -> dict[str, Any]:
    """Build the drill report (InfraError when S3 cannot be reached)."""
    check_bucket(config)
    report: dict[str, Any] = {
        "checked_at": datetime.now(UTC).isoformat(),
        "bucket": config.bucket,
        "prefix": config.prefix,
        "max_age_seconds": max_age,
        "databases": [],
        "config_paths": [],
    }
    with tempfile.TemporaryDirectory(prefix="statekeeper-verify-") as scratch:
        config_file = write_config(config, Path(scratch) / "litestream.yml")
        for db in config.sqlite_paths:
            db_scratch = Path(tempfile.mkdtemp(dir=scratch))
            try:
                entry = check_database(config, db, config_file, db_scratch, max_age)
            except InfraError as exc:
                # The bucket answered a moment ago: a failing restore is the drill's finding.
                entry = {"db": str(db), "ok": False, "problems": [str(exc)]}
            log.info(
                "database checked",
                extra={"db": str(db), "ok": entry["ok"], "problems": len(entry["problems"])},
            )
            report["databases"].append(entry)
    for directory in config.config_paths:
        report["config_paths"].append(check_config_dir(config, directory))
    report["ok"] = all(d["ok"] for d in report["databases"]) and all(
        c["ok"] for c in report["config_paths"]
    )
    return report


def main(config: AgentConfig, max_age: str | None = None, output: Path | None = None) -> int:
    """CLI entry point: print the JSON report; exit 5 when any check failed."""
    try:
        max_age_s = parse_duration(max_age) if max_age is not None else None
    except ValueError as exc:
        raise ConfigError(f"invalid --max-age: {exc}") from None
    report = run_verify(config, max_age_s)
    text = json.dumps(report, indent=2) + "\n"
    sys.stdout.write(text)
    if output is not None:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot write --output {output}: {exc.strerror}") from None
    if not report["ok"]:
        failed = [f"{d['db']}: {d['problems'][0]}" for d in report["databases"] if d["problems"]]
        raise VerifyFailed(
            f"restore drill failed: {failed[0]}"
            + (f" (and {len(failed) - 1} more)" if len(failed) > 1 else "")
        )
    return EXIT_OK
