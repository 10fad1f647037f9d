"""The consumer's state, shared with the web workers through a small file in the run directory.

It lives outside the data volume so it still updates when the volume is full or read-only.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ledger_svc.store.durable_files import replace_atomically

CONSUMING = "consuming"


@dataclass(frozen=True, slots=True)
class ConsumerStatus:
    state: str
    assigned: list[int] = field(default_factory=list)
    reason: str = ""
    # Assigned partitions held paused until Kafka shows their log is the one their offsets belong to.
    unverified: list[int] = field(default_factory=list)
    log_problem: str = ""
    pid: int = field(default_factory=os.getpid)
    heartbeat: float = field(default_factory=time.time)

    def ready(self, stale_after: float, now: float) -> tuple[bool, str]:
        if now - self.heartbeat > stale_after:
            return False, f"consumer heartbeat is {now - self.heartbeat:.0f}s old"
        if self.state != CONSUMING:
            return False, f"consumer is {self.state}" + (f": {self.reason}" if self.reason else "")
        if not self.assigned:
            return False, "consumer has no partitions assigned"
        if self.unverified:
            waiting = ", ".join(map(str, self.unverified))
            return False, f"the Kafka log of partition(s) {waiting} is not verified yet" + (
                f": {self.log_problem}" if self.log_problem else ""
            )
        return True, "ok"


def write(path: Path, status: ConsumerStatus) -> None:
    replace_atomically(path, json.dumps(asdict(status)), durable=False)


def read(path: Path) -> ConsumerStatus | None:
    try:
        return ConsumerStatus(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
