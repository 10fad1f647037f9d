"""Restoring a backup onto the ledger's volume, with the ledger stopped.

Refused, with what to do instead, when the volume already holds a store, when the backup is of a
schema this version cannot open, or when Kafka can no longer bring it up to date: the topic Kafka serves
is another incarnation than the one the backup read (created again, another cluster), or retention has
deleted records the backup never read. A restore that passes these checks loses nothing: the ledger
resumes from the backup's offsets and applies what Kafka still holds, skipping what it already counted.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from ledger_svc.backup.snapshot import Backup, BackupFailed, read
from ledger_svc.consume.ports import IncarnationInspector, IncarnationUnknown
from ledger_svc.domain.incarnation import Checkpoint, IncarnationState, Match, judge
from ledger_svc.store.durable_files import fsync_path
from ledger_svc.store.schema import PARTIAL_STORE, STORE_FILE
from ledger_svc.store.writer import LedgerWriter, StoreRefused


class RestoreRefused(RuntimeError):
    """Nothing was restored; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Restored:
    backup: Backup
    # Records per partition Kafka holds past the backup: what the ledger applies once started.
    behind: dict[int, int]


def restore(backup_file: Path, data_dir: Path, topic: str, inspector: IncarnationInspector) -> Restored:
    """Put the backup in place as data_dir's store, once Kafka is shown to hold everything after it."""
    store = data_dir / STORE_FILE
    if store.exists():
        raise RestoreRefused(
            f"{store} already exists: restoring over a store would replace its total. Stop the ledger and"
            " move the store aside (or empty the volume) first."
        )
    try:
        backup = read(backup_file)  # refuses a schema this version cannot open
    except BackupFailed as exc:
        raise RestoreRefused(str(exc)) from exc
    checkpoints = backup.checkpoints.get(topic, {})
    if backup.checkpoints and not checkpoints:
        raise RestoreRefused(
            f"{backup_file} is a ledger of topic {', '.join(sorted(backup.checkpoints))}, not {topic!r}"
            " (KAFKA_TOPIC): restore a backup of this topic's ledger."
        )
    behind = _check_kafka(backup_file, topic, checkpoints, inspector)
    _put_in_place(backup_file, data_dir)
    return Restored(backup, behind)


def _check_kafka(
    backup_file: Path, topic: str, checkpoints: dict[int, Checkpoint], inspector: IncarnationInspector
) -> dict[int, int]:
    if not checkpoints:
        return {}
    keys_at = {
        p: c.next_offset - 1 for p, c in checkpoints.items() if c.last_key is not None and c.next_offset > 0
    }
    try:
        state: IncarnationState = inspector.inspect(sorted(checkpoints), keys_at)
    except IncarnationUnknown as exc:
        raise RestoreRefused(
            f"cannot check the backup against Kafka: {exc}. Retry once Kafka answers."
        ) from exc
    if state.unknown:
        raise RestoreRefused(
            f"cannot check the backup against Kafka: {state.unknown}. Retry once Kafka answers."
        )
    behind: dict[int, int] = {}
    for partition, checkpoint in sorted(checkpoints.items()):
        kafka = state.partitions[partition]
        verdict = judge(checkpoint, state.incarnation, kafka)
        if verdict.match is not Match.SAME:
            why = f"{verdict.reason}: {verdict.detail}" if verdict.detail else verdict.reason
            raise RestoreRefused(
                f"{backup_file} was taken from another Kafka log than topic {topic!r} is now"
                f" (partition {partition}: {why})."
                " Its offsets mean nothing there; restore a backup of this topic, or start a new ledger."
            )
        if verdict.expired:
            raise RestoreRefused(
                f"Kafka's retention has deleted {verdict.expired} records of partition {partition} that"
                f" {backup_file} never read (it resumes at offset {checkpoint.next_offset}; the log now"
                f" starts at {kafka.start}): a ledger restored from it would miss them. Restore a newer"
                " backup."
            )
        behind[partition] = kafka.end - checkpoint.next_offset
    return behind


def _put_in_place(backup_file: Path, data_dir: Path) -> None:
    """Copy under the name the ledger ignores as a half-made store, bring it to this schema, check it
    as the ledger will, then rename it into place."""
    partial = data_dir / PARTIAL_STORE
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copyfile(backup_file, partial)
        writer = LedgerWriter(partial)
        try:
            writer.migrate()
            writer.verify()
        finally:
            writer.close()
        for leftover in data_dir.glob(PARTIAL_STORE + "-*"):  # its -wal and -shm, empty once closed
            leftover.unlink()
        fsync_path(partial)
        partial.rename(data_dir / STORE_FILE)
        fsync_path(data_dir)
    except (OSError, StoreRefused) as exc:
        partial.unlink(missing_ok=True)
        raise RestoreRefused(f"could not restore {backup_file} into {data_dir}: {exc}") from exc
