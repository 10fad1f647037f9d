"""Wire format of SumComputed on Kafka: protobuf `distsum.v1.SumComputed`."""

from __future__ import annotations

from datetime import UTC

from google.protobuf.message import DecodeError

from distsum.domain import (
    Int64Overflow,
    InvalidRequestId,
    SumComputed,
    add_int64,
    canonical_request_id,
)
from distsum.v1 import events_pb2


class PoisonMessage(ValueError):
    """A record that can never become a SumComputed; the reason goes to the dead-letter topic."""


def encode(event: SumComputed) -> bytes:
    message = events_pb2.SumComputed(request_id=event.request_id, a=event.a, b=event.b, sum=event.sum)
    message.produced_at.FromDatetime(event.produced_at)
    return message.SerializeToString()


def decode(payload: bytes | None) -> SumComputed:
    """Parse and validate one record value; every way it can be wrong raises PoisonMessage."""
    if not payload:
        raise PoisonMessage("empty value")
    message = events_pb2.SumComputed()
    try:
        message.ParseFromString(payload)
    except DecodeError as exc:
        raise PoisonMessage(f"not a distsum.v1.SumComputed protobuf: {exc}") from None
    try:
        request_id = canonical_request_id(message.request_id)
        expected = add_int64(message.a, message.b)
    except (InvalidRequestId, Int64Overflow) as exc:
        raise PoisonMessage(str(exc)) from None
    if request_id != message.request_id:
        raise PoisonMessage(f"request_id {message.request_id!r} is not in canonical form")
    if expected != message.sum:
        raise PoisonMessage(f"sum {message.sum} is not {message.a} + {message.b}")
    if not message.HasField("produced_at"):
        raise PoisonMessage("produced_at is missing")
    try:
        produced_at = message.produced_at.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError) as exc:
        raise PoisonMessage(f"produced_at is not a valid timestamp: {exc}") from None
    return SumComputed(
        request_id=request_id, a=message.a, b=message.b, sum=message.sum, produced_at=produced_at
    )
