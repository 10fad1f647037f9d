"""A bounded memory of recent request ids and their publication, confined to the event loop.

Each entry holds the operands and a future that completes when Kafka has
acknowledged (or finally refused) the event. Concurrent and later repeats wait on
that same future, so one request id is published once per replica while the
entry lives. Memory is bounded by max_entries and ttl; an evicted id that comes
back is published again, which the ledger absorbs because it deduplicates too.

Every method runs on the server's event loop, so no lock is needed: claims and
settlements never interleave inside a method.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


class RequestIdConflict(ValueError):
    """The request id was already used with other operands."""


@dataclass(slots=True)
class Entry:
    a: int
    b: int
    sum: int
    expires_at: float
    delivery: asyncio.Future[None]


@dataclass(frozen=True, slots=True)
class Claim:
    entry: Entry
    is_new: bool


class IdempotencyRecord:
    def __init__(self, max_entries: int, ttl_seconds: float, clock: Callable[[], float] = time.monotonic):
        if max_entries < 1 or ttl_seconds <= 0:
            raise ValueError("max_entries must be >= 1 and ttl_seconds > 0")
        self._max_entries = max_entries
        self._ttl = ttl_seconds
        self._clock = clock
        # Ordered by expiry: insertion for pending entries, re-queued at the end on success.
        self._entries: OrderedDict[str, Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def claim(self, request_id: str, a: int, b: int, total: int) -> Claim:
        """Return the live entry for request_id, creating it (is_new) when there is none."""
        now = self._clock()
        self._drop_expired(now)
        entry = self._entries.get(request_id)
        if entry is not None and _failed(entry.delivery):
            # Failed, and its settlement not run yet (it is scheduled on the loop): publish afresh.
            del self._entries[request_id]
            entry = None
        if entry is not None:
            if (entry.a, entry.b) != (a, b):
                # The first caller's operands are theirs: the message names the id, not them.
                raise RequestIdConflict(
                    f"request_id {request_id} was already used with other operands; "
                    "use a new request_id for a new Add"
                )
            return Claim(entry, is_new=False)
        delivery: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = Entry(a=a, b=b, sum=total, expires_at=now + self._ttl, delivery=delivery)
        self._entries[request_id] = entry
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        delivery.add_done_callback(lambda _: self._settle(request_id, entry))
        return Claim(entry, is_new=True)

    def forget_all(self) -> int:
        """Forget every id; how many there were. For when Kafka lost the log the ids were published to:
        a retry must then publish again rather than be answered from here."""
        forgotten = len(self._entries)
        self._entries.clear()
        return forgotten

    def _settle(self, request_id: str, entry: Entry) -> None:
        # Read the outcome first, also for a forgotten entry: a failure nobody waits for any more is
        # then not reported by asyncio as "Future exception was never retrieved".
        failed = _failed(entry.delivery)
        if self._entries.get(request_id) is not entry:
            return
        if failed:
            # Forget a failed publication so the client's retry publishes afresh.
            del self._entries[request_id]
        else:
            entry.expires_at = self._clock() + self._ttl
            self._entries.move_to_end(request_id)

    def _drop_expired(self, now: float) -> None:
        while self._entries:
            request_id, oldest = next(iter(self._entries.items()))
            if oldest.expires_at > now:
                return
            del self._entries[request_id]


def _failed(delivery: asyncio.Future[None]) -> bool:
    return delivery.done() and (delivery.cancelled() or delivery.exception() is not None)
