"""SIGKILL the ledger at random points of a 20k-event stream: the total stays exact."""

from __future__ import annotations

import os
import random
import signal
import threading
import uuid
from datetime import UTC, datetime
from functools import partial

from distsum import event_codec
from distsum.clients.ledger import http_json
from distsum.clients.waiting import wait_until
from distsum.domain import SumComputed
from ledger_svc import consumer_status
from localstack.stack import Ledger
from tests.conftest import Topic
from tests.integration.conftest import LedgerFactory, producer

EVENTS = 20_000
KILLS = 6


def produce_stream(topic: Topic, events: list[SumComputed], resend_every: int) -> None:
    """Every resend_every-th event is published twice, as a retry that reached another replica would be."""
    kafka = producer(topic.bootstrap)
    for index, event in enumerate(events):
        payload = event_codec.encode(event)
        for _ in range(2 if index % resend_every == 0 else 1):
            while True:
                try:
                    kafka.produce(topic.name, key=event.request_id.encode(), value=payload)
                    break
                except BufferError:
                    kafka.poll(0.1)
        kafka.poll(0)
    assert kafka.flush(60) == 0


def crash(ledger: Ledger, kill_consumer_only: bool) -> None:
    if kill_consumer_only:
        # Only the consumer dies; the supervisor must notice and take the web server down with it.
        status = consumer_status.read(ledger.settings.status_file)
        assert status is not None
        os.kill(status.pid, signal.SIGKILL)
        ledger.process.wait(30)
    else:
        ledger.process.kill()


def count_reached(ledger: Ledger, count: int) -> bool:
    reached = ledger.total()["count"]
    assert isinstance(reached, int)
    return reached >= count


def all_entries(ledger: Ledger) -> list[dict[str, str]]:
    entries: list[dict[str, str]] = []
    cursor = "0"
    while True:
        status, page = http_json(f"{ledger.url}/v1/entries?after={cursor}&limit=1000")
        assert status == 200, page
        entries.extend(page["entries"])
        if not page["has_more"]:
            return entries
        cursor = page["next_cursor"]


def test_sigkill_at_random_points_keeps_the_total_exact(topic: Topic, start_ledger: LedgerFactory) -> None:
    rng = random.Random()
    seed = rng.randrange(2**32)
    rng.seed(seed)
    events = [
        SumComputed(str(uuid.UUID(int=rng.getrandbits(128), version=4)), a, b, a + b, datetime.now(UTC))
        for a, b in ((rng.randint(-(2**40), 2**40), rng.randint(-(2**40), 2**40)) for _ in range(EVENTS))
    ]
    ledger = start_ledger(topic, LEDGER_BATCH_MAX_MESSAGES="200")
    stream = threading.Thread(target=produce_stream, args=(topic, events, 20))
    stream.start()

    kill_points = sorted(rng.sample(range(100, EVENTS - 100), KILLS))
    for number, point in enumerate(kill_points):
        wait_until(partial(count_reached, ledger, point), 120, f"count to reach {point} (seed {seed})", 0.01)
        crash(ledger, kill_consumer_only=number % 2 == 1)
        ledger.restart()
    stream.join(120)

    body = ledger.client.wait_count(EVENTS, timeout=120)
    assert body["total"] == str(sum(e.sum for e in events)), f"seed {seed}"
    entries = all_entries(ledger)
    assert sorted(e["request_id"] for e in entries) == sorted(e.request_id for e in events)
    ledger.wait_total_file(body["total"])
