"""The ledger's apply rate against the raw consume floor, both over the same pre-filled topic.

The topic is filled first (confluent-kafka, the project's event codec), so neither reader waits for a
producer. Both rates leave out start-up: each is (events read - events at the first sight of progress)
/ (time of the last event - time of that first sight), so group join and partition assignment count
for neither.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from distsum.clients.ledger import LedgerClient, LedgerUnavailable
from distsum.domain import SumComputed
from distsum.event_codec import encode
from distsum.kafka import clients as kafka_clients


class RateTimeout(RuntimeError):
    pass


def fill_topic(bootstrap: str, topic: str, events: int, security: Mapping[str, Any] | None = None) -> int:
    """Produce `events` SumComputed records (a = i, b = 1), as the sum service would; return the sum of
    their sums, which the ledger's total must then equal."""
    producer = kafka_clients.producer(bootstrap, settings={"linger.ms": 20}, security=security)
    total = 0
    for i in range(events):
        request_id = str(uuid.uuid4())
        event = SumComputed(request_id, i, 1, i + 1, datetime.now(UTC))
        while True:
            try:
                producer.produce(topic, key=request_id.encode(), value=encode(event))
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                producer.poll(0.1)
        producer.poll(0)
        total += event.sum
    if producer.flush(60) != 0:
        raise RuntimeError(f"{topic}: events still unacknowledged after 60 s")
    return total


def rate(start_count: int, start: float, end_count: int, end: float) -> float:
    """Events per second between two observations of a growing count."""
    if end <= start or end_count <= start_count:
        raise ValueError(f"no progress to time ({start_count}@{start} -> {end_count}@{end})")
    return (end_count - start_count) / (end - start)


def raw_consume_eps(
    bootstrap: str,
    topic: str,
    events: int,
    timeout: float = 300,
    security: Mapping[str, Any] | None = None,
) -> float:
    """A bare consumer loop (no decoding, no store): the floor of what any reader of the topic costs."""
    consumer = kafka_clients.consumer(
        bootstrap,
        security=security,
        settings={
            "group.id": f"bench-raw-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            # The ledger reads committed records only; the floor reads the same way.
            "isolation.level": "read_committed",
        },
    )
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + timeout
        seen, first = 0, None
        while seen < events:
            if time.monotonic() > deadline:
                raise RateTimeout(f"raw consumer read {seen} of {events} events in {timeout:.0f} s")
            batch = consumer.consume(1000, 1.0)
            seen += sum(1 for m in batch if m.error() is None)
            if first is None and seen:
                first = (seen, time.monotonic())
        assert first is not None
        return rate(first[0], first[1], seen, time.monotonic())
    finally:
        consumer.close()


def count_once_up(ledger: LedgerClient) -> int:
    """The count, or 0 while the REST API is not up yet (or up before the consumer has created the
    store): for timing a ledger from its start. Any other answer ends the bench."""
    try:
        return ledger.count()
    except (OSError, ValueError, LedgerUnavailable):
        return 0


def apply_eps(count: Callable[[], int], events: int, timeout: float = 600, interval: float = 0.02) -> float:
    """Poll an applied-events counter (the ledger's /v1/total count) until it reaches `events`."""
    deadline = time.monotonic() + timeout
    first: tuple[int, float] | None = None
    while (seen := count()) < events:
        now = time.monotonic()
        if now > deadline:
            raise RateTimeout(f"the ledger applied {seen} of {events} events in {timeout:.0f} s")
        if first is None and seen:
            first = (seen, now)
        time.sleep(interval)
    end = time.monotonic()
    # A ledger that applied everything between two polls gives no interval to time.
    if first is None:
        raise RateTimeout(
            f"all {events} events were applied within one {interval} s poll: raise BENCH_EVENTS"
        )
    return rate(first[0], first[1], seen, end)
