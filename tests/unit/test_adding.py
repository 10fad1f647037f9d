"""The Add use case on an event loop, with a fake publisher whose acknowledgements the tests control."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from distsum.domain import INT64_MAX, Int64Overflow, InvalidRequestId, SumComputed
from sum_svc.adding import Adder, AddResult, KafkaUnavailable
from sum_svc.idempotency import IdempotencyRecord, RequestIdConflict

REQUEST_ID = "3f1c0e9a-7a51-4c1e-9a43-0b8f3c0d2e11"
NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
WAIT = 10.0  # generous deadline for anything the test expects to happen


def assert_detail_only_in_the_cause(error: KafkaUnavailable, detail: str) -> None:
    """Kafka's own error text is for the log (the cause), never for the caller (the message)."""
    assert detail in str(error.__cause__)
    assert detail not in str(error)


class FakePublisher:
    """Records events and their deliveries; a test completes them (or presets the outcome)."""

    def __init__(self) -> None:
        self.events: list[SumComputed] = []
        self.deliveries: list[asyncio.Future[None]] = []
        self.fail_with: Exception | None = None
        self.acknowledge_at_once = False

    def publish(self, event: SumComputed, delivery: asyncio.Future[None]) -> None:
        self.events.append(event)
        self.deliveries.append(delivery)
        if self.fail_with is not None:
            delivery.set_exception(self.fail_with)
        elif self.acknowledge_at_once:
            delivery.set_result(None)


class Reachability:
    def __init__(self) -> None:
        self.reachable = True

    def __call__(self) -> bool:
        return self.reachable


@pytest.fixture
def publisher() -> FakePublisher:
    return FakePublisher()


@pytest.fixture
def record() -> IdempotencyRecord:
    return IdempotencyRecord(max_entries=100, ttl_seconds=3600)


@pytest.fixture
def kafka() -> Reachability:
    return Reachability()


@pytest.fixture
def adder(record: IdempotencyRecord, publisher: FakePublisher, kafka: Reachability) -> Adder:
    return Adder(record, publisher, kafka_reachable=kafka, now=lambda: NOW)


async def until(condition: Callable[[], object], what: str) -> None:
    """Let the loop run until condition() holds, failing after WAIT seconds."""
    try:
        async with asyncio.timeout(WAIT):
            while not condition():
                await asyncio.sleep(0)
    except TimeoutError:
        pytest.fail(f"timed out waiting until {what}")


async def test_publishes_the_event_and_answers_once_kafka_acknowledged(
    adder: Adder, publisher: FakePublisher
) -> None:
    publisher.acknowledge_at_once = True
    result = await adder.add(REQUEST_ID, 2, 3, timeout=WAIT)
    assert result == AddResult(request_id=REQUEST_ID, sum=5, replayed=False)
    assert publisher.events == [SumComputed(REQUEST_ID, 2, 3, 5, NOW)]


async def test_sequential_duplicates_publish_once_and_are_replayed(
    adder: Adder, publisher: FakePublisher
) -> None:
    publisher.acknowledge_at_once = True
    results = [await adder.add(REQUEST_ID, 2, 3, timeout=WAIT) for _ in range(3)]
    assert [r.replayed for r in results] == [False, True, True]
    assert {r.sum for r in results} == {5}
    assert len(publisher.events) == 1


async def test_every_spelling_of_one_uuid_is_the_same_request(adder: Adder, publisher: FakePublisher) -> None:
    publisher.acknowledge_at_once = True
    spellings = [REQUEST_ID, REQUEST_ID.upper(), "{" + REQUEST_ID + "}", "urn:uuid:" + REQUEST_ID]
    results = [
        await adder.add(text, 2, 3, timeout=WAIT) for text in [*spellings, REQUEST_ID.replace("-", "")]
    ]
    assert {r.request_id for r in results} == {REQUEST_ID}
    assert [r.replayed for r in results] == [False, True, True, True, True]
    assert [e.request_id for e in publisher.events] == [REQUEST_ID]


async def test_concurrent_duplicate_waits_for_the_first_publication(
    adder: Adder, publisher: FakePublisher
) -> None:
    first = asyncio.create_task(adder.add(REQUEST_ID, 2, 3, WAIT))
    await until(lambda: publisher.deliveries, "the first caller publishes")
    second = asyncio.create_task(adder.add(REQUEST_ID, 2, 3, WAIT))
    for _ in range(10):  # both run up to their wait for Kafka
        await asyncio.sleep(0)
    # Neither may answer before Kafka acknowledges.
    assert not first.done()
    assert not second.done()
    publisher.deliveries[0].set_result(None)
    results = [await first, await second]
    assert [r.replayed for r in results] == [False, True]
    assert len(publisher.events) == 1


async def test_other_operands_for_a_used_id_are_a_conflict(adder: Adder, publisher: FakePublisher) -> None:
    publisher.acknowledge_at_once = True
    await adder.add(REQUEST_ID, 2, 3, timeout=WAIT)
    with pytest.raises(RequestIdConflict):
        await adder.add(REQUEST_ID, 2, 4, timeout=WAIT)
    assert len(publisher.events) == 1


