"""Ledger arithmetic: which consumed events change the total, with no I/O.

The store runs plan_batch inside its write transaction, so the decision and the
new balance are committed together with the Kafka offsets that produced them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from distsum.domain import SumComputed


@dataclass(frozen=True, slots=True)
class Balance:
    total: int = 0
    count: int = 0


@dataclass(frozen=True, slots=True)
class Delivery:
    """A decoded event and where Kafka delivered it from."""

    event: SumComputed
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class PoisonRecord:
    topic: str
    partition: int
    offset: int
    reason: str


# Where a batch leaves each (topic, partition) it read: the next offset, and the key of the record
# just before it.
ReadUpTo = dict[tuple[str, int], tuple[int, bytes]]


@dataclass(slots=True)
class BatchPlan:
    balance: Balance
    to_apply: list[Delivery] = field(default_factory=list)
    duplicates: list[Delivery] = field(default_factory=list)
    # Same request id, other operands: only possible when two sum replicas were each asked.
    # The first applied wins; the later one is not counted.
    conflicts: list[Delivery] = field(default_factory=list)


def plan_batch(
    balance: Balance, deliveries: Iterable[Delivery], already_applied: Mapping[str, tuple[int, int]]
) -> BatchPlan:
    """Apply each request id at most once, counting duplicates and conflicts instead of summing them."""
    plan = BatchPlan(balance=balance)
    seen = dict(already_applied)
    total, count = balance.total, balance.count
    for delivery in deliveries:
        event = delivery.event
        operands = seen.get(event.request_id)
        if operands is None:
            seen[event.request_id] = (event.a, event.b)
            plan.to_apply.append(delivery)
            total += event.sum
            count += 1
        elif operands == (event.a, event.b):
            plan.duplicates.append(delivery)
        else:
            plan.conflicts.append(delivery)
    plan.balance = Balance(total=total, count=count)
    return plan
