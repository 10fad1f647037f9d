"""The e2e tests' per-id audit (tests/e2e/ledger_audit.py) against the real ledger REST app over a real
store, served over HTTP: it catches what the old `before + sent` comparison passed, a baseline read while
the ledger lagged hiding as many losses of the run."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from distsum.clients.ledger import LedgerClient
from distsum.domain import SumComputed
from ledger_svc.config import LedgerSettings
from ledger_svc.domain.ledger import Delivery
from ledger_svc.store.writer import LedgerWriter
from ledger_svc.web.app import create_app
from tests.e2e.ledger_audit import audit_applied

PRODUCED_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def request_id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012x}"


class Ledger:
    """A real store written offset by offset, and its REST API on a local port."""

    def __init__(self, root: Path) -> None:
        self.config = LedgerSettings(data_dir=root / "data", run_dir=root / "run", ready_stale_seconds=15)
        self.config.data_dir.mkdir()
        self.config.run_dir.mkdir()
        self.offset = 0

    def apply(self, *ids: int) -> None:
        writer = LedgerWriter.open_or_create(self.config.data_dir)
        try:
            deliveries = [
                Delivery(SumComputed(request_id(n), n, 1, n + 1, PRODUCED_AT), "sums", 0, self.offset + i)
                for i, n in enumerate(ids)
            ]
            self.offset += len(ids)
            writer.commit_batch(deliveries, [], {("sums", 0): (self.offset, b"k")})
        finally:
            writer.close()


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[tuple[Ledger, LedgerClient]]:
    store = Ledger(tmp_path)
    store.apply(0)  # a store exists before the API is asked
    server = make_server("127.0.0.1", 0, create_app(store.config), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield store, LedgerClient(f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        thread.join()


def test_a_lagging_baseline_no_longer_hides_lost_ids(ledger: tuple[Ledger, LedgerClient]) -> None:
    store, client = ledger
    before = client.total()  # read while two events of an earlier test were still unapplied
    store.apply(1, 2)
    sent = {request_id(n): n + 1 for n in range(10, 15)}
    store.apply(10, 11, 12)  # two of the run's five ids lost
    # What the e2e tests compared: it passes.
    assert client.total()["count"] == before["count"] + len(sent)
    with pytest.raises(AssertionError, match="2 of 5 ids not applied"):
        audit_applied(client, sent, timeout=1)
    store.apply(13, 14)
    total = audit_applied(client, sent, timeout=5)
    assert (total["count"], int(total["total"])) == (8, sum(n + 1 for n in (0, 1, 2, 10, 11, 12, 13, 14)))


def test_a_wrong_sum_fails_the_audit(ledger: tuple[Ledger, LedgerClient]) -> None:
    store, client = ledger
    store.apply(20)
    with pytest.raises(AssertionError, match="wrong sum"):
        audit_applied(client, {request_id(20): 22}, timeout=5)
