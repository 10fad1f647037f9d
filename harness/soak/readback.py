"""The ledger's applied entries read incrementally through its REST API, and the wait until it has
consumed the whole log, for the checker."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import TopicPartition

from distsum.clients.ledger import Entry, LedgerClient
from distsum.kafka import clients as kafka_clients


class EntryReader:
    """Reads the applied entries incrementally: each `read_new` continues from the last cursor."""

    def __init__(self, ledger: LedgerClient, after: int = 0) -> None:
        self.ledger, self.cursor = ledger, after
        self.entries: list[Entry] = []
        self.ids: set[str] = set()

    def read_new(self) -> int:
        new = 0
        for entry in self.ledger.entries(self.cursor):
            self.entries.append(entry)
            self.ids.add(entry["request_id"])
            self.cursor = int(entry["cursor"])
            new += 1
        return new

    def wait_for(self, wanted: Callable[[], set[str]], timeout: float) -> None:
        """Read until every id of `wanted()` has an entry (the ledger caught up), or raise after timeout."""
        deadline = time.monotonic() + timeout
        while True:
            # The ledger may be restarting (its client's `alive` raises if it is gone for good); the
            # deadline bounds the wait.
            with contextlib.suppress(OSError, RuntimeError, ValueError):
                self.read_new()
            missing = wanted() - self.ids
            if not missing:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(missing)} acknowledged ids still unapplied after {timeout:.0f} s")
            time.sleep(0.5)


def log_end_offsets(
    bootstrap: str, topic: str, timeout: float = 10.0, *, security: Mapping[str, Any] | None = None
) -> dict[int, int]:
    """The end offset (high watermark) of every partition of `topic`."""
    consumer = kafka_clients.consumer(
        bootstrap, settings={"group.id": "soak-log-end-offsets"}, security=security
    )
    try:
        partitions = consumer.list_topics(topic, timeout=timeout).topics[topic].partitions
        return {
            p: int(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)[1])
            for p in partitions
        }
    finally:
        consumer.close()


def wait_consumed(
    applied: Callable[[], dict[int, int]], end_offsets: Callable[[], dict[int, int]], timeout: float
) -> dict[int, int]:
    """Wait until `applied` (the ledger's next offset per partition) has reached every partition's log end
    offset, and the end offsets read again afterwards have not moved (a producer may still deliver a
    retried event); return them. Raise RuntimeError naming the partitions behind after `timeout`."""
    deadline = time.monotonic() + timeout
    ends = end_offsets()
    while True:
        behind: dict[int, tuple[int, int]] = {}
        try:
            done = applied()
            behind = {p: (done.get(p, 0), end) for p, end in ends.items() if done.get(p, 0) < end}
        except (OSError, sqlite3.Error) as exc:  # the ledger may be restarting
            behind = {-1: (0, 0)}
            if time.monotonic() > deadline:
                raise RuntimeError(f"the ledger's store cannot be read: {exc}") from exc
        if not behind:
            latest = end_offsets()
            if latest == ends:
                return ends
            ends = latest
            continue
        if time.monotonic() > deadline:
            raise RuntimeError(f"the ledger did not consume its log to the end: {behind} (applied, end)")
        time.sleep(0.2)
