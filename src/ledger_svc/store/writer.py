"""SQLite adapter, write side: the ledger's source of truth on the volume.

One writer (the consumer) changes applied entries, partition checkpoints and the
balance in one transaction per batch, so a crash at any instant leaves either the
whole batch or none of it. Readers (the web workers) open the file read-only.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path

from ledger_svc.domain.incarnation import Checkpoint, Incarnation
from ledger_svc.domain.ledger import Balance, BatchPlan, Delivery, PoisonRecord, ReadUpTo, plan_batch
from ledger_svc.store import schema
from ledger_svc.store.schema import PARTIAL_STORE, SCHEMA_VERSION, STORE_FILE, connect

# Volume entries that say nothing about a previous ledger.
_IGNORABLE_ON_EMPTY_VOLUME = {"lost+found"}


class StoreRefused(RuntimeError):
    """The volume holds something we must not overwrite or trust: an operator has to look."""


class StoreUnwritable(RuntimeError):
    """A write failed for a reason that may clear (full or read-only volume, I/O error)."""


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
                if p.name not in _IGNORABLE_ON_EMPTY_VOLUME and not p.name.startswith((".", PARTIAL_STORE))
            )
            if leftovers:
                raise StoreRefused(
                    f"{path} is missing but the volume is not empty ({', '.join(leftovers[:5])}); "
                    "refusing to start a new ledger at zero over an old one. "
                    "Restore the store, or empty the volume to start over deliberately."
                )
            schema.create(path)
        writer = cls(path)
        writer.migrate()
        writer.verify()
        return writer

    def _open(self) -> sqlite3.Connection:
        try:
            connection = connect(self.path, read_only=False)
            connection.execute("PRAGMA journal_mode = WAL")
            # FULL: a committed batch survives power loss, so the total file never runs ahead of the store.
            connection.execute("PRAGMA synchronous = FULL")
            return connection
        except sqlite3.DatabaseError as exc:
            raise _classify(exc, self.path) from exc

    def migrate(self) -> None:
        """Bring a store written by an earlier version to this schema, one version per transaction."""
        try:
            while statements := schema.migration_from(self._connection):
                with self._transaction():
                    for statement in statements:
                        self._connection.execute(statement)
        except sqlite3.DatabaseError as exc:
            raise _classify(exc, self.path) from exc

    def verify(self) -> None:
        """Refuse a store that is damaged or whose balance disagrees with its own entries."""
        verify_store(self._connection, self.path)

    def balance(self) -> Balance:
        return read_balance(self._connection, self.path)

    def checkpoints(self, topic: str) -> dict[int, Checkpoint]:
        rows = self._connection.execute(
            "SELECT partition, next_offset, cluster_id, topic_id, last_key FROM offsets WHERE topic = ?",
            (topic,),
        )
        return {
            partition: Checkpoint(
                next_offset,
                None if cluster_id is None or topic_id is None else Incarnation(cluster_id, topic_id),
                last_key,
            )
            for partition, next_offset, cluster_id, topic_id, last_key in rows
        }

    def save_checkpoints(self, topic: str, checkpoints: dict[int, Checkpoint]) -> None:
        """Replace partitions' checkpoints whole: when a partition's log is verified or starts again."""
        rows = [
            (
                topic,
                partition,
                c.next_offset,
                c.incarnation.cluster_id if c.incarnation else None,
                c.incarnation.topic_id if c.incarnation else None,
                c.last_key,
            )
            for partition, c in checkpoints.items()
        ]
        try:
            with self._transaction():
                self._connection.executemany("INSERT OR REPLACE INTO offsets VALUES (?, ?, ?, ?, ?, ?)", rows)
        except sqlite3.DatabaseError as exc:
            raise _classify(exc, self.path) from exc

    def commit_batch(
        self, deliveries: list[Delivery], poison: Iterable[PoisonRecord], read_up_to: ReadUpTo
    ) -> BatchPlan:
        """Apply a consumed batch and advance the checkpoints atomically; raise StoreUnwritable to retry."""
        connection = self._connection
        try:
            with self._transaction():
                plan = plan_batch(self.balance(), deliveries, self._applied_operands(deliveries))
                applied_at = schema.now()
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
                # Once per record of a log: a redelivered poison record is not counted again.
                connection.executemany(
                    "INSERT OR IGNORE INTO dead_letters VALUES (?1, ?2, ?3, "
                    + schema.CHECKPOINT_LOG.format(topic="?1", partition="?2")
                    + ", ?4, ?5)",
                    [(p.topic, p.partition, p.offset, p.reason, applied_at) for p in poison],
                )
                # The log's ids stay as the consumer verified them.
                connection.executemany(
                    "INSERT INTO offsets (topic, partition, next_offset, last_key) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (topic, partition)"
                    " DO UPDATE SET next_offset = excluded.next_offset, last_key = excluded.last_key",
                    [(t, p, offset, key) for (t, p), (offset, key) in read_up_to.items()],
                )
                connection.execute(
                    "UPDATE balance SET total = ?, count = ?, updated_at = ? WHERE id = 1",
                    (str(plan.balance.total), plan.balance.count, applied_at),
                )
        except sqlite3.DatabaseError as exc:
            raise _classify(exc, self.path) from exc
        return plan

    def reopen(self) -> None:
        """Start over with a fresh connection after a write failure (a remounted volume needs one).

        The old connection is kept if the new one cannot be opened, so reads go on working."""
        fresh = self._open()
        self.close()
        self._connection = fresh

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._connection.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._connection.execute("COMMIT")
        except BaseException:
            if self._connection.in_transaction:
                self._connection.execute("ROLLBACK")
            raise

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


def verify_store(
    connection: sqlite3.Connection, path: Path, schema_versions: Collection[str] = (SCHEMA_VERSION,)
) -> Balance:
    """The store's balance, once shown intact, of one of schema_versions, and equal to what its entries
    add up to; StoreRefused otherwise."""
    try:
        problems = [row[0] for row in connection.execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            raise StoreRefused(f"{path} is corrupt ({'; '.join(problems[:3])}); restore it from a backup")
        version = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if version is None or version[0] not in schema_versions:
            found = version[0] if version else "none"
            raise StoreRefused(f"{path} has schema version {found}, expected {' or '.join(schema_versions)}")
        balance = read_balance(connection, path)
        recomputed, count = 0, 0
        for (amount,) in connection.execute("SELECT sum FROM entries"):
            recomputed += amount
            count += 1
    except sqlite3.DatabaseError as exc:
        raise StoreRefused(
            f"{path} is not a readable ledger store ({exc}); restore it from a backup"
        ) from exc
    if (recomputed, count) != (balance.total, balance.count):
        raise StoreRefused(
            f"{path} is inconsistent: balance says total={balance.total} count={balance.count} but its "
            f"entries add up to total={recomputed} count={count}; restore it from a backup"
        )
    return balance


def read_balance(connection: sqlite3.Connection, path: Path) -> Balance:
    row = connection.execute("SELECT total, count FROM balance WHERE id = 1").fetchone()
    try:
        return Balance(total=int(row[0]), count=int(row[1]))
    except (TypeError, ValueError):
        raise StoreRefused(f"{path} has no valid balance row ({row!r}); restore it from a backup") from None


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
