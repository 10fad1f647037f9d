"""Poison records go to the dead-letter topic with the reason; the total is untouched."""

from __future__ import annotations

from datetime import UTC, datetime

from confluent_kafka import Message

from distsum import event_codec
from distsum.domain import SumComputed
from distsum.v1 import events_pb2
from tests.conftest import Topic
from tests.integration.conftest import LedgerFactory, producer, read_all
from tests.services import new_id


def _wrong_sum() -> bytes:
    message = events_pb2.SumComputed(request_id=new_id(), a=1, b=2, sum=4)
    message.produced_at.GetCurrentTime()
    return message.SerializeToString()


POISON = {
    b"": "empty value",
    b"\xff\xfe not protobuf": "not a distsum.v1.SumComputed",
    _wrong_sum(): "is not 1 + 2",
    events_pb2.SumComputed(request_id="not-a-uuid", a=1, b=1, sum=2).SerializeToString(): "is not a UUID",
}


def test_poison_messages_are_dead_lettered_and_the_ledger_goes_on(
    topic: Topic, start_ledger: LedgerFactory
) -> None:
    ledger = start_ledger(topic)
    kafka = producer(topic.bootstrap)
    valid = [SumComputed(new_id(), i, i, 2 * i, datetime.now(UTC)) for i in range(1, 11)]
    for index, event in enumerate(valid):
        kafka.produce(topic.name, key=event.request_id.encode(), value=event_codec.encode(event))
        if index < len(POISON):
            kafka.produce(topic.name, key=b"poison", value=list(POISON)[index], headers=[("origin", b"test")])
    assert kafka.flush(30) == 0

    body = ledger.client.wait_count(len(valid))
    dead: list[Message] = read_all(topic.bootstrap, topic.dead_letters, len(POISON))  # type: ignore[assignment]

    assert body["total"] == str(sum(e.sum for e in valid))
    assert body["dead_letters"] == len(POISON)
    assert len(dead) == len(POISON)
    for message in dead:
        headers = dict(message.headers() or [])
        value = message.value() or b""
        reason = headers["dlq.reason"]
        assert isinstance(reason, bytes)
        assert POISON[value] in reason.decode()
        assert headers["dlq.original.topic"] == topic.name.encode()
        assert headers["origin"] == b"test"
