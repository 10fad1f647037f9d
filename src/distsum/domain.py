"""Rules both services share: request ids, int64 arithmetic and the SumComputed event."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


class InvalidRequestId(ValueError):
    """The request_id is missing or is not an RFC 4122 UUID."""


class Int64Overflow(ArithmeticError):
    """a + b does not fit in a signed 64-bit integer."""


def canonical_request_id(text: str) -> str:
    """Return the lower-case hyphenated form, so every spelling of one UUID is one request."""
    if not text:
        raise InvalidRequestId("request_id is required (a UUID such as 3f1c0e9a-7a51-4c1e-9a43-0b8f3c0d2e11)")
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise InvalidRequestId(f"request_id {text[:64]!r} is not a UUID") from None


def add_int64(a: int, b: int) -> int:
    total = a + b
    if not INT64_MIN <= total <= INT64_MAX:
        raise Int64Overflow(f"{a} + {b} is outside the int64 range [{INT64_MIN}, {INT64_MAX}]")
    return total


@dataclass(frozen=True, slots=True)
class SumComputed:
    request_id: str
    a: int
    b: int
    sum: int
    produced_at: datetime
