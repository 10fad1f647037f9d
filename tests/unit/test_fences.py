"""Which fences the consumer loop survives: one whose member the coordinator drops within the session
timeout (a late join of its own), never one whose member lives on, nor two within a minute."""

from __future__ import annotations

from ledger_svc.consume.fences import GRACE_SECONDS, OWN_FENCE_INTERVAL_SECONDS, FenceJudge
from ledger_svc.consume.ports import GroupUnknown, InstanceHolder
from tests.unit.conftest import FakeClock

SESSION_SECONDS = 15.0
HOLDER = InstanceHolder("ledger-0-5f1e", "ledger", "/10.0.0.9")


class Members:
    """The group as the coordinator describes it: the holder until `dropped_at`, then nobody."""

    def __init__(self, clock: FakeClock, dropped_at: float | None, unknown: bool = False) -> None:
        self._clock = clock
        self._dropped_at = dropped_at
        self._unknown = unknown

    def holder_of_instance(self) -> InstanceHolder | None:
        if self._unknown:
            raise GroupUnknown("cannot describe consumer group 'g': timed out")
        if self._dropped_at is not None and self._clock() >= self._dropped_at:
            return None
        return HOLDER


def judge(members: Members, clock: FakeClock) -> FenceJudge:
    return FenceJudge(members, "ledger-0", SESSION_SECONDS, clock=clock, sleep=clock.advance)


def test_a_holder_dropped_within_the_session_timeout_was_a_late_join_of_our_own(clock: FakeClock) -> None:
    waits: list[float] = []
    members = Members(clock, dropped_at=clock() + SESSION_SECONDS)

    assert judge(members, clock).refusal(waiting=lambda: waits.append(clock())) == ""
    assert len(waits) == SESSION_SECONDS  # the loop's heartbeat went on once a second while it watched


def test_a_holder_that_outlives_the_session_timeout_is_another_process(clock: FakeClock) -> None:
    start = clock()
    refusal = judge(Members(clock, dropped_at=None), clock).refusal(waiting=lambda: None)

    assert refusal == (
        "group.instance.id 'ledger-0' is still held by member 'ledger-0-5f1e' (client 'ledger' at /10.0.0.9)"
        " 20 s after the fence: another process runs with it"
    )
    assert clock() - start == SESSION_SECONDS + GRACE_SECONDS


def test_a_group_kafka_cannot_describe_is_not_taken_for_a_late_join(clock: FakeClock) -> None:
    refusal = judge(Members(clock, dropped_at=clock(), unknown=True), clock).refusal(waiting=lambda: None)
    assert refusal == (
        "Kafka could not say who holds group.instance.id 'ledger-0': cannot describe consumer group 'g':"
        " timed out"
    )


def test_a_second_fence_within_the_interval_is_not_survived_and_a_later_one_is(clock: FakeClock) -> None:
    fences = judge(Members(clock, dropped_at=clock()), clock)
    assert fences.refusal(waiting=lambda: None) == ""
    clock.advance(OWN_FENCE_INTERVAL_SECONDS - 1)
    assert fences.refusal(waiting=lambda: None) == "fenced twice within 60 s"
    clock.advance(1)
    assert fences.refusal(waiting=lambda: None) == ""
