"""The consumer status file the web workers read for /readyz."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from ledger_svc import consumer_status
from ledger_svc.consumer_status import ConsumerStatus

NOW = 1_700_000_000.0


def test_write_then_read_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "consumer-status.json"
    status = ConsumerStatus(state="degraded", assigned=[0, 2], reason="disk full", pid=7, heartbeat=NOW)
    consumer_status.write(path, status)
    assert consumer_status.read(path) == status
    assert [p.name for p in tmp_path.iterdir()] == ["consumer-status.json"]


def test_defaults_are_this_process_and_now() -> None:
    before = time.time()
    status = ConsumerStatus(state="consuming")
    assert status.pid == os.getpid()
    assert before <= status.heartbeat <= time.time()
    assert status.assigned == []


@pytest.mark.parametrize("content", [None, "", "{", "[]", '{"state": "consuming", "colour": "red"}', "{}"])
def test_missing_or_unreadable_file_reads_as_none(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "consumer-status.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    assert consumer_status.read(path) is None


@pytest.mark.parametrize(
    ("status", "ready", "reason"),
    [
        (ConsumerStatus("consuming", [0], heartbeat=NOW - 5), True, "ok"),
        (ConsumerStatus("consuming", [0], heartbeat=NOW - 16), False, "heartbeat is 16s old"),
        (
            ConsumerStatus("degraded", [0], "disk full", heartbeat=NOW),
            False,
            "consumer is degraded: disk full",
        ),
        (ConsumerStatus("rebalancing", [0], heartbeat=NOW), False, "consumer is rebalancing"),
        (ConsumerStatus("consuming", [], heartbeat=NOW), False, "no partitions assigned"),
        (
            ConsumerStatus("consuming", [0, 1], unverified=[1], log_problem="broker down", heartbeat=NOW),
            False,
            "the Kafka log of partition(s) 1 is not verified yet: broker down",
        ),
    ],
)
def test_ready_needs_a_fresh_heartbeat_consuming_and_partitions(
    status: ConsumerStatus, ready: bool, reason: str
) -> None:
    ok, message = status.ready(stale_after=15, now=NOW)
    assert ok is ready
    assert reason in message
