"""The store's partition checkpoints: which log they belong to, and stores written before that was kept."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ledger_svc.domain.incarnation import Checkpoint, Incarnation
from ledger_svc.domain.ledger import PoisonRecord
from ledger_svc.store.reader import LedgerReader
from ledger_svc.store.schema import STORE_FILE
from ledger_svc.store.writer import LedgerWriter
from tests.unit.test_store import TOPIC, delivery, request_id

LOG = Incarnation("cluster-a", "topic-1")


def test_a_batch_advances_the_checkpoint_and_keeps_its_log(writer: LedgerWriter) -> None:
    writer.save_checkpoints(TOPIC, {0: Checkpoint(0, LOG), 1: Checkpoint(4, LOG, b"x")})
    writer.commit_batch([delivery(1, 2, 3, offset=0)], [], {(TOPIC, 0): (1, request_id(1).encode())})
    assert writer.checkpoints(TOPIC) == {
        0: Checkpoint(1, LOG, request_id(1).encode()),
        1: Checkpoint(4, LOG, b"x"),
    }


def test_a_log_starting_again_replaces_the_checkpoint_whole(writer: LedgerWriter) -> None:
    writer.commit_batch([], [], {(TOPIC, 0): (55, b"k")})
    new_log = Incarnation("cluster-b", "topic-9")
    writer.save_checkpoints(TOPIC, {0: Checkpoint(0, new_log)})
    assert writer.checkpoints(TOPIC) == {0: Checkpoint(0, new_log, None)}


def test_a_partition_first_seen_in_a_batch_has_no_log_yet(writer: LedgerWriter) -> None:
    writer.commit_batch([], [], {(TOPIC, 3): (8, b"")})
    assert writer.checkpoints(TOPIC) == {3: Checkpoint(8, None, b"")}


def _as_version_2(data_dir: Path) -> None:
    """Turn a store into what version 2 wrote: dead letters keyed without their log."""
    connection = sqlite3.connect(data_dir / STORE_FILE)
    try:
        connection.executescript(
            """
            CREATE TABLE dead_letters_3 AS SELECT * FROM dead_letters;
            DROP TABLE dead_letters;
            CREATE TABLE dead_letters (
                topic TEXT NOT NULL, partition INTEGER NOT NULL, kafka_offset INTEGER NOT NULL,
                reason TEXT NOT NULL, recorded_at TEXT NOT NULL, PRIMARY KEY (topic, partition, kafka_offset)
            );
            INSERT INTO dead_letters SELECT topic, partition, kafka_offset, reason, recorded_at
                FROM dead_letters_3;
            DROP TABLE dead_letters_3;
            UPDATE meta SET value = '2' WHERE key = 'schema_version';
            """
        )
    finally:
        connection.close()


def _as_version_1(data_dir: Path) -> None:
    """Turn a store into what version 1 wrote: offsets without log ids or keys."""
    _as_version_2(data_dir)
    connection = sqlite3.connect(data_dir / STORE_FILE)
    try:
        for column in ("cluster_id", "topic_id", "last_key"):
            connection.execute(f"ALTER TABLE offsets DROP COLUMN {column}")
        connection.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
        connection.commit()
    finally:
        connection.close()


def _schema_version(data_dir: Path) -> str:
    connection = sqlite3.connect(data_dir / STORE_FILE)
    try:
        return str(connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])
    finally:
        connection.close()


def _dead_letter_logs(data_dir: Path) -> list[tuple[int, int, str]]:
    connection = sqlite3.connect(data_dir / STORE_FILE)
    try:
        return connection.execute(
            "SELECT partition, kafka_offset, log FROM dead_letters ORDER BY partition, kafka_offset, log"
        ).fetchall()
    finally:
        connection.close()


def test_a_poison_record_is_counted_once_per_log(writer: LedgerWriter, data_dir: Path) -> None:
    poison = [PoisonRecord(TOPIC, 0, 3, "empty value")]
    writer.save_checkpoints(TOPIC, {0: Checkpoint(0, LOG)})
    writer.commit_batch([], poison, {(TOPIC, 0): (4, b"k")})
    writer.commit_batch([], poison, {(TOPIC, 0): (4, b"k")})  # the same record, redelivered
    new_log = Incarnation("cluster-b", "topic-9")
    writer.save_checkpoints(TOPIC, {0: Checkpoint(0, new_log)})  # the log started again
    writer.commit_batch([], poison, {(TOPIC, 0): (4, b"k")})  # another record at the same offset
    assert LedgerReader(data_dir).snapshot().dead_letters == 2
    assert _dead_letter_logs(data_dir) == [(0, 3, "cluster-a/topic-1"), (0, 3, "cluster-b/topic-9")]


def test_a_version_2_store_keys_its_dead_letters_by_the_current_log(
    writer: LedgerWriter, data_dir: Path
) -> None:
    writer.save_checkpoints(TOPIC, {0: Checkpoint(0, LOG)})
    poison = [PoisonRecord(TOPIC, 0, 3, "empty value"), PoisonRecord(TOPIC, 7, 1, "empty value")]
    writer.commit_batch([], poison, {(TOPIC, 0): (4, b"k")})
    writer.close()
    _as_version_2(data_dir)
    assert _schema_version(data_dir) == "2"

    migrated = LedgerWriter.open_or_create(data_dir)
    try:
        assert _dead_letter_logs(data_dir) == [(0, 3, "cluster-a/topic-1"), (7, 1, "")]
        migrated.commit_batch([], poison[:1], {(TOPIC, 0): (4, b"k")})  # redelivered: not counted again
        assert LedgerReader(data_dir).snapshot().dead_letters == 2
    finally:
        migrated.close()
    assert _schema_version(data_dir) == "3"


def test_a_version_1_store_is_migrated_with_the_keys_its_entries_tell(
    writer: LedgerWriter, data_dir: Path
) -> None:
    writer.commit_batch(
        [delivery(1, 2, 3, offset=4, partition=0), delivery(2, 5, 5, offset=9, partition=1)],
        [],
        # Partition 1 read on past its last applied record (a duplicate at offset 10, say).
        {(TOPIC, 0): (5, b"ignored"), (TOPIC, 1): (11, b"ignored")},
    )
    writer.close()
    _as_version_1(data_dir)

    migrated = LedgerWriter.open_or_create(data_dir)
    try:
        assert migrated.checkpoints(TOPIC) == {
            0: Checkpoint(5, None, request_id(1).encode()),
            1: Checkpoint(11, None, None),
        }
        assert migrated.balance().count == 2
    finally:
        migrated.close()
    assert _schema_version(data_dir) == "3"
