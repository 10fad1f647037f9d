"""The store's SQLite file: its tables, how a new one is created and opened, and how a file written by
an earlier version is brought up to date."""

from __future__ import annotations

import os
import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path

from ledger_svc.store.durable_files import fsync_path

STORE_FILE = "ledger.db"
SCHEMA_VERSION = "3"
PARTIAL_STORE = STORE_FILE + ".creating"

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
    cluster_id TEXT,
    topic_id TEXT,
    last_key BLOB,
    PRIMARY KEY (topic, partition)
);
CREATE TABLE dead_letters (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    kafka_offset INTEGER NOT NULL,
    -- "<cluster id>/<topic id>" of the log the record was read from ('' where unknown): an offset names a
    -- record only within one log.
    log TEXT NOT NULL,
    reason TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (topic, partition, kafka_offset, log)
);
"""

# The log a partition's checkpoint belongs to, as dead_letters.log spells it.
CHECKPOINT_LOG = (
    "COALESCE((SELECT o.cluster_id || '/' || o.topic_id FROM offsets o"
    " WHERE o.topic = {topic} AND o.partition = {partition}), '')"
)

# Version 1 kept offsets without the log they belong to. Version 2 adds the log's ids, unknown for an old
# store, and the key of the record before the next offset, which the applied entries still tell wherever
# that record was applied. Version 3 keys dead letters by their log too, so a poison record at an offset
# of a log that started again is counted; a version 2 row is taken to be from its partition's current log.
_MIGRATIONS = {
    "1": [
        "ALTER TABLE offsets ADD COLUMN cluster_id TEXT",
        "ALTER TABLE offsets ADD COLUMN topic_id TEXT",
        "ALTER TABLE offsets ADD COLUMN last_key BLOB",
        """UPDATE offsets SET last_key = (
            SELECT CAST(request_id AS BLOB) FROM entries
            WHERE entries.topic = offsets.topic AND entries.partition = offsets.partition
                AND entries.kafka_offset = offsets.next_offset - 1
            ORDER BY seq DESC LIMIT 1
        )""",
        "UPDATE meta SET value = '2' WHERE key = 'schema_version'",
    ],
    "2": [
        "ALTER TABLE dead_letters RENAME TO dead_letters_2",
        _SCHEMA[_SCHEMA.index("CREATE TABLE dead_letters") :],
        "INSERT INTO dead_letters SELECT d.topic, d.partition, d.kafka_offset, "
        + CHECKPOINT_LOG.format(topic="d.topic", partition="d.partition")
        + ", d.reason, d.recorded_at FROM dead_letters_2 d",
        "DROP TABLE dead_letters_2",
        "UPDATE meta SET value = '3' WHERE key = 'schema_version'",
    ],
}

# The schema versions this version can open: its own, and every one it migrates from.
READABLE_VERSIONS = (*_MIGRATIONS, SCHEMA_VERSION)


def now() -> str:
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


def create(path: Path) -> None:
    """Create an empty store at path. Built under a temporary name and renamed, so a crash mid-creation
    leaves no half store."""
    partial = path.with_name(PARTIAL_STORE)
    for leftover in path.parent.glob(partial.name + "*"):
        leftover.unlink()
    connection = sqlite3.connect(partial, isolation_level=None)
    try:
        created = now()
        connection.executescript(_SCHEMA)
        connection.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?)",
            [("schema_version", SCHEMA_VERSION), ("store_id", str(uuid.uuid4())), ("created_at", created)],
        )
        connection.execute("INSERT INTO balance VALUES (1, '0', 0, ?)", (created,))
        # Switched last: the mode is recorded in the file and no -wal file is left to rename.
        connection.execute("PRAGMA journal_mode = WAL")
    finally:
        connection.close()
    fsync_path(partial)
    partial.rename(path)
    fsync_path(path.parent)


def migration_from(connection: sqlite3.Connection) -> list[str]:
    """The statements that bring this store to SCHEMA_VERSION (none for a current or unknown version,
    which the writer's verification then refuses)."""
    row = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return _MIGRATIONS.get(row[0], []) if row else []
