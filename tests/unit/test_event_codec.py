"""The protobuf wire format of SumComputed and how the consumer recognises poison."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from distsum import event_codec
from distsum.domain import INT64_MAX, INT64_MIN, SumComputed
from distsum.event_codec import PoisonMessage
from distsum.v1 import events_pb2

REQUEST_ID = "3f1c0e9a-7a51-4c1e-9a43-0b8f3c0d2e11"
PRODUCED_AT = datetime(2025, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)

int64s = st.integers(INT64_MIN, INT64_MAX)


@st.composite
def sum_events(draw: st.DrawFn) -> SumComputed:
    a = draw(int64s)
    b = draw(st.integers(max(INT64_MIN, INT64_MIN - a), min(INT64_MAX, INT64_MAX - a)))
    return SumComputed(
        request_id=str(draw(st.uuids())),
        a=a,
        b=b,
        sum=a + b,
        produced_at=draw(st.datetimes(timezones=st.just(UTC))),
    )


def message(
    request_id: str = REQUEST_ID, a: int = 2, b: int = 3, total: int = 5, seconds: int | None = 1_700_000_000
) -> bytes:
    proto = events_pb2.SumComputed(request_id=request_id, a=a, b=b, sum=total)
    if seconds is not None:
        proto.produced_at.seconds = seconds
    return proto.SerializeToString()


def assert_valid(event: SumComputed) -> None:
    assert str(uuid.UUID(event.request_id)) == event.request_id
    assert INT64_MIN <= event.sum <= INT64_MAX
    assert event.sum == event.a + event.b
    assert event.produced_at.tzinfo is not None


@given(sum_events())
def test_encode_then_decode_returns_the_same_event(event: SumComputed) -> None:
    decoded = event_codec.decode(event_codec.encode(event))
    assert decoded == event
    assert decoded.produced_at.utcoffset() == timedelta(0)


def test_produced_at_in_another_zone_keeps_its_instant() -> None:
    local = datetime(2025, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    event = SumComputed(REQUEST_ID, 1, 2, 3, local)
    decoded = event_codec.decode(event_codec.encode(event))
    assert decoded.produced_at == datetime(2025, 6, 1, 10, 0, tzinfo=UTC)


def test_decodes_a_hand_built_message() -> None:
    assert event_codec.decode(message()) == SumComputed(
        REQUEST_ID, 2, 3, 5, datetime.fromtimestamp(1_700_000_000, UTC)
    )


@given(st.binary(max_size=200))
def test_arbitrary_bytes_decode_to_a_valid_event_or_raise_poison(payload: bytes) -> None:
    try:
        event = event_codec.decode(payload)
    except PoisonMessage:
        return
    assert_valid(event)


@given(sum_events(), st.data())
def test_truncated_encodings_decode_to_a_valid_event_or_raise_poison(
    event: SumComputed, data: st.DataObject
) -> None:
    payload = event_codec.encode(event)
    cut = data.draw(st.integers(0, len(payload) - 1))
    try:
        decoded = event_codec.decode(payload[:cut])
    except PoisonMessage:
        return
    assert_valid(decoded)


@given(
    request_id=st.one_of(st.uuids().map(str), st.text(max_size=40)),
    a=int64s,
    b=int64s,
    total=int64s,
    # Only timestamps a datetime can hold; see the xfail tests below for the others.
    seconds=st.none() | st.integers(-62_135_596_800, 253_402_300_799),
)
def test_any_field_values_decode_to_a_valid_event_or_raise_poison(
    request_id: str, a: int, b: int, total: int, seconds: int | None
) -> None:
    try:
        event = event_codec.decode(message(request_id, a, b, total, seconds))
    except PoisonMessage:
        return
    assert_valid(event)
    assert (event.request_id, event.a, event.b) == (request_id, a, b)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        pytest.param(b"", "empty", id="empty"),
        pytest.param(None, "empty", id="none"),
        pytest.param(b"\xff\xff\xff", "not a distsum.v1.SumComputed", id="not-protobuf"),
        pytest.param(bytes([0x0A, 2, 0xFF, 0xFE]), "not a distsum.v1.SumComputed", id="id-not-utf8"),
        pytest.param(message(total=6), "sum 6 is not 2 + 3", id="wrong-sum"),
        pytest.param(message(request_id=REQUEST_ID.upper()), "not in canonical form", id="upper-case-id"),
        pytest.param(message(request_id="{" + REQUEST_ID + "}"), "not in canonical form", id="braced-id"),
        pytest.param(message(request_id="not-a-uuid"), "is not a UUID", id="invalid-uuid"),
        pytest.param(message(request_id=""), "request_id is required", id="missing-id"),
        pytest.param(message(seconds=None), "produced_at is missing", id="missing-produced-at"),
        pytest.param(
            message(a=INT64_MAX, b=1, total=INT64_MIN), "outside the int64 range", id="operands-overflow"
        ),
    ],
)
def test_poison_messages_name_their_reason(payload: bytes | None, reason: str) -> None:
    with pytest.raises(PoisonMessage, match=re.escape(reason)):
        event_codec.decode(payload)


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [(2**62, 0), (-62_135_596_801, 0), (0, -1), (0, 1_000_000_000)],
)
def test_out_of_range_produced_at_is_poison(seconds: int, nanos: int) -> None:
    proto = events_pb2.SumComputed(request_id=REQUEST_ID, a=2, b=3, sum=5)
    proto.produced_at.seconds = seconds
    proto.produced_at.nanos = nanos
    with pytest.raises(PoisonMessage):
        event_codec.decode(proto.SerializeToString())
