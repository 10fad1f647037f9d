"""SIGKILL the ledger at random points of a 20k-event stream: the total stays exact."""

from __future__ import annotations

import os
import random
import signal
import uuid
from datetime import UTC, datetime
from functools import partial

from distsum import event_codec
from distsum.clients.waiting import wait_until
from distsum.domain import SumComputed
from ledger_svc import consumer_status
from localstack.stack import Ledger
from tests.conftest import Topic
from tests.integration.conftest import LedgerFactory, producer

EVENTS = 20_000
KILLS = 6
AHEAD = 1000  # events published beyond a kill point before the kill


def produce(topic: Topic, events: list[SumComputed], start: int, resend_every: int) -> None:
    """events[start:] and wait for their acknowledgement; every resend_every-th event (by its index in the
    stream) is published twice, as a retry that reached another replica would be."""
    kafka = producer(topic.bootstrap)
    for index, event in enumerate(events[start:], start):
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


def count_reached(ledger: Ledger, count: int) -> int | None:
    reached = ledger.count()
    return reached if reached >= count else None


def test_sigkill_at_random_points_keeps_the_total_exact(topic: Topic, start_ledger: LedgerFactory) -> None:
    rng = random.Random()
    seed = rng.randrange(2**32)
    rng.seed(seed)
    events = [
        SumComputed(str(uuid.UUID(int=rng.getrandbits(128), version=4)), a, b, a + b, datetime.now(UTC))
        for a, b in ((rng.randint(-(2**40), 2**40), rng.randint(-(2**40), 2**40)) for _ in range(EVENTS))
    ]
    ledger = start_ledger(topic, LEDGER_BATCH_MAX_MESSAGES="200")

    # The stream is published a little ahead of each kill point and no further, so every kill comes with
    # events still to be applied, and the rest of the stream still to be published, whatever the pace.
    kill_points = sorted(rng.sample(range(100, EVENTS - AHEAD), KILLS))
    published = 0
    for number, point in enumerate(kill_points):
        produce(topic, events[: point + AHEAD], published, 20)
        published = point + AHEAD
        reached = wait_until(
            partial(count_reached, ledger, point), 120, f"count to reach {point} (seed {seed})", 0.01
        )
        crash(ledger, kill_consumer_only=number % 2 == 1)
        assert reached < EVENTS, f"kill {number + 1} came after the last event was applied (seed {seed})"
        ledger.restart()
    produce(topic, events, published, 20)

    body = ledger.client.wait_count(EVENTS, timeout=120)
    assert body["total"] == str(sum(e.sum for e in events)), f"seed {seed}"
    entries = list(ledger.client.entries())
    assert sorted(e["request_id"] for e in entries) == sorted(e.request_id for e in events)
    ledger.wait_total_file(body["total"])
