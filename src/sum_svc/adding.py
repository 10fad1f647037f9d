"""The Add use case: validate, deduplicate, publish, and answer only once Kafka has the event."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from distsum.domain import SumComputed, add_int64, canonical_request_id
from sum_svc.idempotency import IdempotencyRecord


class EventPublisher(Protocol):
    def publish(self, event: SumComputed, delivery: asyncio.Future[None]) -> None:
        """Start publishing; delivery completes, on the event loop, when Kafka acknowledged or refused
        the event. Raises when the event cannot even be queued."""
        ...


class KafkaUnavailable(RuntimeError):
    """Kafka did not acknowledge the event before the deadline; the client may retry the same id."""


@dataclass(frozen=True, slots=True)
class AddResult:
    request_id: str
    sum: int
    replayed: bool


class Adder:
    """Runs on the server's event loop, like the record and the publisher it drives."""

    def __init__(
        self,
        record: IdempotencyRecord,
        publisher: EventPublisher,
        kafka_reachable: Callable[[], bool],
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self._record = record
        self._publisher = publisher
        self._kafka_reachable = kafka_reachable
        self._now = now

    async def add(self, request_id: str, a: int, b: int, timeout: float) -> AddResult:
        """Raise InvalidRequestId, Int64Overflow, RequestIdConflict or KafkaUnavailable, else the sum."""
        request_id = canonical_request_id(request_id)
        total = add_int64(a, b)
        claim = self._record.claim(request_id, a, b, total)
        delivery = claim.entry.delivery
        if claim.is_new:
            self._start_publication(delivery, SumComputed(request_id, a, b, total, self._now()))
        try:
            async with asyncio.timeout(timeout):
                # Shielded: the publication is shared by every caller of this id, so one caller's
                # deadline or cancellation must not cancel it for the others.
                await asyncio.shield(delivery)
        except TimeoutError:
            raise KafkaUnavailable(
                f"Kafka did not acknowledge the event within {timeout:.1f}s; retry with the same request_id"
            ) from None
        except Exception as exc:
            # The cause (a Kafka error) goes to the log, not to the caller.
            raise KafkaUnavailable("Kafka did not take the event; retry with the same request_id") from exc
        return AddResult(request_id=request_id, sum=total, replayed=not claim.is_new)

    def _start_publication(self, delivery: asyncio.Future[None], event: SumComputed) -> None:
        # Fail fast while the broker is known to be down rather than queue an event the
        # client will be told failed but that could still be delivered later.
        if not self._kafka_reachable():
            delivery.set_exception(ConnectionError("Kafka is unreachable"))
            return
        try:
            self._publisher.publish(event, delivery)
        except Exception as exc:
            delivery.set_exception(exc)
