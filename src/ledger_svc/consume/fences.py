"""Which fences the consumer loop survives (see ports.KafkaConsumerFatal).

The coordinator's description of the member that fenced the consumer cannot tell whose join it was (a
static member that replaces another keeps the old one's client id and host). What tells is whether that
member lives: a join of the consumer's own that Kafka processed late makes a member nobody heartbeats
for, which the coordinator drops within the session timeout; another process keeps its member. So after
a fence the judge watches the holder of the group.instance.id until the session timeout (and a grace)
has passed: once nobody holds it the loop may rejoin with a new consumer, while a holder still there
ends the process. A second fence within OWN_FENCE_INTERVAL_SECONDS is not survived: no stale join
explains it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ledger_svc.consume.ports import GroupMembers, GroupUnknown, InstanceHolder

OWN_FENCE_INTERVAL_SECONDS = 60.0
GRACE_SECONDS = 5.0
POLL_SECONDS = 1.0


class FenceJudge:
    def __init__(
        self,
        members: GroupMembers,
        group_instance_id: str,
        session_timeout_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._members = members
        self._group_instance_id = group_instance_id
        self._watch_seconds = session_timeout_seconds + GRACE_SECONDS
        self._clock = clock
        self._sleep = sleep
        self._last_own_fence: float | None = None

    def refusal(self, waiting: Callable[[], None]) -> str:
        """After a fence: "" when the consumer may be replaced, else why the process must exit. Calls
        `waiting` between looks at the group, for at most the session timeout and a grace."""
        started = self._clock()
        if self._last_own_fence is not None and started - self._last_own_fence < OWN_FENCE_INTERVAL_SECONDS:
            return f"fenced twice within {OWN_FENCE_INTERVAL_SECONDS:.0f} s"
        holder: InstanceHolder | GroupUnknown | None = None
        while True:
            try:
                holder = self._members.holder_of_instance()
            except GroupUnknown as exc:
                holder = exc
            if holder is None:
                self._last_own_fence = self._clock()
                return ""
            if self._clock() - started >= self._watch_seconds:
                break
            waiting()
            self._sleep(POLL_SECONDS)
        if isinstance(holder, GroupUnknown):
            return f"Kafka could not say who holds group.instance.id {self._group_instance_id!r}: {holder}"
        return (
            f"group.instance.id {self._group_instance_id!r} is still held by member {holder.member_id!r}"
            f" (client {holder.client_id!r} at {holder.host}) {self._watch_seconds:.0f} s after the fence:"
            " another process runs with it"
        )
