"""Rules both services share: request ids, int64 arithmetic and the SumComputed event."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


class InvalidRequestId(ValueError):
    """The request_id is missing or is not an RFC 4122 UUID."""


class Int64Overflow(ArithmeticError):
    """a + b does not fit in a signed 64-bit integer."""


# RFC 4122 text forms: hyphenated (optionally in braces), 32 hex digits, or a urn:uuid: URN.
# uuid.UUID alone is laxer (it ignores stray braces and hyphens anywhere).
_UUID_TEXT = re.compile(
    r"(?:[uU][rR][nN]:[uU][uU][iI][dD]:)?"
    r"(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|\{[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}"
    r"|[0-9a-fA-F]{32})"
)


def canonical_request_id(text: str) -> str:
    """Return the lower-case hyphenated form, so every spelling of one UUID is one request."""
    if not text:
        raise InvalidRequestId("request_id is required (a UUID such as 3f1c0e9a-7a51-4c1e-9a43-0b8f3c0d2e11)")
    if not _UUID_TEXT.fullmatch(text):
        raise InvalidRequestId(f"request_id {text[:64]!r} is not a UUID")
    hex_digits = re.sub(r"[^0-9a-fA-F]", "", text.rsplit(":", 1)[-1])
    return str(uuid.UUID(hex=hex_digits))


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
