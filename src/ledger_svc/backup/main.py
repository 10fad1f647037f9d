"""`python -m ledger_svc.backup`: take a backup of the running ledger's store, show what a backup holds,
or restore one onto an empty volume (the ledger stopped). Configured like the ledger (LEDGER_DATA_DIR,
LEDGER_BACKUP_DIR, LEDGER_BACKUP_KEEP, KAFKA_*); prints the result as one JSON line on stdout,
and exits 1 with the reason on stderr when nothing was done."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from opentelemetry import trace

from distsum import logs, settings, telemetry
from ledger_svc.backup.restore import Restored, RestoreRefused, restore
from ledger_svc.backup.snapshot import Backup, BackupFailed, newest, prune, read, take
from ledger_svc.config import LedgerSettings
from ledger_svc.consume.kafka_clients import KafkaLogInspector
from ledger_svc.store.schema import STORE_FILE

log = logging.getLogger("ledger_svc.backup")
tracer = trace.get_tracer(__name__)


def _describe(backup: Backup) -> dict[str, Any]:
    return {
        "backup": str(backup.path),
        "store_id": backup.store_id,
        "schema_version": backup.schema_version,
        "taken_at": backup.taken_at.isoformat(),
        "total": str(backup.balance.total),
        "count": backup.balance.count,
        "offsets": {
            topic: {str(p): c.next_offset for p, c in sorted(partitions.items())}
            for topic, partitions in backup.checkpoints.items()
        },
    }


def _take(config: LedgerSettings, args: argparse.Namespace) -> dict[str, Any]:
    backup_dir = args.to or config.backup_dir
    if backup_dir is None:
        raise BackupFailed("where to? pass --to DIR or set LEDGER_BACKUP_DIR")
    started = time.monotonic()
    with tracer.start_as_current_span("ledger backup take"):
        backup = take(config.data_dir, backup_dir)
        pruned = prune(backup_dir, args.keep or config.backup_keep)
    result = {**_describe(backup), "seconds": round(time.monotonic() - started, 3)}
    log.info("backup taken", extra={**result, "pruned": [p.name for p in pruned]})
    return result


def _show(config: LedgerSettings, args: argparse.Namespace) -> dict[str, Any]:
    path: Path | None = args.backup or config.backup_dir
    if path is not None and path.is_dir():
        path = newest(path)
    if path is None:
        raise BackupFailed("no backup found: pass a backup file or a directory holding backups")
    return _describe(read(path))


def _restore(config: LedgerSettings, args: argparse.Namespace) -> dict[str, Any]:
    if args.if_missing and (config.data_dir / STORE_FILE).exists():
        # The chart's init container, on every start after the restore: the store in place stays.
        log.info("a store is in place; nothing restored", extra={"data_dir": str(config.data_dir)})
        return {"restored_to": None, "reason": f"{config.data_dir / STORE_FILE} exists"}
    kafka = settings.load(settings.KafkaSettings)
    with tracer.start_as_current_span("ledger backup restore"):
        restored: Restored = restore(
            args.backup, config.data_dir, kafka.topic, KafkaLogInspector(config, kafka)
        )
    result = {
        **_describe(restored.backup),
        "restored_to": str(config.data_dir),
        "records_to_catch_up": {str(p): n for p, n in sorted(restored.behind.items())},
    }
    log.info("backup restored; start the ledger to catch up from Kafka", extra=result)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ledger_svc.backup", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    take_command = commands.add_parser("take", help="back up the running ledger's store")
    take_command.add_argument("--to", type=Path, help="the backup directory (default: LEDGER_BACKUP_DIR)")
    take_command.add_argument("--keep", type=int, help="backups to keep there (default: LEDGER_BACKUP_KEEP)")
    show_command = commands.add_parser("show", help="what a backup holds (a directory: its newest)")
    show_command.add_argument("backup", type=Path, nargs="?")
    restore_command = commands.add_parser("restore", help="restore a backup onto an empty volume")
    restore_command.add_argument("backup", type=Path)
    restore_command.add_argument(
        "--if-missing", action="store_true", help="do nothing (exit 0) where the volume holds a store"
    )
    args = parser.parse_args(argv)

    logs.configure("ledger-backup")
    config = settings.load(LedgerSettings)
    telemetry.configure_tracing("ledger")
    handlers = {"take": _take, "show": _show, "restore": _restore}
    try:
        result = handlers[args.command](config, args)
    except (BackupFailed, RestoreRefused) as exc:
        log.error(f"{args.command} refused", extra={"reason": str(exc)})
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    finally:
        telemetry.shutdown_tracing()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
