"""SQLite adapter, write side: the ledger's source of truth on the volume.

One writer (the consumer) changes applied entries, partition offsets and the
balance in one transaction per batch, so a crash at any instant leaves either the
whole batch or none of it. Readers (the web workers) open the file read-only.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from ledger_svc.durable_files import fsync_path
from ledger_svc.ledger import Balance, BatchPlan, Delivery, PoisonRecord, plan_batch

STORE_FILE = "ledger.db"
SCHEMA_VERSION = "1"
# Volume entries that say nothing about a previous ledger.
_PARTIAL_STORE = STORE_FILE + ".creating"
_IGNORABLE_ON_EMPTY_VOLUME = {"lost+found"}

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE balance (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    total TEXT NOT NULL,
    count INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL UNIQUE,
    a INTEGER NOT NULL,
    b INTEGER NOT NULL,
    sum INTEGER NOT NULL,
    produced_at TEXT NOT NULL,
    applied_at TEXT NOT NULL,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    kafka_offset INTEGER NOT NULL
);
CREATE TABLE offsets (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
);
CREATE TABLE dead_letters (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    kafka_offset INTEGER NOT NULL,
    reason TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (topic, partition, kafka_offset)
);
"""


class StoreRefused(RuntimeError):
    """The volume holds something we must not overwrite or trust: an operator has to look."""


