"""SQLite adapter, read side: what the web workers serve, from read-only connections."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger_svc.domain.ledger import Balance
from ledger_svc.store.schema import STORE_FILE, connect


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    request_id: str
    a: int
    b: int
    sum: int
    produced_at: str
    applied_at: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    balance: Balance
    updated_at: str
    dead_letters: int


class LedgerReader:
    """Read-only view for the web workers; one short-lived connection per call."""

    def __init__(self, data_dir: Path):
        self.path = data_dir / STORE_FILE

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        connection = connect(self.path, read_only=True)
        try:
            return connection.execute(sql, params).fetchall()
        finally:
            connection.close()

    def snapshot(self) -> Snapshot:
        connection = connect(self.path, read_only=True)
        try:
            connection.execute("BEGIN")
            total, count, updated_at = connection.execute(
                "SELECT total, count, updated_at FROM balance WHERE id = 1"
            ).fetchone()
            (dead_letters,) = connection.execute("SELECT count(*) FROM dead_letters").fetchone()
            connection.execute("COMMIT")
        finally:
            connection.close()
        return Snapshot(Balance(int(total), count), updated_at, dead_letters)

    def next_offsets(self, topic: str) -> dict[int, int]:
        """Per partition of `topic`, the offset of the next record the ledger will apply (all before it
        are applied or dead-lettered)."""
        rows = self._query("SELECT partition, next_offset FROM offsets WHERE topic = ?", (topic,))
        return {int(partition): int(offset) for partition, offset in rows}

    def entries(self, after: int, limit: int) -> list[Entry]:
        rows = self._query(
            "SELECT seq, request_id, a, b, sum, produced_at, applied_at FROM entries"
            " WHERE seq > ? ORDER BY seq LIMIT ?",
            (after, limit),
        )
        return [Entry(*row) for row in rows]
