"""plan_batch: which consumed events change the total."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from distsum.domain import INT64_MAX, INT64_MIN, SumComputed
from ledger_svc.domain.ledger import Balance, Delivery, plan_batch

PRODUCED_AT = datetime(2025, 1, 1, tzinfo=UTC)
# A small pool, so batches repeat ids often.
IDS = [f"00000000-0000-4000-8000-{i:012x}" for i in range(6)]

ids = st.sampled_from(IDS)
operands = st.one_of(
    st.tuples(st.integers(-3, 3), st.integers(-3, 3)),  # small: repeats with equal operands are common
    st.integers(INT64_MIN, INT64_MAX).flatmap(
        lambda a: st.tuples(
            st.just(a), st.integers(max(INT64_MIN, INT64_MIN - a), min(INT64_MAX, INT64_MAX - a))
        )
    ),
)


def delivery(request_id: str, a: int, b: int, offset: int = 0) -> Delivery:
    return Delivery(SumComputed(request_id, a, b, a + b, PRODUCED_AT), "sums", 0, offset)


@st.composite
def batches(draw: st.DrawFn) -> list[Delivery]:
    pairs = draw(st.lists(st.tuples(ids, operands), max_size=25))
    return [delivery(request_id, a, b, offset) for offset, (request_id, (a, b)) in enumerate(pairs)]


balances = st.builds(Balance, total=st.integers(-(2**70), 2**70), count=st.integers(0, 10**9))
already_applied_maps = st.dictionaries(ids, operands, max_size=len(IDS))


@given(balances, batches(), already_applied_maps)
def test_total_and_count_grow_by_first_occurrences_of_new_ids_only(
    balance: Balance, batch: list[Delivery], already_applied: dict[str, tuple[int, int]]
) -> None:
    firsts: dict[str, Delivery] = {}
    for d in batch:
        if d.event.request_id not in already_applied:
            firsts.setdefault(d.event.request_id, d)

    plan = plan_batch(balance, batch, already_applied)

    assert plan.to_apply == list(firsts.values())
    assert plan.balance == Balance(
        total=balance.total + sum(d.event.sum for d in firsts.values()),
        count=balance.count + len(firsts),
    )


@given(balances, batches(), already_applied_maps)
def test_repeats_are_duplicates_with_equal_operands_and_conflicts_otherwise(
    balance: Balance, batch: list[Delivery], already_applied: dict[str, tuple[int, int]]
) -> None:
    winner = dict(already_applied)
    repeats = []
    for d in batch:
        if d.event.request_id in winner:
            repeats.append(d)
        else:
            winner[d.event.request_id] = (d.event.a, d.event.b)

    plan = plan_batch(balance, batch, already_applied)

    assert plan.duplicates == [d for d in repeats if winner[d.event.request_id] == (d.event.a, d.event.b)]
    assert plan.conflicts == [d for d in repeats if winner[d.event.request_id] != (d.event.a, d.event.b)]


@given(balances, batches(), already_applied_maps)
def test_every_delivery_lands_in_exactly_one_list(
    balance: Balance, batch: list[Delivery], already_applied: dict[str, tuple[int, int]]
) -> None:
    plan = plan_batch(balance, batch, already_applied)
    placed = [id(d) for d in (*plan.to_apply, *plan.duplicates, *plan.conflicts)]
    assert sorted(placed) == sorted(id(d) for d in batch)
    assert len({d.event.request_id for d in plan.to_apply}) == len(plan.to_apply)
    assert not {d.event.request_id for d in plan.to_apply} & already_applied.keys()


def test_example_batch_is_classified() -> None:
    first, repeat, conflict, old, other = (
        delivery(IDS[0], 2, 3, 0),
        delivery(IDS[0], 2, 3, 1),
        delivery(IDS[0], 3, 2, 2),
        delivery(IDS[1], 1, 1, 3),
        delivery(IDS[2], -10, 0, 4),
    )
    plan = plan_batch(Balance(total=100, count=7), [first, repeat, conflict, old, other], {IDS[1]: (1, 1)})
    assert plan.to_apply == [first, other]
    assert plan.duplicates == [repeat, old]
    assert plan.conflicts == [conflict]
    assert plan.balance == Balance(total=95, count=9)


def test_empty_batch_keeps_the_balance() -> None:
    plan = plan_batch(Balance(total=5, count=1), [], {})
    assert plan.balance == Balance(total=5, count=1)
    assert (plan.to_apply, plan.duplicates, plan.conflicts) == ([], [], [])


def test_does_not_mutate_already_applied() -> None:
    already_applied = {IDS[1]: (1, 1)}
    plan_batch(Balance(), [delivery(IDS[0], 1, 2)], already_applied)
    assert already_applied == {IDS[1]: (1, 1)}