async def test_timeout_reports_kafka_unavailable_and_a_retry_after_acknowledgement_is_replayed(
    adder: Adder, publisher: FakePublisher, record: IdempotencyRecord
) -> None:
    with pytest.raises(KafkaUnavailable, match="retry with the same request_id"):
        await adder.add(REQUEST_ID, 2, 3, timeout=0.01)
    assert len(record) == 1  # still pending: the event may yet be acknowledged
    publisher.deliveries[0].set_result(None)
    assert await adder.add(REQUEST_ID, 2, 3, timeout=WAIT) == AddResult(REQUEST_ID, 5, replayed=True)
    assert len(publisher.events) == 1


async def test_retry_while_still_pending_does_not_publish_again(
    adder: Adder, publisher: FakePublisher
) -> None:
    for _ in range(2):
        with pytest.raises(KafkaUnavailable):
            await adder.add(REQUEST_ID, 2, 3, timeout=0.01)
    assert len(publisher.events) == 1


async def test_failed_delivery_reports_kafka_unavailable_and_the_retry_publishes_again(
    adder: Adder, publisher: FakePublisher
) -> None:
    publisher.fail_with = ConnectionError("broker said no")
    with pytest.raises(KafkaUnavailable) as raised:
        await adder.add(REQUEST_ID, 2, 3, timeout=WAIT)
    assert_detail_only_in_the_cause(raised.value, "broker said no")
    publisher.fail_with = None
    publisher.acknowledge_at_once = True
    assert await adder.add(REQUEST_ID, 2, 3, timeout=WAIT) == AddResult(REQUEST_ID, 5, replayed=False)
    assert len(publisher.events) == 2


async def test_delivery_failing_while_a_caller_waits_reports_kafka_unavailable(
    adder: Adder, publisher: FakePublisher
) -> None:
    waiting = asyncio.create_task(adder.add(REQUEST_ID, 2, 3, WAIT))
    await until(lambda: publisher.deliveries, "the caller publishes")
    publisher.deliveries[0].set_exception(ConnectionError("message timed out"))
    with pytest.raises(KafkaUnavailable) as raised:
        await waiting
    assert_detail_only_in_the_cause(raised.value, "message timed out")
    publisher.acknowledge_at_once = True
    assert not (await adder.add(REQUEST_ID, 2, 3, timeout=WAIT)).replayed
    assert len(publisher.events) == 2


async def test_publisher_raising_reports_kafka_unavailable_and_forgets_the_id(
    record: IdempotencyRecord, kafka: Reachability
) -> None:
    class BufferFull(FakePublisher):
        def publish(self, event: SumComputed, delivery: asyncio.Future[None]) -> None:
            raise BufferError("queue full")

    adder = Adder(record, BufferFull(), kafka_reachable=kafka)
    with pytest.raises(KafkaUnavailable) as raised:
        await adder.add(REQUEST_ID, 2, 3, timeout=WAIT)
    assert_detail_only_in_the_cause(raised.value, "queue full")
    await until(lambda: len(record) == 0, "the failed claim is forgotten")


async def test_unreachable_kafka_fails_fast_without_publishing(
    adder: Adder, publisher: FakePublisher, record: IdempotencyRecord, kafka: Reachability
) -> None:
    kafka.reachable = False
    with pytest.raises(KafkaUnavailable) as raised:
        await adder.add(REQUEST_ID, 2, 3, timeout=WAIT)
    assert_detail_only_in_the_cause(raised.value, "unreachable")
    assert publisher.events == []
    await until(lambda: len(record) == 0, "the failed claim is forgotten")
    kafka.reachable = True
    publisher.acknowledge_at_once = True
    assert not (await adder.add(REQUEST_ID, 2, 3, timeout=WAIT)).replayed
    assert len(publisher.events) == 1


@pytest.mark.parametrize("request_id", ["", "nope", REQUEST_ID[:-1]])
async def test_invalid_request_id_is_rejected_before_anything_is_published(
    adder: Adder, publisher: FakePublisher, record: IdempotencyRecord, request_id: str
) -> None:
    with pytest.raises(InvalidRequestId):
        await adder.add(request_id, 2, 3, timeout=WAIT)
    assert publisher.events == []
    assert len(record) == 0


async def test_overflow_is_rejected_before_anything_is_published(
    adder: Adder, publisher: FakePublisher, record: IdempotencyRecord
) -> None:
    with pytest.raises(Int64Overflow):
        await adder.add(REQUEST_ID, INT64_MAX, 1, timeout=WAIT)
    assert publisher.events == []
    assert len(record) == 0


async def test_a_cancelled_caller_leaves_the_publication_to_the_others(
    adder: Adder, publisher: FakePublisher
) -> None:
    first = asyncio.create_task(adder.add(REQUEST_ID, 2, 3, WAIT))
    await until(lambda: publisher.deliveries, "the first caller publishes")
    second = asyncio.create_task(adder.add(REQUEST_ID, 2, 3, WAIT))
    await asyncio.sleep(0)
    first.cancel()  # a client that went away, or a deadline that passed
    with pytest.raises(asyncio.CancelledError):
        await first
    assert not publisher.deliveries[0].cancelled()
    publisher.deliveries[0].set_result(None)
    assert await second == AddResult(REQUEST_ID, 5, replayed=True)
    assert len(publisher.events) == 1


async def test_a_caller_timing_out_leaves_the_publication_pending(
    adder: Adder, publisher: FakePublisher, record: IdempotencyRecord
) -> None:
    with pytest.raises(KafkaUnavailable, match=r"within 0\.0s"):
        await adder.add(REQUEST_ID, 2, 3, timeout=0)
    assert not publisher.deliveries[0].done()
    assert len(record) == 1
