"""Exactness judged per id, not against a baseline the ledger itself gave: every id a test sent is applied
exactly once with its sum, and the ledger's total and count are exactly those of all its entries. A
count read before the test can lag (events of an earlier test still unapplied), so `before + sent` can
hide as many losses as it lagged; the ids cannot."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping

from distsum.clients.ledger import Entry, LedgerClient, Total


def audit_applied(ledger: LedgerClient, sent: Mapping[str, int], timeout: float = 300) -> Total:
    """Wait until every id of `sent` (request id -> its sum) is applied and the total is that of all the
    entries read; then check each sent id was applied once with its sum. Returns the total read."""
    entries: list[Entry] = []
    deadline = time.monotonic() + timeout
    while True:
        after = int(entries[-1]["cursor"]) if entries else 0
        entries += ledger.entries(after=after)
        total = ledger.total()
        seen = {entry["request_id"] for entry in entries}
        if total["count"] == len(entries) and seen >= sent.keys():
            break
        if time.monotonic() > deadline:
            missing = len(sent.keys() - seen)
            raise AssertionError(
                f"after {timeout:.0f}s: {missing} of {len(sent)} ids not applied; the total counts "
                f"{total['count']}, its entries number {len(entries)}"
            )
        time.sleep(0.5)
    applied = Counter(entry["request_id"] for entry in entries)
    doubled = {request_id: n for request_id, n in applied.items() if n > 1}
    assert not doubled, f"ids applied more than once: {doubled}"
    wrong = {
        e["request_id"]: e["sum"]
        for e in entries
        if e["request_id"] in sent and int(e["sum"]) != sent[e["request_id"]]
    }
    assert not wrong, f"ids applied with a wrong sum: {wrong}"
    assert int(total["total"]) == sum(int(entry["sum"]) for entry in entries), (
        "the total is not its entries' sum"
    )
    return total
