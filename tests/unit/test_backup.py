"""Backups without Kafka (ledger_svc/backup): what a backup holds, pruning, and the refusals a restore
makes before it asks Kafka anything. Against a real broker: tests/integration/test_backup.py."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from ledger_svc.backup.restore import RestoreRefused, restore
from ledger_svc.backup.snapshot import BackupFailed, list_backups, prune, read, take
from ledger_svc.domain.incarnation import Checkpoint, Incarnation, IncarnationState
from ledger_svc.ops.backup_metrics import NewestBackupCollector
from ledger_svc.store.schema import STORE_FILE
from ledger_svc.store.writer import LedgerWriter

LOG = Incarnation("cluster-a", "topic-1")
TAKEN = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


class KafkaHolding:
    """An inspector for a log of LOG whose partitions hold (start, end) offsets."""

    def __init__(self, offsets: Mapping[int, tuple[int, int]]) -> None:
        self._offsets = offsets

    def inspect(self, partitions: Iterable[int], keys_at: Mapping[int, int]) -> IncarnationState:
        return IncarnationState.listed(LOG, {p: self._offsets[p] for p in partitions})


@pytest.fixture
def store_with_offsets(writer: LedgerWriter) -> LedgerWriter:
    writer.save_checkpoints("sums", {0: Checkpoint(5, LOG), 1: Checkpoint(3, LOG)})
    return writer


def test_a_backup_holds_the_store_and_the_kafka_position_it_covers(
    store_with_offsets: LedgerWriter, data_dir: Path, tmp_path: Path
) -> None:
    backup = take(data_dir, tmp_path / "backups", now=TAKEN)

    assert backup.path.name == "ledger-20261207T120000.000000Z.db"
    assert (backup.taken_at, backup.schema_version) == (TAKEN, "3")
    assert backup.checkpoints == {"sums": {0: Checkpoint(5, LOG), 1: Checkpoint(3, LOG)}}
    assert read(backup.path) == backup
    assert not list((tmp_path / "backups").glob(".*")), "a temporary file was left behind"


def test_no_store_no_backup(data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(BackupFailed, match="no ledger store"):
        take(data_dir, tmp_path / "backups")
    assert list_backups(tmp_path / "backups") == []


def test_prune_keeps_the_newest(writer: LedgerWriter, data_dir: Path, tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    taken = [take(data_dir, backups, now=TAKEN + timedelta(hours=h)).path for h in range(4)]

    assert prune(backups, keep=2) == taken[:2]
    assert list_backups(backups) == taken[2:]


def test_a_restore_refuses_a_backup_of_another_topic(
    store_with_offsets: LedgerWriter, data_dir: Path, tmp_path: Path
) -> None:
    backup = take(data_dir, tmp_path / "backups")
    with pytest.raises(RestoreRefused, match="a ledger of topic sums, not 'other'"):
        restore(backup.path, tmp_path / "volume", "other", KafkaHolding({}))
    assert not (tmp_path / "volume" / STORE_FILE).exists()


def test_a_restore_refuses_a_schema_it_cannot_open(
    store_with_offsets: LedgerWriter, data_dir: Path, tmp_path: Path
) -> None:
    backup = take(data_dir, tmp_path / "backups")
    with sqlite3.connect(backup.path) as connection:
        connection.execute("UPDATE meta SET value = '9' WHERE key = 'schema_version'")

    with pytest.raises(RestoreRefused, match="schema version 9"):
        restore(backup.path, tmp_path / "volume", "sums", KafkaHolding({0: (0, 5), 1: (0, 3)}))
    assert not (tmp_path / "volume" / STORE_FILE).exists()


def test_a_restored_store_opens_as_the_ledger_opens_it(
    store_with_offsets: LedgerWriter, data_dir: Path, tmp_path: Path
) -> None:
    backup = take(data_dir, tmp_path / "backups")

    restored = restore(backup.path, tmp_path / "volume", "sums", KafkaHolding({0: (0, 9), 1: (2, 3)}))

    assert restored.behind == {0: 4, 1: 0}
    assert sorted(p.name for p in (tmp_path / "volume").iterdir()) == [STORE_FILE]
    reopened = LedgerWriter.open_or_create(tmp_path / "volume")
    assert reopened.checkpoints("sums") == backup.checkpoints["sums"]
    reopened.close()


def test_the_metrics_report_the_newest_backup_or_else_the_ledger_start(
    writer: LedgerWriter, data_dir: Path, tmp_path: Path
) -> None:
    backups = tmp_path / "backups"
    registry = CollectorRegistry()
    registry.register(NewestBackupCollector(backups, started=1000.0))
    assert registry.get_sample_value("ledger_backup_newest_timestamp_seconds") == 1000.0
    assert registry.get_sample_value("ledger_backups") == 0

    for hours in (2, 1):
        take(data_dir, backups, now=TAKEN + timedelta(hours=hours))
    (backups / "ledger-notes.db").write_text("not a backup of ours")

    newest = (TAKEN + timedelta(hours=2)).timestamp()
    assert registry.get_sample_value("ledger_backup_newest_timestamp_seconds") == newest
    assert registry.get_sample_value("ledger_backups") == 2
