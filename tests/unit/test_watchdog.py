"""The supervisor's consumer watchdog (ledger_svc/watchdog.py) against a real status file and a real child
process, on a clock the test moves."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger_svc import consumer_status
from ledger_svc.consumer_status import ConsumerStatus
from ledger_svc.watchdog import ConsumerWatchdog
from tests.unit.conftest import FakeClock

STUCK_AFTER = 120.0


@pytest.fixture
def consumer() -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen(["sleep", "600"])
    yield child
    child.kill()
    child.wait()


def report(path: Path, heartbeat: float) -> None:
    consumer_status.write(path, ConsumerStatus("consuming", [0], heartbeat=heartbeat))


def test_a_consumer_that_stops_reporting_is_killed_once(
    tmp_path: Path, consumer: subprocess.Popen[bytes], clock: FakeClock
) -> None:
    status = tmp_path / "consumer-status.json"
    watchdog = ConsumerWatchdog(status, STUCK_AFTER, consumer.kill, clock)
    watchdog.check()  # no report yet: opening a large store comes first
    clock.now += 10 * STUCK_AFTER
    watchdog.check()
    assert consumer.poll() is None, "killed before its first report"

    for _ in range(5):  # a heartbeat a second keeps it alive
        report(status, clock.now)
        watchdog.check()
        last_report = clock.now
        clock.now += 1
    clock.now = last_report + STUCK_AFTER - 0.5
    watchdog.check()
    with pytest.raises(subprocess.TimeoutExpired):  # still running, not merely not reaped yet
        consumer.wait(0.5)
    clock.now = last_report + STUCK_AFTER
    watchdog.check()
    assert consumer.wait(10) == -9
    assert watchdog.fired


def test_a_wall_clock_step_is_no_stall(
    tmp_path: Path, consumer: subprocess.Popen[bytes], clock: FakeClock
) -> None:
    """The heartbeat is wall-clock time; a step of the node's clock changes it without a stall."""
    status = tmp_path / "consumer-status.json"
    watchdog = ConsumerWatchdog(status, STUCK_AFTER, consumer.kill, clock)
    for heartbeat in (5000.0, 5001.0, 4000.0, 4001.0, 9000.0):
        report(status, heartbeat)
        watchdog.check()
        clock.now += 1
    assert consumer.poll() is None and not watchdog.fired
