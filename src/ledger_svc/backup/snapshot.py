"""Taking a backup: a consistent copy of the live store, checked like the ledger checks its own store at
start, written under a temporary name and renamed, so a backup directory never holds half a backup.

SQLite's online backup API copies every page in one step, inside one read transaction: the copy is the
store as of one committed batch, while the consumer goes on committing (a WAL reader never blocks the
writer). A file copy of a live database is not: it can mix pages of two batches.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ledger_svc.domain.incarnation import Checkpoint, Incarnation
from ledger_svc.domain.ledger import Balance
from ledger_svc.store.durable_files import fsync_path
from ledger_svc.store.schema import READABLE_VERSIONS, STORE_FILE
from ledger_svc.store.writer import StoreRefused, verify_store

BACKUP_PREFIX = "ledger-"
BACKUP_SUFFIX = ".db"
_NAME_TIME = "%Y%m%dT%H%M%S.%fZ"
# Recorded in the copy's meta table: when the backup was taken (ISO 8601, UTC).
TAKEN_AT_KEY = "backup_taken_at"


class BackupFailed(RuntimeError):
    """No backup was written; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Backup:
    """What a backup file holds: the store's id and schema, when it was taken, the balance, and the
    Kafka position it covers (the next offset of every partition it read, per topic)."""

    path: Path
    store_id: str
    schema_version: str
    taken_at: datetime
    balance: Balance
    checkpoints: dict[str, dict[int, Checkpoint]]


def take(data_dir: Path, backup_dir: Path, now: datetime | None = None) -> Backup:
    """Back up the store in data_dir into backup_dir as ledger-<UTC time>.db, and return what it holds."""
    taken_at = now or datetime.now(UTC)
    source_path = data_dir / STORE_FILE
    if not source_path.is_file():
        raise BackupFailed(
            f"there is no ledger store at {source_path}: is the ledger's volume mounted there?"
        )
    backup_dir.mkdir(parents=True, exist_ok=True)
    name = f"{BACKUP_PREFIX}{taken_at.astimezone(UTC).strftime(_NAME_TIME)}{BACKUP_SUFFIX}"
    final, partial = backup_dir / name, backup_dir / f".{name}.partial"
    try:
        # Not immutable even on a read-only mount: the writer is live, and only the -shm file shows a
        # reader which pages are committed.
        with (
            _closing(sqlite3.connect(f"file:{source_path}?mode=ro", uri=True, timeout=30)) as source,
            _closing(sqlite3.connect(partial, isolation_level=None)) as copy,
        ):
            source.backup(copy)  # every page in one step: one read transaction, one consistent snapshot
            # One self-contained file: no -wal beside it to lose in transit.
            copy.execute("PRAGMA journal_mode = DELETE")
            copy.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (TAKEN_AT_KEY, taken_at.isoformat()))
            verify_store(copy, source_path, READABLE_VERSIONS)
        fsync_path(partial)
        partial.rename(final)
        fsync_path(backup_dir)
    except (sqlite3.Error, OSError, StoreRefused) as exc:
        partial.unlink(missing_ok=True)
        raise BackupFailed(f"could not back up {source_path} to {backup_dir}: {exc}") from exc
    return read(final)


def read(path: Path) -> Backup:
    """What the backup at path holds; BackupFailed if it is not an intact ledger store."""
    try:
        with _closing(sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)) as connection:
            meta = dict(connection.execute("SELECT key, value FROM meta").fetchall())
            balance = verify_store(connection, path, READABLE_VERSIONS)
            rows = connection.execute(
                "SELECT topic, partition, next_offset, cluster_id, topic_id, last_key FROM offsets"
            ).fetchall()
    except (sqlite3.Error, StoreRefused) as exc:
        raise BackupFailed(f"{path} is not a readable ledger backup: {exc}") from exc
    checkpoints: dict[str, dict[int, Checkpoint]] = {}
    for topic, partition, next_offset, cluster_id, topic_id, last_key in rows:
        log = Incarnation(cluster_id, topic_id) if cluster_id and topic_id else None
        checkpoints.setdefault(topic, {})[partition] = Checkpoint(next_offset, log, last_key)
    return Backup(
        path,
        meta.get("store_id", ""),
        meta.get("schema_version", ""),
        datetime.fromisoformat(meta[TAKEN_AT_KEY]) if TAKEN_AT_KEY in meta else _modified(path),
        balance,
        checkpoints,
    )


def newest(backup_dir: Path) -> Path | None:
    backups = list_backups(backup_dir)
    return backups[-1] if backups else None


def list_backups(backup_dir: Path) -> list[Path]:
    """The backups in backup_dir, oldest first (their names sort by the time they were taken)."""
    if not backup_dir.is_dir():
        return []
    return sorted(backup_dir.glob(f"{BACKUP_PREFIX}*{BACKUP_SUFFIX}"))


def taken_at_of(path: Path) -> datetime | None:
    """When the backup at path was taken, as its name says (None for a name this module did not write)."""
    stamp = path.name.removeprefix(BACKUP_PREFIX).removesuffix(BACKUP_SUFFIX)
    try:
        return datetime.strptime(stamp, _NAME_TIME).replace(tzinfo=UTC)
    except ValueError:
        return None


def prune(backup_dir: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` backups; returns what was deleted."""
    backups = list_backups(backup_dir)
    doomed = backups[: max(0, len(backups) - keep)]
    for path in doomed:
        path.unlink()
    if doomed:
        fsync_path(backup_dir)
    return doomed


def _modified(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


@contextlib.contextmanager
def _closing(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    try:
        yield connection
    finally:
        connection.close()
