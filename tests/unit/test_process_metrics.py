"""The ledger's CPU and memory metrics cover every process of its group, read from the real /proc."""

from __future__ import annotations

import os
import resource
import subprocess
import sys

from prometheus_client import CollectorRegistry, generate_latest

from ledger_svc.ops.process_metrics import ProcessGroupCollector


def sample(collector: ProcessGroupCollector) -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(collector)
    values: dict[str, float] = {}
    for line in generate_latest(registry).decode().splitlines():
        if not line.startswith("#"):
            name, value = line.split(" ")
            values[name] = float(value)
    return values


def test_reports_the_whole_process_group() -> None:
    alone = sample(ProcessGroupCollector())
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        with_child = sample(ProcessGroupCollector())
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait()

    assert with_child["ledger_processes"] == alone["ledger_processes"] + 1
    assert with_child["process_resident_memory_bytes"] > alone["process_resident_memory_bytes"]
    own_usage = resource.getrusage(resource.RUSAGE_SELF)
    assert alone["process_cpu_seconds_total"] >= own_usage.ru_utime + own_usage.ru_stime - 0.05


def test_other_process_groups_are_left_out() -> None:
    before = sample(ProcessGroupCollector())
    stranger = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE, start_new_session=True
    )
    try:
        own = sample(ProcessGroupCollector())
        theirs = sample(ProcessGroupCollector(process_group=os.getpgid(stranger.pid)))
    finally:
        assert stranger.stdin is not None
        stranger.stdin.close()
        stranger.wait()

    assert own["ledger_processes"] == before["ledger_processes"]
    assert theirs["ledger_processes"] == 1
    assert 0 < theirs["process_resident_memory_bytes"] < own["process_resident_memory_bytes"]
