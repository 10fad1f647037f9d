"""The supervisor's watch on its consumer: a consumer that stops reporting is killed, so the ledger exits
and its container restarts, instead of staying alive and unready for ever (a call into a C library that
never returns, a deadlock). Readiness alone cannot end that: the kubelet restarts on liveness only.

Armed at the consumer's first report, because opening and migrating a large store comes before it. It
measures how long the heartbeat has not changed on this process's monotonic clock, so a wall-clock step
on the node (the heartbeat is wall-clock time) neither fires it nor hides a stall.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from ledger_svc import consumer_status

log = logging.getLogger("ledger_svc")


class ConsumerWatchdog:
    def __init__(
        self,
        status_file: Path,
        stuck_after: float,
        kill: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
    ):
        self._status_file = status_file
        self._stuck_after = stuck_after
        self._kill = kill
        self._clock = clock
        self._last_heartbeat: float | None = None
        self._changed_at = 0.0
        self.fired = False

    def check(self) -> None:
        """Kill the consumer once its heartbeat has not changed for stuck_after seconds."""
        status = consumer_status.read(self._status_file)
        if status is None or self.fired:
            return
        now = self._clock()
        if status.heartbeat != self._last_heartbeat:
            self._last_heartbeat, self._changed_at = status.heartbeat, now
            return
        silent = now - self._changed_at
        if silent >= self._stuck_after:
            self.fired = True
            log.error(
                "the consumer stopped reporting; killing it so that the ledger restarts",
                extra={"seconds_without_heartbeat": round(silent, 1), "consumer_state": status.state},
            )
            self._kill()
