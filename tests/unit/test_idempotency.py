"""The sum service's memory of recent request ids."""

from __future__ import annotations

import asyncio
import gc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sum_svc.idempotency import IdempotencyRecord, RequestIdConflict
from tests.unit.conftest import FakeClock

TTL = 60.0


async def settled() -> None:
    """One loop turn: a completed delivery's settlement is scheduled on the loop, not run inline."""
    await asyncio.sleep(0)


@pytest.fixture
def record(clock: FakeClock) -> IdempotencyRecord:
    return IdempotencyRecord(max_entries=100, ttl_seconds=TTL, clock=clock)


async def test_first_claim_is_new_and_holds_the_operands(record: IdempotencyRecord) -> None:
    claim = record.claim("id-1", 2, 3, 5)
    assert claim.is_new
    assert (claim.entry.a, claim.entry.b, claim.entry.sum) == (2, 3, 5)
    assert not claim.entry.delivery.done()
    assert len(record) == 1


async def test_repeat_claim_returns_the_same_entry_and_is_not_new(record: IdempotencyRecord) -> None:
    first = record.claim("id-1", 2, 3, 5)
    second = record.claim("id-1", 2, 3, 5)
    assert not second.is_new
    assert second.entry is first.entry
    assert len(record) == 1


async def test_repeat_claim_after_successful_delivery_is_not_new(record: IdempotencyRecord) -> None:
    first = record.claim("id-1", 2, 3, 5)
    first.entry.delivery.set_result(None)
    second = record.claim("id-1", 2, 3, 5)
    assert not second.is_new
    assert second.entry is first.entry


@pytest.mark.parametrize(("a", "b"), [(2, 4), (3, 2), (5, 0)])
async def test_same_id_with_other_operands_is_a_conflict(record: IdempotencyRecord, a: int, b: int) -> None:
    record.claim("id-1", 2, 3, 5)
    with pytest.raises(RequestIdConflict, match="id-1 was already used with other operands") as raised:
        record.claim("id-1", a, b, a + b)
    # The first caller's operands are not told to the second.
    assert "2" not in str(raised.value).replace("id-1", "")


async def test_failed_delivery_forgets_the_id_so_the_next_claim_is_new(record: IdempotencyRecord) -> None:
    first = record.claim("id-1", 2, 3, 5)
    first.entry.delivery.set_exception(ConnectionError("broker down"))
    await settled()
    assert len(record) == 0
    retry = record.claim("id-1", 2, 3, 5)
    assert retry.is_new
    assert retry.entry is not first.entry


async def test_failed_delivery_also_forgets_the_operands(record: IdempotencyRecord) -> None:
    record.claim("id-1", 2, 3, 5).entry.delivery.set_exception(ConnectionError("broker down"))
    assert record.claim("id-1", 7, 8, 15).is_new


async def test_successful_delivery_is_remembered_until_ttl_after_completion(
    record: IdempotencyRecord, clock: FakeClock
) -> None:
    first = record.claim("id-1", 2, 3, 5)
    clock.advance(TTL - 1)
    first.entry.delivery.set_result(None)  # completes just before the claim-time expiry
    await settled()
    clock.advance(TTL - 0.001)
    assert not record.claim("id-1", 2, 3, 5).is_new
    clock.advance(0.001)
    assert record.claim("id-1", 2, 3, 5).is_new


async def test_pending_entry_expires_ttl_after_the_claim(record: IdempotencyRecord, clock: FakeClock) -> None:
    record.claim("id-1", 2, 3, 5)
    clock.advance(TTL - 0.001)
    assert not record.claim("id-1", 2, 3, 5).is_new
    clock.advance(0.001)
    assert record.claim("id-1", 2, 3, 5).is_new


async def test_late_completion_of_an_expired_entry_does_not_touch_its_successor(
    record: IdempotencyRecord, clock: FakeClock
) -> None:
    stale = record.claim("id-1", 2, 3, 5)
    clock.advance(TTL)
    fresh = record.claim("id-1", 2, 3, 5)
    assert fresh.is_new
    stale.entry.delivery.set_exception(ConnectionError("too late"))
    await settled()
    assert record.claim("id-1", 2, 3, 5).entry is fresh.entry


async def test_expired_entries_are_dropped(record: IdempotencyRecord, clock: FakeClock) -> None:
    for i in range(5):
        record.claim(f"id-{i}", i, i, 2 * i).entry.delivery.set_result(None)
    await settled()
    clock.advance(TTL / 2)
    record.claim("late", 0, 0, 0)
    clock.advance(TTL / 2)
    record.claim("trigger", 0, 0, 0)
    assert len(record) == 2  # "late" and "trigger"


@given(max_entries=st.integers(1, 8), claims=st.integers(0, 30))
def test_never_holds_more_than_max_entries_and_evicts_the_oldest(max_entries: int, claims: int) -> None:
    async def scenario() -> None:
        record = IdempotencyRecord(max_entries=max_entries, ttl_seconds=TTL, clock=FakeClock())
        for i in range(claims):
            record.claim(f"id-{i}", i, 0, i)
            assert len(record) == min(i + 1, max_entries)
        kept = range(max(0, claims - max_entries), claims)
        for i in kept:
            assert not record.claim(f"id-{i}", i, 0, i).is_new
        if claims > max_entries:
            assert record.claim("id-0", 0, 0, 0).is_new

    asyncio.run(scenario())


def test_rejects_nonsense_limits() -> None:
    with pytest.raises(ValueError):
        IdempotencyRecord(max_entries=0, ttl_seconds=1)
    with pytest.raises(ValueError):
        IdempotencyRecord(max_entries=1, ttl_seconds=0)


async def test_a_failed_delivery_not_yet_settled_is_claimed_afresh(record: IdempotencyRecord) -> None:
    first = record.claim("id-1", 2, 3, 5)
    first.entry.delivery.set_exception(ConnectionError("broker down"))
    retry = record.claim("id-1", 2, 3, 5)  # before the loop ran the settlement
    assert retry.is_new
    await settled()
    assert record.claim("id-1", 2, 3, 5).entry is retry.entry


async def test_forget_all_makes_every_id_new_again(record: IdempotencyRecord) -> None:
    record.claim("id-1", 2, 3, 5).entry.delivery.set_result(None)
    pending = record.claim("id-2", 2, 3, 5)
    assert record.forget_all() == 2
    assert record.claim("id-1", 2, 3, 5).is_new
    pending.entry.delivery.set_exception(ConnectionError("purged"))
    await settled()  # the old publication's settlement leaves its successor alone
    assert len(record) == 1


async def test_a_forgotten_publication_that_fails_leaves_no_unretrieved_exception(
    record: IdempotencyRecord,
) -> None:
    reported: list[dict[str, object]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, context: reported.append(context))
    pending = record.claim("id-1", 2, 3, 5)
    record.forget_all()
    pending.entry.delivery.set_exception(ConnectionError("purged"))
    await settled()
    del pending
    gc.collect()
    assert reported == []
