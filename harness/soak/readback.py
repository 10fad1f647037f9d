"""The ledger's applied entries read incrementally through its REST API, for the checker."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from distsum.clients.ledger import Entry, LedgerClient


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