class StoreUnwritable(RuntimeError):
    """A write failed for a reason that may clear (full or read-only volume, I/O error)."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def connect(path: Path, read_only: bool) -> sqlite3.Connection:
    uri = f"file:{path}?mode={'ro' if read_only else 'rw'}"
    if read_only and os.statvfs(path.parent).f_flag & os.ST_RDONLY:
        # WAL readers need a -shm file they cannot create on a read-only volume; nobody
        # can write there either, so reading the file as immutable is exact.
        uri += "&immutable=1"
    connection = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=5, check_same_thread=False)
    connection.execute("PRAGMA busy_timeout = 5000")
    return connection


class LedgerWriter:
    """The single writer. Open it with open_or_create, which refuses anything it cannot vouch for."""

    def __init__(self, path: Path):
        self.path = path
        self._connection = self._open()

    @classmethod
    def open_or_create(cls, data_dir: Path) -> LedgerWriter:
        path = data_dir / STORE_FILE
        if not path.exists():
            leftovers = sorted(
                p.name
                for p in data_dir.iterdir()
                if p.name not in _IGNORABLE_ON_EMPTY_VOLUME and not p.name.startswith((".", _PARTIAL_STORE))
            )
            if leftovers:
                raise StoreRefused(
                    f"{path} is missing but the volume is not empty ({', '.join(leftovers[:5])}); "
                    "refusing to start a new ledger at zero over an old one. "
                    "Restore the store, or empty the volume to start over deliberately."
                )
            cls._create(path)
        writer = cls(path)
        writer.verify()
        return writer

    @staticmethod
    def _create(path: Path) -> None:
        # Built under a temporary name and renamed, so a crash mid-creation leaves no half store.
        partial = path.with_name(_PARTIAL_STORE)
        for leftover in path.parent.glob(partial.name + "*"):
            leftover.unlink()
        connection = sqlite3.connect(partial, isolation_level=None)
        try:
            created = _now()
            connection.executescript(_SCHEMA)
            connection.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [
                    ("schema_version", SCHEMA_VERSION),
                    ("store_id", str(uuid.uuid4())),
                    ("created_at", created),
                ],
            )
            connection.execute("INSERT INTO balance VALUES (1, '0', 0, ?)", (created,))
            # Switched last: the mode is recorded in the file and no -wal file is left to rename.
            connection.execute("PRAGMA journal_mode = WAL")
        finally:
            connection.close()
        fsync_path(partial)
        partial.rename(path)
        fsync_path(path.parent)

    def _open(self) -> sqlite3.Connection:
        try:
            connection = connect(self.path, read_only=False)
            connection.execute("PRAGMA journal_mode = WAL")
            # FULL: a committed batch survives power loss, so the total file never runs ahead of the store.
            connection.execute("PRAGMA synchronous = FULL")
            return connection
        except sqlite3.DatabaseError as exc:
            raise _classify(exc, self.path) from exc

    def verify(self) -> None:
        """Refuse a store that is damaged or whose balance disagrees with its own entries."""
        try:
            problems = [row[0] for row in self._connection.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                raise StoreRefused(
                    f"{self.path} is corrupt ({'; '.join(problems[:3])}); restore it from a backup"
                )
            version = self._connection.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'"
            ).fetchone()
            if version is None or version[0] != SCHEMA_VERSION:
                raise StoreRefused(f"{self.path} has schema version {version}, expected {SCHEMA_VERSION}")
            balance = self.balance()
            recomputed, count = 0, 0
            for (amount,) in self._connection.execute("SELECT sum FROM entries"):
                recomputed += amount
                count += 1
        except sqlite3.DatabaseError as exc:
            raise StoreRefused(
                f"{self.path} is not a readable ledger store ({exc}); restore it from a backup"
            ) from exc
        if (recomputed, count) != (balance.total, balance.count):
            raise StoreRefused(
                f"{self.path} is inconsistent: balance says total={balance.total} count={balance.count} "
                "but its "
                f"entries add up to total={recomputed} count={count}; restore it from a backup"
            )

    def balance(self) -> Balance:
        row = self._connection.execute("SELECT total, count FROM balance WHERE id = 1").fetchone()
        try:
            return Balance(total=int(row[0]), count=int(row[1]))
        except (TypeError, ValueError):
            raise StoreRefused(
                f"{self.path} has no valid balance row ({row!r}); restore it from a backup"
            ) from None

    def next_offsets(self, topic: str) -> dict[int, int]:
        rows = self._connection.execute(
            "SELECT partition, next_offset FROM offsets WHERE topic = ?", (topic,)
        )
        return dict(rows.fetchall())

    def commit_batch(
        self,
        deliveries: list[Delivery],
        poison: Iterable[PoisonRecord],
        next_offsets: dict[tuple[str, int], int],
    ) -> BatchPlan:
        """Apply a consumed batch and advance the offsets atomically; raise StoreUnwritable to retry later."""
        connection = self._connection
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                plan = plan_batch(self.balance(), deliveries, self._applied_operands(deliveries))
                applied_at = _now()
                connection.executemany(
                    "INSERT INTO entries"
                    " (request_id, a, b, sum, produced_at, applied_at, topic, partition, kafka_offset)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            d.event.request_id,
                            d.event.a,
                            d.event.b,
                            d.event.sum,
                            d.event.produced_at.isoformat(timespec="milliseconds"),
                            applied_at,
                            d.topic,
                            d.partition,
                            d.offset,
                        )
                        for d in plan.to_apply
                    ],
                )
                connection.executemany(
                    "INSERT OR IGNORE INTO dead_letters VALUES (?, ?, ?, ?, ?)",
                    [(p.topic, p.partition, p.offset, p.reason, applied_at) for p in poison],
                )
                connection.executemany(
                    "INSERT INTO offsets VALUES (?, ?, ?) ON CONFLICT (topic, partition) "
                    "DO UPDATE SET next_offset = excluded.next_offset",
                    [(topic, partition, offset) for (topic, partition), offset in next_offsets.items()],
                )
                connection.execute(
                    "UPDATE balance SET total = ?, count = ?, updated_at = ? WHERE id = 1",
                    (str(plan.balance.total), plan.balance.count, applied_at),
                )
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as exc:
            raise _classify(exc, self.path) from exc
        return plan

    def reopen(self) -> None:
        """Start over with a fresh connection after a write failure (a remounted volume needs one).

        The old connection is kept if the new one cannot be opened, so reads go on working."""
        fresh = self._open()
        self.close()
        self._connection = fresh

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._connection.close()

    def _applied_operands(self, deliveries: list[Delivery]) -> dict[str, tuple[int, int]]:
        ids = [d.event.request_id for d in deliveries]
        found: dict[str, tuple[int, int]] = {}
        # Chunked to stay under SQLite's bound-parameter limit.
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = self._connection.execute(
                f"SELECT request_id, a, b FROM entries WHERE request_id IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            found.update({request_id: (a, b) for request_id, a, b in rows})
        return found


def _classify(exc: sqlite3.DatabaseError, path: Path) -> Exception:
    code = getattr(exc, "sqlite_errorcode", None)
    transient = {
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_BUSY,
    }
    primary = code & 0xFF if isinstance(code, int) else None
    if primary in transient:
        return StoreUnwritable(f"cannot write {path}: {exc}")
    return StoreRefused(f"{path} is not a usable ledger store ({exc}); restore it from a backup")
