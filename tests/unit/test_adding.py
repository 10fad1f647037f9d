"""The Add use case with a fake publisher whose acknowledgements the tests control."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from distsum.domain import INT64_MAX, Int64Overflow, InvalidRequestId, SumComputed
from sum_svc.adding import Adder, AddResult, KafkaUnavailable
from sum_svc.idempotency import Claim, IdempotencyRecord, RequestIdConflict

REQUEST_ID = "3f1c0e9a-7a51-4c1e-9a43-0b8f3c0d2e11"
NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
WAIT = 10.0  # generous deadline for anything the test expects to happen


class FakePublisher:
    """Records events; each publish returns a future the test completes (or a preset outcome)."""

    def __init__(self) -> None:
        self.events: list[SumComputed] = []
        self.deliveries: list[Future[None]] = []
        self.published = threading.Event()
        self.fail_with: Exception | None = None
        self.acknowledge_at_once = False

    def publish(self, event: SumComputed) -> Future[None]:
        self.events.append(event)
        delivery: Future[None] = Future()
        self.deliveries.append(delivery)
        if self.fail_with is not None:
            delivery.set_exception(self.fail_with)
        elif self.acknowledge_at_once:
            delivery.set_result(None)
        self.published.set()
        return delivery


class ObservedRecord(IdempotencyRecord):
    """Lets a test know how many callers have claimed, instead of guessing with sleeps."""

    def __init__(self) -> None:
        super().__init__(max_entries=100, ttl_seconds=3600)
        self.claims = threading.Semaphore(0)

    def claim(self, request_id: str, a: int, b: int, total: int) -> Claim:
        result = super().claim(request_id, a, b, total)
        self.claims.release()
        return result


@pytest.fixture
def publisher() -> FakePublisher:
    return FakePublisher()


@pytest.fixture
def record() -> ObservedRecord:
    return ObservedRecord()


@pytest.fixture
def reachable() -> threading.Event:
    flag = threading.Event()
    flag.set()
    return flag


@pytest.fixture
def adder(record: ObservedRecord, publisher: FakePublisher, reachable: threading.Event) -> Adder:
    return Adder(record, publisher, kafka_reachable=reachable.is_set, now=lambda: NOW)


def test_publishes_the_event_and_answers_once_kafka_acknowledged(
    adder: Adder, publisher: FakePublisher
) -> None:
    publisher.acknowledge_at_once = True
    result = adder.add(REQUEST_ID, 2, 3, timeout=WAIT)
    assert result == AddResult(request_id=REQUEST_ID, sum=5, replayed=False)
    assert publisher.events == [SumComputed(REQUEST_ID, 2, 3, 5, NOW)]


def test_sequential_duplicates_publish_once_and_are_replayed(adder: Adder, publisher: FakePublisher) -> None:
    publisher.acknowledge_at_once = True
    results = [adder.add(REQUEST_ID, 2, 3, timeout=WAIT) for _ in range(3)]
    assert [r.replayed for r in results] == [False, True, True]
    assert {r.sum for r in results} == {5}
    assert len(publisher.events) == 1


def test_every_spelling_of_one_uuid_is_the_same_request(adder: Adder, publisher: FakePublisher) -> None:
    publisher.acknowledge_at_once = True
    spellings = [REQUEST_ID, REQUEST_ID.upper(), "{" + REQUEST_ID + "}", "urn:uuid:" + REQUEST_ID]
    results = [adder.add(text, 2, 3, timeout=WAIT) for text in [*spellings, REQUEST_ID.replace("-", "")]]
    assert {r.request_id for r in results} == {REQUEST_ID}
    assert [r.replayed for r in results] == [False, True, True, True, True]
    assert [e.request_id for e in publisher.events] == [REQUEST_ID]


def test_concurrent_duplicate_waits_for_the_first_publication(
    adder: Adder, publisher: FakePublisher, record: ObservedRecord
) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(adder.add, REQUEST_ID, 2, 3, WAIT)
        assert publisher.published.wait(WAIT)
        second = pool.submit(adder.add, REQUEST_ID, 2, 3, WAIT)
        assert record.claims.acquire(timeout=WAIT)
        assert record.claims.acquire(timeout=WAIT)
        # Both have claimed; neither may answer before Kafka acknowledges.
        assert not first.done()
        assert not second.done()
        publisher.deliveries[0].set_result(None)
        results = [first.result(timeout=WAIT), second.result(timeout=WAIT)]
    assert [r.replayed for r in results] == [False, True]
    assert len(publisher.events) == 1


def test_other_operands_for_a_used_id_are_a_conflict(adder: Adder, publisher: FakePublisher) -> None:
    publisher.acknowledge_at_once = True
    adder.add(REQUEST_ID, 2, 3, timeout=WAIT)
    with pytest.raises(RequestIdConflict):
        adder.add(REQUEST_ID, 2, 4, timeout=WAIT)
    assert len(publisher.events) == 1


def test_timeout_reports_kafka_unavailable_and_a_retry_after_acknowledgement_is_replayed(
    adder: Adder, publisher: FakePublisher, record: ObservedRecord
) -> None:
    with pytest.raises(KafkaUnavailable, match="retry with the same request_id"):
        adder.add(REQUEST_ID, 2, 3, timeout=0.01)
    assert len(record) == 1  # still pending: the event may yet be acknowledged
    publisher.deliveries[0].set_result(None)
    assert adder.add(REQUEST_ID, 2, 3, timeout=WAIT) == AddResult(REQUEST_ID, 5, replayed=True)
    assert len(publisher.events) == 1


def test_retry_while_still_pending_does_not_publish_again(adder: Adder, publisher: FakePublisher) -> None:
    for _ in range(2):
        with pytest.raises(KafkaUnavailable):
            adder.add(REQUEST_ID, 2, 3, timeout=0.01)
    assert len(publisher.events) == 1


def test_failed_delivery_reports_kafka_unavailable_and_the_retry_publishes_again(
    adder: Adder, publisher: FakePublisher
) -> None:
    publisher.fail_with = ConnectionError("broker said no")
    with pytest.raises(KafkaUnavailable, match="broker said no"):
        adder.add(REQUEST_ID, 2, 3, timeout=WAIT)
    publisher.fail_with = None
    publisher.acknowledge_at_once = True
    assert adder.add(REQUEST_ID, 2, 3, timeout=WAIT) == AddResult(REQUEST_ID, 5, replayed=False)
    assert len(publisher.events) == 2


def test_delivery_failing_while_a_caller_waits_reports_kafka_unavailable(
    adder: Adder, publisher: FakePublisher
) -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(adder.add, REQUEST_ID, 2, 3, WAIT)
        assert publisher.published.wait(WAIT)
        publisher.deliveries[0].set_exception(ConnectionError("message timed out"))
        with pytest.raises(KafkaUnavailable, match="message timed out"):
            waiting.result(timeout=WAIT)
    publisher.acknowledge_at_once = True
    assert not adder.add(REQUEST_ID, 2, 3, timeout=WAIT).replayed
    assert len(publisher.events) == 2


def test_publisher_raising_reports_kafka_unavailable_and_forgets_the_id(
    record: ObservedRecord, reachable: threading.Event
) -> None:
    class BufferFull(FakePublisher):
        def publish(self, event: SumComputed) -> Future[None]:
            raise BufferError("queue full")

    adder = Adder(record, BufferFull(), kafka_reachable=reachable.is_set)
    with pytest.raises(KafkaUnavailable, match="queue full"):
        adder.add(REQUEST_ID, 2, 3, timeout=WAIT)
    assert len(record) == 0


def test_unreachable_kafka_fails_fast_without_publishing(
    adder: Adder, publisher: FakePublisher, record: ObservedRecord, reachable: threading.Event
) -> None:
    reachable.clear()
    with pytest.raises(KafkaUnavailable, match="unreachable"):
        adder.add(REQUEST_ID, 2, 3, timeout=WAIT)
    assert publisher.events == []
    assert len(record) == 0
    reachable.set()
    publisher.acknowledge_at_once = True
    assert not adder.add(REQUEST_ID, 2, 3, timeout=WAIT).replayed
    assert len(publisher.events) == 1


@pytest.mark.parametrize("request_id", ["", "nope", REQUEST_ID[:-1]])
def test_invalid_request_id_is_rejected_before_anything_is_published(
    adder: Adder, publisher: FakePublisher, record: ObservedRecord, request_id: str
) -> None:
    with pytest.raises(InvalidRequestId):
        adder.add(request_id, 2, 3, timeout=WAIT)
    assert publisher.events == []
    assert len(record) == 0


def test_overflow_is_rejected_before_anything_is_published(
    adder: Adder, publisher: FakePublisher, record: ObservedRecord
) -> None:
    with pytest.raises(Int64Overflow):
        adder.add(REQUEST_ID, INT64_MAX, 1, timeout=WAIT)
    assert publisher.events == []
    assert len(record) == 0


def test_cancelled_publication_is_reported_and_forgotten(adder: Adder, publisher: FakePublisher) -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(adder.add, REQUEST_ID, 2, 3, 0.5)
        assert publisher.published.wait(WAIT)
        assert publisher.deliveries[0].cancel()
        with pytest.raises(KafkaUnavailable):
            waiting.result(timeout=WAIT)
    publisher.acknowledge_at_once = True
    assert not adder.add(REQUEST_ID, 2, 3, timeout=0.5).replayed
