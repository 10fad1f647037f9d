"""The publisher's delivery-report thread outlives an unexpected error, and replaces a producer that met
a fatal one (a real librdkafka producer, pointed at a port where no broker listens, so every event fails
by message.timeout.ms)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer

from distsum.domain import SumComputed
from sum_svc import kafka_publisher, metrics
from sum_svc.kafka_publisher import KafkaDeliveryError, KafkaPublisher

NOWHERE = "127.0.0.1:1"
DELIVERY_TIMEOUT = 0.5
WAIT = 10.0


def new_publisher() -> KafkaPublisher:
    """A publisher on the running loop, aimed where no broker listens."""
    return KafkaPublisher(
        NOWHERE,
        "sums",
        DELIVERY_TIMEOUT,
        linger_ms=5,
        client_id="test",
        loop=asyncio.get_running_loop(),
        on_log_lost=lambda: None,
    )


class PollFailsOnce(Producer):
    """poll() raises once, as it does when a callback raised inside it."""

    failed = False

    def poll(self, *args: Any, **kwargs: Any) -> int:
        if not PollFailsOnce.failed:
            PollFailsOnce.failed = True
            raise KafkaException(KafkaError(KafkaError._FAIL, "injected"))
        return int(super().poll(*args, **kwargs))


async def test_delivery_reports_are_still_served_after_the_poller_met_an_error(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(kafka_publisher, "Producer", PollFailsOnce)
    errors_before = metrics.POLLER_ERRORS._value.get()
    publisher = new_publisher()
    try:
        delivery: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with caplog.at_level(logging.ERROR, logger=kafka_publisher.__name__):
            event = SumComputed("3f1c0e9a-7a51-4c1e-9a43-0b8f3c0d2e11", 1, 2, 3, datetime.now(UTC))
            publisher.publish(event, delivery)
            with pytest.raises(KafkaDeliveryError):
                await asyncio.wait_for(delivery, WAIT)
    finally:
        await asyncio.to_thread(publisher.close, 0)

    assert PollFailsOnce.failed
    assert metrics.POLLER_ERRORS._value.get() == errors_before + 1
    assert any("carrying on" in record.getMessage() and record.exc_info for record in caplog.records)


class PollFatalOnce(Producer):
    """poll() raises a fatal error once, as confluent-kafka does for a fatal idempotence error (it does not
    pass fatal errors to error_cb)."""

    raised = False

    def poll(self, *args: Any, **kwargs: Any) -> int:
        if not PollFatalOnce.raised:
            PollFatalOnce.raised = True
            raise KafkaException(KafkaError(KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER, "injected", fatal=True))
        return int(super().poll(*args, **kwargs))


async def test_a_fatal_error_raised_by_poll_replaces_the_producer(caplog: pytest.LogCaptureFixture) -> None:
    replacements = metrics.PRODUCER_REPLACEMENTS.labels(reason="fatal_error")._value
    replaced_before = replacements.get()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kafka_publisher, "Producer", PollFatalOnce)
        publisher = new_publisher()
        try:
            with caplog.at_level(logging.ERROR, logger=kafka_publisher.__name__):

                async def replaced() -> None:
                    while replacements.get() == replaced_before:
                        await asyncio.sleep(0.05)

                await asyncio.wait_for(replaced(), WAIT)
        finally:
            await asyncio.to_thread(publisher.close, 0)

    assert any(record.getMessage() == "replacing the kafka producer" for record in caplog.records)
    assert not any("carrying on" in record.getMessage() for record in caplog.records)
